//! The node's datastore as paystate uses it: the port (a small trait, so the
//! ledger can be tested against an in-memory fake) and the key layout.
//!
//! Layout, version 4 (docs/design.md, "Datastore layout"): one record per
//! part, keyed by the part's `created_index`, its value the few bytes
//! [`crate::ledger::record`] encodes (identity, status, completion time,
//! a failure's summary):
//! - `["paystate", "v4", "<group>", "<slot>"]`: `<group>` is
//!   `created_index / 256` in hex, after one hex digit saying how many
//!   digits follow, less one (`"00"`, `"1ff"`, `"2100"`), and `<slot>` the
//!   rest in 2 hex digits, so that key order is `created_index` order in
//!   the fewest bytes. New parts land at the end of
//!   paystate's keys: on PostgreSQL lightningd reads every row from a
//!   written key to the table's end, which there is a few rows. A group
//!   lists 256 rows at most.
//!
//! Earlier layouts (v1-v3) are moved to this one at start-up
//! ([`crate::migrate`]).

use crate::error::RpcError;
use std::future::Future;

pub const ROOT: &str = "paystate";
pub const LAYOUT_VERSION: &str = "v4";

/// Parts per group of keys.
pub const GROUP: u64 = 256;

/// One datastore entry, as `listdatastore` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<String>,
    /// `None` for a key that has children rather than a value.
    pub generation: Option<u64>,
    /// The value's bytes (`None` for a key with children).
    pub value: Option<Vec<u8>>,
}

impl Entry {
    /// The value as text, where it is valid UTF-8.
    pub fn string(&self) -> Option<&str> {
        std::str::from_utf8(self.value.as_deref()?).ok()
    }
}

/// The datastore operations paystate needs. A record is written once
/// (`must-create`) and never replaced, so no write can silently overwrite
/// another.
pub trait Datastore: Send + Sync + 'static {
    /// `datastore` in mode `must-create` (the value as `hex`); returns the
    /// new generation (0).
    fn create(
        &self,
        key: Vec<String>,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send;
    /// `deldatastore`, at `generation` if given.
    fn delete(
        &self,
        key: Vec<String>,
        generation: Option<u64>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
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
            Op::Delete { key } => store.delete(key, None).await,
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
    Create { key: Vec<String>, value: Vec<u8> },
    /// `deldatastore`.
    Delete { key: Vec<String> },
}

/// `["paystate", "v4"]`: everything this layout keeps is under it.
pub fn layout_prefix() -> Vec<String> {
    vec![ROOT.into(), LAYOUT_VERSION.into()]
}

/// The key of the group holding `created_index`'s record (listed to load it).
pub fn group_key(group: u64) -> Vec<String> {
    let digits = format!("{group:x}");
    let mut k = layout_prefix();
    k.push(format!("{:x}{digits}", digits.len() - 1));
    k
}

/// Where the record of the part with this `created_index` lives.
pub fn record_key(created_index: u64) -> Vec<String> {
    let mut k = group_key(created_index / GROUP);
    k.push(format!("{:02x}", created_index % GROUP));
    k
}

/// The `created_index` a record's key spells; `None` for a key that is
/// not one (any other spelling of the same number included, so that one
/// part never has two keys).
pub fn created_index_of(key: &[String]) -> Option<u64> {
    let [root, version, group, slot] = key else {
        return None;
    };
    let lower_hex =
        |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if root != ROOT
        || version != LAYOUT_VERSION
        || !lower_hex(group)
        || !lower_hex(slot)
        || slot.len() != 2
    {
        return None;
    }
    let (len, digits) = group.split_at(1);
    let canonical = digits.len() == 1 || !digits.starts_with('0');
    if usize::from_str_radix(len, 16).ok()? + 1 != digits.len() || !canonical {
        return None;
    }
    let group = u64::from_str_radix(digits, 16).ok()?;
    let slot = u64::from_str_radix(slot, 16).ok()?;
    (slot < GROUP).then(|| group.checked_mul(GROUP)?.checked_add(slot))?
}

/// Bytes as lowercase hex: how datastore values travel.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) as bytes; `None` for anything else.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Shared handles delegate, so one client can serve as datastore and node.
impl<T: Datastore> Datastore for std::sync::Arc<T> {
    fn create(
        &self,
        key: Vec<String>,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).create(key, value)
    }
    fn delete(
        &self,
        key: Vec<String>,
        generation: Option<u64>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
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

    #[test]
    fn keys_sort_as_created_index_and_parse_back() {
        let keys: Vec<Vec<String>> = [0, 1, 255, 256, 4097, 1 << 33].map(record_key).to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (k, ci) in keys.iter().zip([0, 1, 255, 256, 4097, 1 << 33]) {
            assert_eq!(created_index_of(k), Some(ci), "{k:?}");
        }
        assert_eq!(record_key(258)[2..], ["01".to_string(), "02".into()]);
        assert_eq!(record_key(0x10000)[2], "2100");
        assert_eq!(record_key(u64::MAX)[2], "dffffffffffffff");
    }

    #[test]
    fn hex_both_ways() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
        for bad in ["0", "zz", "+1", "0x"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn other_spellings_are_not_records() {
        let k =
            |g: &str, s: &str| vec![ROOT.to_string(), LAYOUT_VERSION.into(), g.into(), s.into()];
        assert_eq!(created_index_of(&k("01", "01")), Some(257));
        for bad in [
            k("1001", "01"),
            k("101", "01"),
            k("01", "1"),
            k("0A", "01"),
            k("01", "0g"),
            k("+1", "01"),
            k("", "01"),
            k("0", "01"),
            vec![ROOT.into(), "v3".into(), "01".into(), "01".into()],
            vec![ROOT.into(), LAYOUT_VERSION.into(), "01".into()],
        ] {
            assert_eq!(created_index_of(&bad), None, "{bad:?}");
        }
    }
}
