//! Hand-written fakes of the two ports, for fast unit tests of the ledger
//! and the commands without a node.

use crate::domain::{PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::node::{Created, Node, Page};
use crate::store::{self, Datastore, Entry, Op};
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Each key's generation and value.
pub type Entries = BTreeMap<Vec<String>, (u64, Vec<u8>)>;

/// The datastore's generation rules, in memory; `fail_next` makes the next
/// write fail.
#[derive(Default)]
pub struct FakeDatastore {
    pub entries: Mutex<Entries>,
    pub fail_next: Mutex<Option<RpcError>>,
    /// The size of each batch applied, in order.
    pub batches: Mutex<Vec<usize>>,
}

impl FakeDatastore {
    fn fault(&self) -> Result<(), RpcError> {
        match self.fail_next.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Datastore for FakeDatastore {
    async fn create(&self, key: Vec<String>, value: Vec<u8>) -> Result<u64, RpcError> {
        self.fault()?;
        let mut e = self.entries.lock().unwrap();
        if e.contains_key(&key) {
            return Err(RpcError::new(
                codes::DATASTORE_UPDATE_ALREADY_EXISTS,
                "Key already exists",
            ));
        }
        e.insert(key, (0, value));
        Ok(0)
    }

    async fn append(&self, key: Vec<String>, value: Vec<u8>) -> Result<(), RpcError> {
        self.fault()?;
        let mut e = self.entries.lock().unwrap();
        let entry = e.entry(key).or_insert((0, Vec::new()));
        if !entry.1.is_empty() {
            entry.0 += 1;
        }
        entry.1.extend(value);
        Ok(())
    }

    async fn delete(&self, key: Vec<String>, generation: Option<u64>) -> Result<(), RpcError> {
        self.fault()?;
        let mut e = self.entries.lock().unwrap();
        match e.get(&key) {
            None => Err(RpcError::new(
                codes::DATASTORE_DEL_DOES_NOT_EXIST,
                "Key does not exist",
            )),
            Some((g, _)) if generation.is_some_and(|w| w != *g) => Err(RpcError::new(
                codes::DATASTORE_DEL_WRONG_GENERATION,
                "generation is different",
            )),
            Some(_) => {
                e.remove(&key);
                Ok(())
            }
        }
    }

    async fn list(&self, key: Vec<String>) -> Result<Vec<Entry>, RpcError> {
        let e = self.entries.lock().unwrap();
        if let Some((g, v)) = e.get(&key) {
            return Ok(vec![Entry {
                key,
                generation: Some(*g),
                value: Some(v.clone()),
            }]);
        }
        // Immediate children: a value, or a bare parent key.
        let mut out: BTreeMap<Vec<String>, Entry> = BTreeMap::new();
        for (k, (g, v)) in e
            .iter()
            .filter(|(k, _)| k.len() > key.len() && k.starts_with(&key))
        {
            let child = k[..key.len() + 1].to_vec();
            let entry = if child.len() == k.len() {
                Entry {
                    key: k.clone(),
                    generation: Some(*g),
                    value: Some(v.clone()),
                }
            } else {
                Entry {
                    key: child.clone(),
                    generation: None,
                    value: None,
                }
            };
            out.entry(child).or_insert(entry);
        }
        Ok(out.into_values().collect())
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<Vec<Result<(), RpcError>>, RpcError> {
        self.batches.lock().unwrap().push(ops.len());
        store::apply_one_by_one(self, ops).await
    }
}

/// A node's payments table; records the deletes it was asked for.
#[derive(Default)]
pub struct FakeNode {
    pub parts: Mutex<Vec<Payment>>,
    pub deletes: Mutex<Vec<PartKey>>,
    /// How many of the next index reads go unanswered (lightningd drops a
    /// command held by a plugin's hook as that plugin exits).
    pub unanswered: std::sync::atomic::AtomicUsize,
}

impl FakeNode {
    /// Never returns where this read is one to go unanswered.
    async fn answering(&self) {
        use std::sync::atomic::Ordering;
        let dropped = self
            .unanswered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if dropped {
            std::future::pending::<()>().await;
        }
    }
}

impl Node for FakeNode {
    async fn parts_of(&self, hash: Sha256) -> Result<Vec<Payment>, RpcError> {
        Ok(self
            .parts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.payment_hash == hash)
            .cloned()
            .collect())
    }

    async fn parts_of_many(&self, hashes: Vec<Sha256>) -> Result<Vec<Vec<Payment>>, RpcError> {
        let mut out = Vec::new();
        for h in hashes {
            out.push(self.parts_of(h).await?);
        }
        Ok(out)
    }

    async fn page(&self, page: Page) -> Result<Vec<Payment>, RpcError> {
        let mut v: Vec<Payment> = self
            .parts
            .lock()
            .unwrap()
            .iter()
            // As lightningd's `updated_index >= ?`: a part never updated
            // is at 0.
            .filter(|p| page.index.of(p).unwrap_or(0) >= page.start)
            .filter(|p| page.status.map_or(true, |s| p.status == s))
            .cloned()
            .collect();
        v.sort_by_key(|p| (page.index.of(p).unwrap_or(0), p.created_index));
        v.truncate(page.limit as usize);
        Ok(v)
    }

    async fn parts_created(&self) -> Result<u64, RpcError> {
        self.answering().await;
        let parts = self.parts.lock().unwrap();
        Ok(parts.iter().map(|p| p.created_index).max().unwrap_or(0))
    }

    async fn parts_deleted(&self) -> Result<u64, RpcError> {
        self.answering().await;
        Ok(self.deletes.lock().unwrap().len() as u64)
    }

    async fn parts_updated(&self) -> Result<u64, RpcError> {
        self.answering().await;
        let parts = self.parts.lock().unwrap();
        Ok(parts
            .iter()
            .filter_map(|p| p.updated_index)
            .max()
            .unwrap_or(0))
    }

    async fn next_created(&self, after: u64) -> Result<Created, RpcError> {
        let now = self.parts_created().await?;
        if now > after {
            return Ok(Created {
                index: now,
                part: None,
            });
        }
        // The fake's table only changes under a test's hand.
        std::future::pending().await
    }

    async fn poll_builtin(&self, key: PartKey) -> Result<Result<Value, RpcError>, RpcError> {
        let parts = self.parts.lock().unwrap();
        Ok(match parts.iter().find(|p| p.key() == key) {
            None => Err(RpcError::new(codes::PAY_NO_SUCH_PAYMENT, "Never attempted")),
            Some(p) if p.status == Status::Failed => Err(RpcError::new(204, "failed: WIRE_X (test)")
                .with_data(json!({"created_index": p.created_index, "id": p.id, "payment_hash": p.payment_hash,
                    "groupid": p.groupid, "amount_sent_msat": p.amount_sent_msat, "created_at": p.created_at,
                    "status": "failed", "erring_index": 1, "failcode": 4103}))),
            Some(p) => Ok(p.to_json()),
        })
    }

    /// `check` of a built-in whose parameters are all good.
    async fn check_builtin(&self, params: Value) -> Result<Result<Value, RpcError>, RpcError> {
        let name = params
            .get("command_to_check")
            .or_else(|| params.get(0))
            .cloned();
        Ok(Ok(json!({ "command_to_check": name })))
    }

    /// lightningd's `delpay`, in its order of checks.
    async fn delpay_builtin(
        &self,
        hash: Sha256,
        status: Status,
        part: Option<(u64, u64)>,
    ) -> Result<Result<Vec<Payment>, RpcError>, RpcError> {
        let mut parts = self.parts.lock().unwrap();
        if !parts.iter().any(|p| p.payment_hash == hash) {
            let message = format!("Unknown payment with payment_hash: {hash}");
            return Ok(Err(RpcError::new(codes::PAY_NO_SUCH_PAYMENT, message)));
        }
        let chosen = |p: &Payment| {
            p.payment_hash == hash
                && part.map_or(true, |(pi, gi)| p.partid == pi && p.groupid == gi)
        };
        let other = parts
            .iter()
            .filter(|p| chosen(p) && p.status != status)
            .map(|p| p.status)
            .next_back();
        let doomed: Vec<Payment> = parts
            .iter()
            .filter(|p| chosen(p) && p.status == status)
            .cloned()
            .collect();
        if doomed.is_empty() {
            let message = match other {
                Some(o) => format!("Payment with hash {hash} has {o} status but it different from the one provided {status}"),
                None => "No payment for that payment_hash with that partid and groupid".into(),
            };
            return Ok(Err(RpcError::new(codes::PAY_NO_SUCH_PAYMENT, message)));
        }
        parts.retain(|p| !(chosen(p) && p.status == status));
        self.deletes
            .lock()
            .unwrap()
            .extend(doomed.iter().map(Payment::key));
        Ok(Ok(doomed))
    }
}

pub fn payment(n: u8, status: Status) -> Payment {
    let hash = format!("{n:02x}").repeat(32);
    serde_json::from_value(
        json!({"created_index": n, "id": n, "payment_hash": hash, "groupid": 1,
        "updated_index": n, "amount_sent_msat": 1000, "created_at": 1, "status": status,
        "payment_preimage": if status == Status::Complete { Some("11".repeat(32)) } else { None }}),
    )
    .unwrap()
}
