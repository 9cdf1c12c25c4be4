//! The failed parts of a time window. A window the newest failures cover
//! is counted from memory ([`recent_failures`](super::recent_failures));
//! an older one from the records: only the pages whose failures span the
//! window are read (the index keeps each page's span), each listed by its
//! exact key, many in one round trip. Either way the cost follows the
//! window, not the history.

use super::page;
use super::Ledger;
use crate::domain::Status;
use crate::error::RpcError;
use crate::store::{self, Datastore};

/// Pages listed in one round trip (256 at once measured slower, and held
/// lightningd longer: 61 ms for a getinfo meanwhile).
const PAGES_AT_ONCE: usize = 64;

/// A failed part as failure statistics count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub created_index: u64,
    /// When it failed (UNIX seconds).
    pub at: u64,
    /// Its payment (hash and group), fingerprinted under the index's key
    /// (as the index tells hashes apart): distinct payments are counted
    /// by it.
    pub payment: u64,
    pub failcode: Option<u64>,
    pub erring_node: Option<[u8; 33]>,
    pub erring_channel: Option<u64>,
    pub erring_direction: Option<u64>,
}

impl<D: Datastore> Ledger<D> {
    /// Every failed part the ledger holds whose record says it failed in
    /// `[since, until)`, by `created_index`. The index must be loaded (the
    /// caller loads it: `App::load_index`).
    pub async fn failed_between(&self, since: u64, until: u64) -> Result<Vec<Failed>, RpcError> {
        {
            let st = self.state();
            if st.loaded && st.index.failures.covers(since) {
                return Ok(st.index.failures.between(since, until));
            }
        }
        // Writes queued before the call are applied first, so a failure
        // already recorded in memory is counted.
        self.flush().await;
        let pages = self.state().index.pages_failing_between(since, until);
        let mut out = Vec::new();
        for chunk in pages.chunks(PAGES_AT_ONCE) {
            let keys: Vec<Vec<String>> = chunk.iter().map(|p| store::page_key(*p)).collect();
            let listings = self.store.list_many(keys.clone()).await?;
            let st = self.state();
            for ((page, key), listed) in chunk.iter().zip(&keys).zip(listings) {
                let Some(bytes) = listed
                    .into_iter()
                    .find(|e| e.key == *key)
                    .and_then(|e| e.value)
                else {
                    continue;
                };
                for (slot, record) in page::read(&bytes).records {
                    let created_index = page * store::PAGE + u64::from(slot);
                    let Some(at) = record.completed_at.filter(|at| since <= *at && *at < until)
                    else {
                        continue;
                    };
                    // Only the attempt the ledger holds now: a record whose
                    // delete is still queued, or an older attempt, is not.
                    let held = st
                        .index
                        .get(&record.key)
                        .is_some_and(|h| h.created_index == created_index);
                    if record.status == Status::Failed && held {
                        let f = record.failure;
                        out.push(Failed {
                            created_index,
                            at,
                            payment: st.index.payment_print(&record.key),
                            failcode: f.failcode,
                            erring_node: f.erring_node,
                            erring_channel: f.erring_channel,
                            erring_direction: f.erring_direction,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}
