//! The client as the ledger's [`Datastore`] and as the [`Node`].

use super::waits::{self, Event};
use super::Rpc;
use crate::domain::{PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::node::{Created, Node, Page};
use crate::store::{Datastore, Entry, Op};
use cln_rpc::primitives::Sha256;
use serde::Deserialize;
use serde_json::{json, Value};

/// What paystate reads of a `datastore` answer (the value it just wrote,
/// echoed back as hex and string, is skipped unread).
#[derive(Deserialize)]
struct Written {
    generation: u64,
}

impl Datastore for Rpc {
    async fn create(&self, key: Vec<String>, value: Vec<u8>) -> Result<u64, RpcError> {
        let r: Written = self
            .call_as("datastore", create_params(&key, &value))
            .await??;
        Ok(r.generation)
    }

    async fn append(&self, key: Vec<String>, value: Vec<u8>) -> Result<(), RpcError> {
        self.call("datastore", append_params(&key, &value))
            .await
            .map(drop)
    }

    async fn delete(&self, key: Vec<String>, gen: Option<u64>) -> Result<(), RpcError> {
        let params = match gen {
            Some(g) => json!({"key": key, "generation": g}),
            None => json!({ "key": key }),
        };
        self.call("deldatastore", params).await.map(drop)
    }

    async fn list(&self, key: Vec<String>) -> Result<Vec<Entry>, RpcError> {
        entries(self.call("listdatastore", json!({ "key": key })).await?)
    }

    async fn has_children(&self, key: Vec<String>) -> Result<bool, RpcError> {
        // lightningd checks a write by reading the key's first row (its
        // own, or its first child's) and its parents; in `check` mode it
        // writes nothing (the database is read-only meanwhile).
        let params = json!({"command_to_check": "datastore", "key": key, "string": "",
                            "mode": "must-create"});
        match self.call("check", params).await {
            Ok(_) => Ok(false),
            Err(e) if e.code == codes::DATASTORE_UPDATE_HAS_CHILDREN => Ok(true),
            // A value at the key, or above it: no children there.
            Err(e)
                if e.code == codes::DATASTORE_UPDATE_ALREADY_EXISTS
                    || e.code == codes::DATASTORE_UPDATE_NO_CHILDREN =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn list_many(&self, keys: Vec<Vec<String>>) -> Result<Vec<Vec<Entry>>, RpcError> {
        let calls: Vec<(&str, Value)> = keys
            .iter()
            .map(|k| ("listdatastore", json!({ "key": k })))
            .collect();
        self.call_batch(&calls)
            .await?
            .into_iter()
            .map(|answer| entries(answer?))
            .collect()
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<Vec<Result<(), RpcError>>, RpcError> {
        let mut out = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(crate::store::MAX_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|op| match op {
                    Op::Create { key, value } => ("datastore", create_params(key, value)),
                    Op::Append { key, value } => ("datastore", append_params(key, value)),
                    Op::Delete { key } => ("deldatastore", json!({ "key": key })),
                })
                .collect();
            out.extend(
                self.call_batch(&calls)
                    .await?
                    .into_iter()
                    .map(|r| r.map(drop)),
            );
        }
        Ok(out)
    }
}

fn poll_params(key: &PartKey) -> Value {
    json!({"payment_hash": key.payment_hash, "partid": key.partid, "groupid": key.groupid, "timeout": 0})
}

/// A listing's rows. A row paystate cannot read is an error naming it,
/// never left out: left out, it would read as a part the node deleted.
fn payments(v: Value) -> Result<Vec<Payment>, RpcError> {
    let Some(Value::Array(items)) = v.get("payments").cloned() else {
        return Err(RpcError::lightningd(
            "listsendpays answered without payments",
        ));
    };
    items
        .into_iter()
        .map(|p| {
            serde_json::from_value::<Payment>(p.clone()).map_err(|e| {
                RpcError::lightningd(format!(
                    "paystate cannot read lightningd's payment row ({e}): {p}"
                ))
            })
        })
        .collect()
}

impl Node for Rpc {
    async fn parts_of(&self, hash: Sha256) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call("listsendpays", json!({"payment_hash": hash}))
                .await?,
        )
    }

    async fn parts_of_many(&self, hashes: Vec<Sha256>) -> Result<Vec<Vec<Payment>>, RpcError> {
        let mut out = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(crate::store::MAX_BATCH) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|h| ("listsendpays", json!({ "payment_hash": h })))
                .collect();
            for answer in self.call_batch(&calls).await? {
                out.push(payments(answer?)?);
            }
        }
        Ok(out)
    }

    async fn page(&self, page: Page) -> Result<Vec<Payment>, RpcError> {
        let mut params = json!({
            "index": page.index.name(), "start": page.start, "limit": page.limit,
        });
        if let Some(status) = page.status {
            params["status"] = json!(status.to_string());
        }
        payments(self.call("listsendpays", params).await?)
    }

    async fn parts_created(&self) -> Result<u64, RpcError> {
        self.index_now("created").await
    }

    async fn parts_updated(&self) -> Result<u64, RpcError> {
        self.index_now("updated").await
    }

    async fn parts_deleted(&self) -> Result<u64, RpcError> {
        self.index_now("deleted").await
    }

    async fn next_created(&self, after: u64) -> Result<Created, RpcError> {
        self.watch_created(after).await
    }

    async fn poll_builtin(&self, key: PartKey) -> Result<Result<Value, RpcError>, RpcError> {
        self.call_raw("waitsendpay", poll_params(&key)).await
    }

    async fn check_builtin(&self, params: Value) -> Result<Result<Value, RpcError>, RpcError> {
        self.call_raw("check", params).await
    }

    async fn delpay_builtin(
        &self,
        hash: Sha256,
        status: Status,
        part: Option<(u64, u64)>,
    ) -> Result<Result<Vec<Payment>, RpcError>, RpcError> {
        let mut params = json!({"payment_hash": hash, "status": status});
        if let Some((partid, groupid)) = part {
            params["partid"] = json!(partid);
            params["groupid"] = json!(groupid);
        }
        Ok(match self.call_raw("delpay", params).await? {
            Ok(v) => Ok(payments(v)?),
            Err(e) => Err(e),
        })
    }
}

