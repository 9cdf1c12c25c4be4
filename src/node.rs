//! The node's own payment table, as paystate reads and changes it: the
//! port (a small trait, faked in unit tests) over lightningd's built-in
//! `listsendpays`, `waitsendpay` and `delpay`.

use crate::domain::{PartKey, Payment, Status};
use crate::error::RpcError;
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::future::Future;

pub trait Node: Send + Sync + 'static {
    /// Every part the node has for `hash` (`listsendpays payment_hash=`).
    fn parts_of(&self, hash: Sha256)
        -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send;

    /// Parts whose `updated_index` is at least `start`, at most `limit` of
    /// them, in updated order (`listsendpays index=updated`).
    fn updated_since(
        &self,
        start: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send;

    /// The node's built-in `waitsendpay` with `timeout: 0` on one part: its
    /// answer, result or error, as the node gave it. The outer error is a
    /// failure to reach the node at all.
    fn poll_builtin(
        &self,
        key: PartKey,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send;

    /// The node's built-in `delpay` of one part.
    fn delete_builtin(
        &self,
        key: PartKey,
        status: Status,
    ) -> impl Future<Output = Result<(), RpcError>> + Send;
}

impl<T: Node> Node for std::sync::Arc<T> {
    fn parts_of(
        &self,
        hash: Sha256,
    ) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send {
        (**self).parts_of(hash)
    }
    fn updated_since(
        &self,
        start: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Payment>, RpcError>> + Send {
        (**self).updated_since(start, limit)
    }
    fn poll_builtin(
        &self,
        key: PartKey,
    ) -> impl Future<Output = Result<Result<Value, RpcError>, RpcError>> + Send {
        (**self).poll_builtin(key)
    }
    fn delete_builtin(
        &self,
        key: PartKey,
        status: Status,
    ) -> impl Future<Output = Result<(), RpcError>> + Send {
        (**self).delete_builtin(key, status)
    }
}
