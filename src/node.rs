//! The node's own payment table, as paystate reads and changes it: the
//! port (a small trait, faked in unit tests) over lightningd's built-in
//! `listsendpays`, `waitsendpay`, `delpay` and `wait`.

use crate::domain::{PartKey, Payment, Status};
use crate::error::RpcError;
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::future::Future;

/// A `listsendpays` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Created,
    Updated,
    /// Accepted by lightningd (`param_index`), listed as `created`.
    Deleted,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Index::Created => "created",
            Index::Updated => "updated",
            Index::Deleted => "deleted",
        }
    }

    /// Where a part sits in this index's order.
    pub fn of(self, p: &Payment) -> Option<u64> {
        match self {
            Index::Updated => p.updated_index,
            _ => Some(p.created_index),
        }
    }
}

/// One page of the node's table: `listsendpays index= start= limit=
/// [status=]`, in the index's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub index: Index,
    pub start: u64,
    pub limit: u32,
    pub status: Option<Status>,
}

impl Page {
    /// `limit` parts from `created_index` `start` on, any status.
    pub fn created(start: u64, limit: u32) -> Page {
        Page {
            index: Index::Created,
            start,
            limit,
            status: None,
        }
    }
}

/// A move of the node's `created` index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The index it reached.
    pub index: u64,
    /// The part created, where the node said (a wait pending as it moved).
    pub part: Option<PartKey>,
}

pub trait Node: Send + Sync + 'static {
    /// Every part the node has for `hash` (`listsendpays payment_hash=`).
    fn parts_of(&self, hash: Sha256)
        -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send;

    /// The parts of each hash, in one round trip (one `listsendpays
    /// payment_hash=` each, batched).
    fn parts_of_many(
        &self,
        hashes: Vec<Sha256>,
    ) -> impl Future<Output = Result<Vec<Vec<Payment>>, RpcError>> + Send;

    /// One page of the node's table.
    fn page(&self, page: Page) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send;

    /// How many parts the node has ever created (its `created_index` so far,
    /// from `wait` on `sendpays`, which answers at once): a bound on the
    /// ledger's size.
    fn parts_created(&self) -> impl Future<Output = Result<u64, RpcError>> + Send;

    /// The node's `updated_index` so far (`wait` on `sendpays`, at once).
    fn parts_updated(&self) -> impl Future<Output = Result<u64, RpcError>> + Send;

    /// The node's `deleted` index so far (`wait` on `sendpays`, at once).
    fn parts_deleted(&self) -> impl Future<Output = Result<u64, RpcError>> + Send;

    /// The node's next part after `created_index` `after` (`wait` on
    /// `sendpays`, index `created`, on a connection of its own: dropping
    /// the future drops the wait): at once if the node has created one
    /// since.
    fn next_created(&self, after: u64) -> impl Future<Output = Result<Created, RpcError>> + Send;

    /// The node's built-in `waitsendpay` with `timeout: 0` on one part: its
    /// answer, result or error, as the node gave it. The outer error is a
    /// failure to reach the node at all.
    fn poll_builtin(
        &self,
        key: PartKey,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send;

    /// The node's built-in `delpay` (of one part, given `(partid,
    /// groupid)`): the parts it deleted, or its error as it gave it. The
    /// outer error is a failure to reach the node at all.
    fn delpay_builtin(
        &self,
        hash: Sha256,
        status: Status,
        part: Option<(u64, u64)>,
    ) -> impl Future<Output = Result<Result<Vec<Payment>, RpcError>, RpcError>> + Send;

    /// The node's `check` of one of its built-ins (`params` as `check`
    /// takes them, `command_to_check` included): its answer, result or
    /// error. The outer error is a failure to reach the node at all.
    fn check_builtin(
        &self,
        params: Value,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send;
}

impl<T: Node> Node for std::sync::Arc<T> {
    fn parts_of(
        &self,
        hash: Sha256,
    ) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send {
        (**self).parts_of(hash)
    }
    fn parts_of_many(
        &self,
        hashes: Vec<Sha256>,
    ) -> impl Future<Output = Result<Vec<Vec<Payment>>, RpcError>> + Send {
        (**self).parts_of_many(hashes)
    }
    fn page(&self, page: Page) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send {
        (**self).page(page)
    }
    fn parts_created(&self) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).parts_created()
    }
    fn parts_updated(&self) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).parts_updated()
    }
    fn parts_deleted(&self) -> impl Future<Output = Result<u64, RpcError>> + Send {
        (**self).parts_deleted()
    }
    fn next_created(&self, after: u64) -> impl Future<Output = Result<Created, RpcError>> + Send {
        (**self).next_created(after)
    }
    fn poll_builtin(
        &self,
        key: PartKey,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send {
        (**self).poll_builtin(key)
    }
    fn delpay_builtin(
        &self,
        hash: Sha256,
        status: Status,
        part: Option<(u64, u64)>,
    ) -> impl Future<Output = Result<Result<Vec<Payment>, RpcError>, RpcError>> + Send {
        (**self).delpay_builtin(hash, status, part)
    }
    fn check_builtin(
        &self,
        params: Value,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send {
        (**self).check_builtin(params)
    }
}
