//! The node's datastore as paystate uses it: the port (a small trait, so the
//! ledger can be tested against an in-memory fake) and the key layout.
//!
//! Layout, version 3 (documented in docs/design.md). A part's datastore *name*
//! says everything the in-memory index needs, `<payment_hash>-<groupid>-
//! <partid>-<created_index>-<status>`, so start-up lists names only (a key
//! with children is listed without a value) and never reads the records:
//! - `["paystate", "v3", "parts", "<hhh>", "<name>", "record"]`: the part,
//!   JSON `{"payment": {...listsendpays fields...}, "failure": {"code",
//!   "message", "details"}?}`. Written once, never replaced. `<hhh>` is the
//!   hash's first three hex digits: 4,096 shards, so that listing one
//!   stays short (lightningd reads every row under the key it lists, some
//!   50 µs each: v2's 256 shards took 40-65 ms each at 100,000 parts).
//! - `["paystate", "v3", "deleting", "<name>"]`: a delete of that part is in
//!   progress (the part is gone for every answer; start-up finishes it).
//!   Written by earlier versions only.

use crate::domain::{Part, PartKey, Status};
use crate::error::RpcError;
use cln_rpc::primitives::Sha256;
use std::future::Future;
use std::str::FromStr;

pub const ROOT: &str = "paystate";
pub const LAYOUT_VERSION: &str = "v3";
const RECORD: &str = "record";

/// One datastore entry, as `listdatastore` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<String>,
    /// `None` for a key that has children rather than a value.
    pub generation: Option<u64>,
    /// The value, where it is valid UTF-8.
    pub string: Option<String>,
}

/// The datastore operations paystate needs. A record is written once
/// (`must-create`) and never replaced, so no write can silently overwrite
/// another.
pub trait Datastore: Send + Sync + 'static {
    /// `datastore` in mode `must-create`; returns the new generation (0).
    fn create(
        &self,
        key: Vec<String>,
        value: String,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send;
    /// `deldatastore`, at `generation` if given; returns the value it held
    /// (where it is text), as lightningd's answer carries it.
    fn delete(
        &self,
        key: Vec<String>,
        generation: Option<u64>,
    ) -> impl Future<Output = Result<Option<String>, RpcError>> + Send;
    /// `listdatastore`: the key itself if it holds a value, else its immediate children.
    fn list(&self, key: Vec<String>) -> impl Future<Output = Result<Vec<Entry>, RpcError>> + Send;
    /// Several listings at once (over lightningd's socket: written together,
    /// one round trip); the default lists one after the other.
    fn list_many(
        &self,
        keys: Vec<Vec<String>>,
    ) -> impl Future<Output = Result<Vec<Vec<Entry>>, RpcError>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.list(key).await?);
            }
            Ok(out)
        }
    }
    /// Several writes, in order, each answered on its own. Over
    /// lightningd's socket they go together on a `batching` connection,
    /// so that lightningd commits them at once: one commit for up to 100
    /// writes instead of one each. The outer error: the node could not be
    /// reached (then none, some or all of them may have been made).
    fn apply(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<Vec<Result<(), RpcError>>, RpcError>> + Send {
        apply_one_by_one(self, ops)
    }
}

/// [`Datastore::apply`] as a store without batches does it: each write on
/// its own, in order.
pub async fn apply_one_by_one<D: Datastore + ?Sized>(
    store: &D,
    ops: Vec<Op>,
) -> Result<Vec<Result<(), RpcError>>, RpcError> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(match op {
            Op::Create { key, value } => store.create(key, value).await.map(drop),
            Op::Delete { key } => store.delete(key, None).await.map(drop),
        });
    }
    Ok(out)
}

/// Writes [`Datastore::apply`] sends together at most: lightningd commits
/// and lets others in after this many requests of one read
/// (`lightningd/jsonrpc.c`), so a larger batch gains nothing.
pub const MAX_BATCH: usize = 100;

/// A write the ledger hands to [`Datastore::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `datastore` in mode `must-create`.
    Create { key: Vec<String>, value: String },
    /// `deldatastore`.
    Delete { key: Vec<String> },
}

fn prefix(section: &str) -> Vec<String> {
    vec![ROOT.into(), LAYOUT_VERSION.into(), section.into()]
}

pub fn parts_prefix() -> Vec<String> {
    prefix("parts")
}

pub fn deleting_prefix() -> Vec<String> {
    prefix("deleting")
}

/// What the ledger's index holds of a part: its identity, attempt and
/// terminal status, all of which its datastore name spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub key: PartKey,
    pub created_index: u64,
    pub status: Status,
}

impl Summary {
    pub fn of(part: &Part) -> Summary {
        Summary {
            key: part.key(),
            created_index: part.payment.created_index,
            status: part.status(),
        }
    }

