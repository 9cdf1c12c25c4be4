//! The node's datastore as paystate uses it: the port (a small trait, so the
//! ledger can be tested against an in-memory fake) and the key layout.
//!
//! Layout, version 4 (docs/design.md, "Datastore layout"): the parts'
//! records in pages of 64 `created_index` values, each record the few
//! bytes [`crate::ledger::record`] encodes (identity, status, completion
//! time, a failure's summary), a page the records appended one after the
//! other ([`crate::ledger::page`]):
//! - `["paystate", "v4", "<page>"]`: `<page>` is `created_index / 64` in
//!   hex, after one hex digit saying how many digits follow, less one
//!   (`"00"`, `"1ff"`, `"2100"`), so that key order is `created_index`
//!   order in the fewest bytes. New parts land in the last pages, at the
//!   end of paystate's keys: on PostgreSQL lightningd reads every row from
//!   a written key to the table's end, which there is a few rows.
//!
//! Earlier layouts (v1-v3) are moved to this one at start-up
//! ([`crate::migrate`]).

use crate::error::RpcError;
use std::future::Future;

pub const ROOT: &str = "paystate";
pub const LAYOUT_VERSION: &str = "v4";

/// Parts (`created_index` values) per page.
pub const PAGE: u64 = 64;

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
    /// `datastore` in mode `create-or-append` (the value as `hex`).
    fn append(
        &self,
        key: Vec<String>,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// `deldatastore`, at `generation` if given.
    fn delete(
        &self,
        key: Vec<String>,
        generation: Option<u64>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// `listdatastore`: the key itself if it holds a value, else its immediate children.
    fn list(&self, key: Vec<String>) -> impl Future<Output = Result<Vec<Entry>, RpcError>> + Send;
    /// Whether any key lies under `key`. The default lists it; over
    /// lightningd's socket it is a `check` of a write there, which reads
    /// one row (a listing reads every row under the key, and on
    /// PostgreSQL every row after it).
    fn has_children(
        &self,
        key: Vec<String>,
    ) -> impl Future<Output = Result<bool, RpcError>> + Send {
        async move {
            let n = key.len();
            Ok(self.list(key).await?.iter().any(|e| e.key.len() > n))
        }
    }
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
            Op::Append { key, value } => store.append(key, value).await,
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
    /// `datastore` in mode `create-or-append`.
    Append { key: Vec<String>, value: Vec<u8> },
    /// `deldatastore`.
    Delete { key: Vec<String> },
}

/// `["paystate", "v4"]`: everything this layout keeps is under it.
pub fn layout_prefix() -> Vec<String> {
    vec![ROOT.into(), LAYOUT_VERSION.into()]
}

/// The key of the level mark ([`crate::level`]).
pub fn level_key() -> Vec<String> {
    let mut k = layout_prefix();
    k.push("level".into());
    k
}

/// The key of a page.
pub fn page_key(page: u64) -> Vec<String> {
    let digits = format!("{page:x}");
    let mut k = layout_prefix();
    k.push(format!("{:x}{digits}", digits.len() - 1));
    k
}

/// The page holding the record of the part with this `created_index`, and
/// the record's slot in it.
pub fn page_of(created_index: u64) -> (u64, u8) {
    (created_index / PAGE, (created_index % PAGE) as u8)
}

/// The page a key spells; `None` for a key that is not one (any other
/// spelling of the same number included, so that one page never has two
/// keys).
pub fn page_of_key(key: &[String]) -> Option<u64> {
    let [root, version, page] = key else {
        return None;
    };
    let lower_hex =
        |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if root != ROOT || version != LAYOUT_VERSION || !lower_hex(page) {
        return None;
    }
    let (len, digits) = page.split_at(1);
    let canonical = digits.len() == 1 || !digits.starts_with('0');
    if usize::from_str_radix(len, 16).ok()? + 1 != digits.len() || !canonical {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Bytes as lowercase hex: how datastore values travel.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Hex (either case) as bytes; `None` for anything else. A day's
/// failures are megabytes of it: a byte at a time, no parsing of text.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
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
    fn append(
        &self,
        key: Vec<String>,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        (**self).append(key, value)
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
    fn has_children(
        &self,
        key: Vec<String>,
    ) -> impl Future<Output = Result<bool, RpcError>> + Send {
        (**self).has_children(key)
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
    fn keys_sort_as_pages_and_parse_back() {
        let pages = [0, 1, 15, 16, 4097, 1 << 33, u64::MAX];
        let keys: Vec<Vec<String>> = pages.map(page_key).to_vec();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for (k, page) in keys.iter().zip(pages) {
            assert_eq!(page_of_key(k), Some(page), "{k:?}");
        }
        assert_eq!(page_key(258)[2], "2102");
        assert_eq!(page_key(u64::MAX)[2], "fffffffffffffffff");
        assert_eq!(page_of(130), (2, 2));
    }

    #[test]
    fn other_spellings_are_not_pages() {
        let k = |p: &str| vec![ROOT.to_string(), LAYOUT_VERSION.into(), p.into()];
        assert_eq!(page_of_key(&k("01")), Some(1));
        for bad in [
            k("1001"),
            k("101"),
            k("0A"),
            k("+1"),
            k(""),
            k("0"),
            k("deleting"),
            vec![ROOT.into(), "v3".into(), "01".into()],
            vec![ROOT.into(), LAYOUT_VERSION.into(), "01".into(), "02".into()],
        ] {
            assert_eq!(page_of_key(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_both_ways() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
        for bad in ["0", "zz", "+1", "0x", "é", "1é"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
    }
}
