//! paystate's client for lightningd's JSON-RPC socket, and the adapters
//! that make it the ledger's [`Datastore`] and the [`Node`].
//!
//! cln-rpc's client numbers its requests itself; paystate needs ids of its
//! own (`paystate-internal:N`) so that its calls to the built-in
//! `waitsendpay`/`delpay`, which come back through its own `rpc_command`
//! hook, can be recognized there and let through.

use crate::domain::{PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::node::Node;
use crate::store::{Datastore, Entry};
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Every request paystate sends carries an id starting with this.
pub const INTERNAL_ID_PREFIX: &str = "paystate-internal:";

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 16;

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

pub struct Rpc {
    path: PathBuf,
    pool: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
}

fn transport(e: impl std::fmt::Display) -> RpcError {
    RpcError::lightningd(format!("Connection to lightningd failed: {e}"))
}

impl Rpc {
    pub fn new(path: PathBuf) -> Self {
        Rpc {
            path,
            pool: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// One call: the inner result is lightningd's answer, the outer error a
    /// failure to get one.
    pub async fn call_raw(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, RpcError>, RpcError> {
        let id = format!(
            "{INTERNAL_ID_PREFIX}{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => Conn {
                stream: UnixStream::connect(&self.path).await.map_err(transport)?,
                buf: Vec::new(),
            },
        };
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut bytes = serde_json::to_vec(&request).expect("a request serializes");
        bytes.extend_from_slice(b"\n\n");
        conn.stream.write_all(&bytes).await.map_err(transport)?;
        let mut response = read_value(&mut conn).await?;
        if response.get("id").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(RpcError::lightningd(format!(
                "lightningd answered {method} with a foreign id: {}",
                response.get("id").unwrap_or(&Value::Null)
            )));
        }
        {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
        }
        if let Some(result) = response.get_mut("result") {
            return Ok(Ok(result.take()));
        }
        match response.get_mut("error").map(Value::take) {
            Some(err) => Ok(Err(serde_json::from_value(err.clone()).unwrap_or_else(
                |_| {
                    RpcError::lightningd(format!(
                        "lightningd answered {method} with a malformed error: {err}"
                    ))
                },
            ))),
            None => Err(RpcError::lightningd(format!(
                "lightningd answered {method} with neither result nor error"
            ))),
        }
    }

    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_raw(method, params).await?
    }
}

/// Reads one JSON value from the connection, keeping what follows it.
async fn read_value(conn: &mut Conn) -> Result<Value, RpcError> {
    loop {
        let mut it = serde_json::Deserializer::from_slice(&conn.buf).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) => {
                let used = it.byte_offset();
                conn.buf.drain(..used);
                return Ok(v);
            }
            Some(Err(e)) if !e.is_eof() => {
                return Err(transport(format!("unreadable answer: {e}")))
            }
            _ => {}
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = conn.stream.read(&mut chunk).await.map_err(transport)?;
        if n == 0 {
            return Err(transport("connection closed"));
        }
        conn.buf.extend_from_slice(&chunk[..n]);
    }
}

fn field<'a>(v: &'a Value, name: &str, method: &str) -> Result<&'a Value, RpcError> {
    v.get(name)
        .ok_or_else(|| RpcError::lightningd(format!("{method} answered without {name}: {v}")))
}

fn generation(v: &Value, method: &str) -> Result<u64, RpcError> {
    field(v, "generation", method)?
        .as_u64()
        .ok_or_else(|| RpcError::lightningd(format!("{method} answered a bad generation: {v}")))
}

impl Datastore for Rpc {
    async fn create(&self, key: Vec<String>, value: String) -> Result<u64, RpcError> {
        let r = self
            .call(
                "datastore",
                json!({"key": key, "string": value, "mode": "must-create"}),
            )
            .await?;
        generation(&r, "datastore")
    }

    async fn replace(&self, key: Vec<String>, value: String, gen: u64) -> Result<u64, RpcError> {
        let r = self
            .call(
                "datastore",
                json!({"key": key, "string": value, "mode": "must-replace", "generation": gen}),
            )
            .await?;
        generation(&r, "datastore")
    }

    async fn delete(&self, key: Vec<String>, gen: u64) -> Result<(), RpcError> {
        self.call("deldatastore", json!({"key": key, "generation": gen}))
            .await
            .map(drop)
    }

    async fn list(&self, key: Vec<String>) -> Result<Vec<Entry>, RpcError> {
        let r = self.call("listdatastore", json!({ "key": key })).await?;
        let entries = field(&r, "datastore", "listdatastore")?
            .as_array()
            .ok_or_else(|| RpcError::lightningd("listdatastore answered a non-array"))?;
        entries
            .iter()
            .map(|e| {
                Ok(Entry {
                    key: serde_json::from_value(field(e, "key", "listdatastore")?.clone())
                        .map_err(|err| RpcError::lightningd(format!("listdatastore key: {err}")))?,
                    generation: e.get("generation").and_then(Value::as_u64).unwrap_or(0),
                    string: e.get("string").and_then(Value::as_str).map(str::to_owned),
                })
            })
            .collect()
    }
}

fn payments(v: Value) -> Result<Vec<Payment>, RpcError> {
    let Some(Value::Array(items)) = v.get("payments").cloned() else {
        return Err(RpcError::lightningd(
            "listsendpays answered without payments",
        ));
    };
    Ok(items
        .into_iter()
        .filter_map(|p| match serde_json::from_value::<Payment>(p.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("Ignoring unreadable listsendpays entry ({e}): {p}");
                None
            }
        })
        .collect())
}

impl Node for Rpc {
    async fn parts_of(&self, hash: Sha256) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call("listsendpays", json!({"payment_hash": hash}))
                .await?,
        )
    }

    async fn updated_since(&self, start: u64, limit: u32) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call(
                "listsendpays",
                json!({"index": "updated", "start": start, "limit": limit}),
            )
            .await?,
        )
    }

    async fn poll_builtin(&self, key: PartKey) -> Result<Result<Value, RpcError>, RpcError> {
        self.call_raw(
            "waitsendpay",
            json!({"payment_hash": key.payment_hash, "partid": key.partid, "groupid": key.groupid, "timeout": 0}),
        )
        .await
    }

    async fn delete_builtin(&self, key: PartKey, status: Status) -> Result<(), RpcError> {
        match self
            .call(
                "delpay",
                json!({"payment_hash": key.payment_hash, "status": status, "partid": key.partid, "groupid": key.groupid}),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already gone from the node: the delete is done. (lightningd
            // also answers 208 for a status mismatch, which is a real error.)
            Err(e)
                if e.code == codes::PAY_NO_SUCH_PAYMENT
                    && (e.message.starts_with("Unknown payment")
                        || e.message.starts_with("No payment for that")) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