impl Rpc {
    /// A `sendpays` index's value so far: a `wait` for 0 answers at once.
    async fn index_now(&self, name: &str) -> Result<u64, RpcError> {
        let w: Value = self.call_as("wait", waits::params(name, 0)).await??;
        Ok(Event::of(&w, name)?.value)
    }
}

/// A `datastore` write of a new key, the value as hex (records are bytes).
fn create_params(key: &[String], value: &[u8]) -> Value {
    json!({"key": key, "hex": crate::store::to_hex(value), "mode": "must-create"})
}

/// A `datastore` append to a key, created if absent.
fn append_params(key: &[String], value: &[u8]) -> Value {
    json!({"key": key, "hex": crate::store::to_hex(value), "mode": "create-or-append"})
}

/// A `listdatastore` answer's entries: each value read from its `hex`
/// (`string`, the same where it is text, is skipped unread).
fn entries(answer: Value) -> Result<Vec<Entry>, RpcError> {
    #[derive(Deserialize)]
    struct Listing {
        datastore: Vec<Listed>,
    }
    #[derive(Deserialize)]
    struct Listed {
        key: Vec<String>,
        #[serde(default)]
        generation: Option<u64>,
        #[serde(default)]
        hex: Option<String>,
    }
    let listing: Listing = serde_json::from_value(answer)
        .map_err(|e| RpcError::lightningd(format!("unreadable listdatastore answer: {e}")))?;
    listing
        .datastore
        .into_iter()
        .map(|e| {
            let value = match e.hex {
                Some(h) => Some(crate::store::from_hex(&h).ok_or_else(|| {
                    RpcError::lightningd(format!(
                        "unreadable listdatastore answer: the hex of {:?} is not hex",
                        e.key
                    ))
                })?),
                None => None,
            };
            Ok(Entry {
                key: e.key,
                generation: e.generation,
                value,
            })
        })
        .collect()
}
