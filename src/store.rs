//! The node's datastore as paystate uses it: the port (a small trait, so the
//! ledger can be tested against an in-memory fake) and the key layout.
//!
//! Layout, version 1 (documented in the README):
//! - `["paystate", "v1", "parts", "<hh>", "<payment_hash>-<groupid>-<partid>"]`:
//!   one terminal part, JSON `{"payment": {...listsendpays fields...},
//!   "failure": {"code", "message", "details"}?, "deleting": true?}`.
//!   `<hh>` is the hash's first two hex digits: 256 shards, so that loading
//!   reads many small listings rather than one huge one (lightningd sends
//!   every value twice, as hex and as string).
//! - `["paystate", "v1", "catchup"]`: JSON `{"updated_index": N}`, the
//!   node's `updated_index` up to which catch-up has imported.

use crate::domain::{Failure, Part, PartKey, Payment};
use crate::error::RpcError;
use serde::{Deserialize, Serialize};
use std::future::Future;

pub const ROOT: &str = "paystate";
pub const LAYOUT_VERSION: &str = "v1";

/// One datastore entry, as `listdatastore` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<String>,
    pub generation: u64,
    pub string: Option<String>,
}

/// The datastore operations paystate needs. Every write is conditional
/// (`must-create`, or `must-replace`/delete at a known generation), so no
/// update can silently overwrite another.
pub trait Datastore: Send + Sync + 'static {
    /// `datastore` in mode `must-create`; returns the new generation (0).
    fn create(
        &self,
        key: Vec<String>,
        value: String,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send;
    /// `datastore` in mode `must-replace` at `generation`; returns the new generation.
    fn replace(
        &self,
        key: Vec<String>,
        value: String,
        generation: u64,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send;
    /// `deldatastore` at `generation`.
    fn delete(
        &self,
        key: Vec<String>,
        generation: u64,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
    /// `listdatastore`: the key itself if it holds a value, else its immediate children.
    fn list(&self, key: Vec<String>) -> impl Future<Output = Result<Vec<Entry>, RpcError>> + Send;
}

pub fn parts_prefix() -> Vec<String> {
    vec![ROOT.into(), LAYOUT_VERSION.into(), "parts".into()]
}

pub fn part_key(key: &PartKey) -> Vec<String> {
    let hash = key.payment_hash.to_string();
    let mut k = parts_prefix();
    k.push(hash[..2].to_string());
    k.push(format!("{hash}-{}-{}", key.groupid, key.partid));
    k
}

pub fn catchup_key() -> Vec<String> {
    vec![ROOT.into(), LAYOUT_VERSION.into(), "catchup".into()]
}

/// A part as stored: the fields of [`Part`] plus `deleting`, which marks a
/// delete in progress (the part is already gone for every answer, and
/// start-up finishes the delete). Spelled out rather than flattened, so
/// decoding does not buffer every field first.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredPart {
    pub payment: Payment,
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub deleting: bool,
}

impl StoredPart {
    pub fn encode(part: &Part, deleting: bool) -> String {
        #[derive(Serialize)]
        struct Ref<'a> {
            payment: &'a Payment,
            #[serde(skip_serializing_if = "Option::is_none")]
            failure: &'a Option<Failure>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            deleting: bool,
        }
        serde_json::to_string(&Ref {
            payment: &part.payment,
            failure: &part.failure,
            deleting,
        })
        .expect("a part always serializes")
    }

    pub fn decode(s: &str) -> Result<StoredPart, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    pub fn into_part(self) -> Part {
        Part {
            payment: self.payment,
            failure: self.failure,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Watermark {
    pub updated_index: u64,
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
    fn replace(
        &self,
        key: Vec<String>,
        value: String,
        generation: u64,
    ) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).replace(key, value, generation)
    }
    fn delete(
        &self,
        key: Vec<String>,
        generation: u64,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        (**self).delete(key, generation)
    }
    fn list(&self, key: Vec<String>) -> impl Future<Output = Result<Vec<Entry>, RpcError>> + Send {
        (**self).list(key)
    }
}