    /// `<payment_hash>-<groupid>-<partid>-<created_index>-<status>`.
    pub fn name(&self) -> String {
        let k = &self.key;
        format!(
            "{}-{}-{}-{}-{}",
            k.payment_hash, k.groupid, k.partid, self.created_index, self.status
        )
    }

    pub fn parse(name: &str) -> Result<Summary, String> {
        let fields: Vec<&str> = name.split('-').collect();
        let [hash, groupid, partid, created_index, status] = fields[..] else {
            return Err(format!(
                "{name:?} is not <hash>-<groupid>-<partid>-<created_index>-<status>"
            ));
        };
        let number = |what: &str, s: &str| {
            // Canonical decimal only, as written: `u64::from_str` takes "+1"
            // and "01", which would give one part two names.
            let canonical = s == "0" || !s.starts_with('0');
            if s.is_empty() || !canonical || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{what} {s:?} in {name:?} is not a number"));
            }
            s.parse::<u64>()
                .map_err(|e| format!("{what} {s:?} in {name:?}: {e}"))
        };
        if hash.len() != 64 || hash.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("{hash:?} in {name:?} is not a payment hash"));
        }
        let payment_hash = Sha256::from_str(hash)
            .map_err(|e| format!("{hash:?} in {name:?} is not a payment hash: {e}"))?;
        let status = match status {
            "complete" => Status::Complete,
            "failed" => Status::Failed,
            other => return Err(format!("status {other:?} in {name:?} is not terminal")),
        };
        Ok(Summary {
            key: PartKey {
                payment_hash,
                groupid: number("groupid", groupid)?,
                partid: number("partid", partid)?,
            },
            created_index: number("created_index", created_index)?,
            status,
        })
    }

    fn shard(&self) -> String {
        self.key.payment_hash.to_string()[..3].to_string()
    }

    /// Where the part's record lives.
    pub fn record_key(&self) -> Vec<String> {
        let mut k = parts_prefix();
        k.extend([self.shard(), self.name(), RECORD.into()]);
        k
    }

    /// The mark of a delete in progress.
    pub fn deleting_key(&self) -> Vec<String> {
        let mut k = deleting_prefix();
        k.push(self.name());
        k
    }
}

/// A part's record: [`Part`] as JSON.
pub fn encode(part: &Part) -> String {
    serde_json::to_string(part).expect("a part always serializes")
}

pub fn decode(s: &str) -> Result<Part, String> {
    serde_json::from_str(s).map_err(|e| e.to_string())
}

/// Shared handles delegate, so one client can serve as datastore and node.
impl<T: Datastore> Datastore for std::sync::Arc<T> {
    fn create(
        &self,
        key: Vec<String>,
        value: String,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).create(key, value)
    }
    fn delete(
        &self,
        key: Vec<String>,
        generation: Option<u64>,
    ) -> impl Future<Output = Result<Option<String>, RpcError>> + Send {
        (**self).delete(key, generation)
    }
    fn list(&self, key: Vec<String>) -> impl Future<Output = Result<Vec<Entry>, RpcError>> + Send {
        (**self).list(key)
    }
    fn list_many(
        &self,
        keys: Vec<Vec<String>>,
    ) -> impl Future<Output = Result<Vec<Vec<Entry>>, RpcError>> + Send {
        (**self).list_many(keys)
    }
    fn apply(
        &self,
        ops: Vec<Op>,
    ) -> impl Future<Output = Result<Vec<Result<(), RpcError>>, RpcError>> + Send {
        (**self).apply(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::payment;

    #[test]
    fn a_name_spells_the_summary_and_parses_back() {
        let part = Part {
            payment: payment(7, Status::Failed),
            failure: None,
        };
        let s = Summary::of(&part);
        let name = s.name();
        assert!(name.ends_with(&format!("-{}-failed", part.payment.created_index)));
        assert_eq!(Summary::parse(&name), Ok(s));
        assert_eq!(s.record_key()[3], name[..3]);
        assert_eq!(s.record_key()[4], name);
    }

    #[test]
    fn foreign_names_are_refused_with_a_reason() {
        let h = "ab".repeat(32);
        for bad in [
            "".to_string(),
            format!("{h}-1-0-5"),
            format!("{h}-1-0-5-pending"),
            format!("{h}-1-0-+5-complete"),
            format!("{h}-01-0-5-complete"),
            format!("{h}-x-0-5-complete"),
            format!("{}-1-0-5-complete", "AB".repeat(32)),
            format!("{}-1-0-5-complete", &h[..63]),
            format!("{h}-1-0-99999999999999999999-complete"),
        ] {
            assert!(Summary::parse(&bad).is_err(), "{bad:?} parsed");
        }
        assert!(Summary::parse(&format!("{h}-1-0-5-complete")).is_ok());
    }
}
