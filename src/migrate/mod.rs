//! Moves a ledger kept in an earlier datastore layout to the current one
//! (v4, [`crate::store`]), at start-up, before the ledger loads: v1 and v2
//! to v3's names, then v3 to v4. Each old
//! entry is deleted only after its copy is written, so a crash midway
//! loses nothing: the next start-up carries on where this one stopped.
//! Once nothing earlier is left, a mark says so and later starts look no
//! further (a paystate of an earlier layout run again after it, a
//! downgrade, is not supported).

mod v1;
mod v2;
mod v3;

use crate::error::{codes, RpcError};
use crate::store::Datastore;

/// Every earlier layout moved; returns how many parts reached v4.
pub async fn run<D: Datastore>(ds: &D) -> Result<usize, RpcError> {
    // Looked for first: on PostgreSQL a listing of an earlier layout's key
    // has lightningd fetch every row after it, v4's pages included.
    if v3::all_moved(ds).await? {
        return Ok(0);
    }
    let renamed = v1::from_v1(ds).await? + v2::from_v2(ds).await?;
    v3::from_v3(ds, renamed > 0).await
}

/// A create that finds the key written already (by an interrupted run of
/// a migration) has done its work.
fn created(r: Result<(), RpcError>) -> Result<(), RpcError> {
    match r {
        Err(e) if e.code != codes::DATASTORE_UPDATE_ALREADY_EXISTS => Err(e),
        _ => Ok(()),
    }
}

/// Likewise a delete that finds the key gone.
fn deleted(r: Result<(), RpcError>) -> Result<(), RpcError> {
    match r {
        Err(e) if e.code != codes::DATASTORE_DEL_DOES_NOT_EXIST => Err(e),
        _ => Ok(()),
    }
}

/// Logs how many parts moved from layout `from`, if any.
fn moved_from(from: &str, moved: usize) -> usize {
    if moved > 0 {
        log::info!(
            "Moved {moved} parts from datastore layout {from} to {}",
            if from == "v3" {
                crate::store::LAYOUT_VERSION
            } else {
                "v3"
            }
        );
    }
    moved
}

async fn create<D: Datastore>(ds: &D, key: Vec<String>, value: Vec<u8>) -> Result<(), RpcError> {
    created(ds.create(key, value).await.map(drop))
}

async fn delete<D: Datastore>(ds: &D, key: Vec<String>) -> Result<(), RpcError> {
    deleted(ds.delete(key, None).await)
}
