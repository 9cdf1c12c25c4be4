//! The failed parts of a time window, from the records. Only the pages
//! whose failures span the window are read (the index keeps each page's
//! span), each listed by its exact key, many in one round trip: the cost
//! follows the window, not the history.

use super::page;
use super::record::Record;
use super::Ledger;
use crate::domain::Status;
use crate::error::RpcError;
use crate::store::{self, Datastore};

/// Pages listed in one round trip (256 at once measured slower, and held
/// lightningd longer: 61 ms for a getinfo meanwhile).
const PAGES_AT_ONCE: usize = 64;

/// A failed part the ledger holds: its `created_index` and its record.
pub type Failed = (u64, Record);

impl<D: Datastore> Ledger<D> {
    /// Every failed part the ledger holds whose record says it failed in
    /// `[since, until)`. Writes queued before the call are applied first,
    /// so a failure already recorded in memory is counted. The index must
    /// be loaded (the caller loads it: `App::load_index`).
    pub async fn failed_between(&self, since: u64, until: u64) -> Result<Vec<Failed>, RpcError> {
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
                    let in_window = record
                        .completed_at
                        .is_some_and(|at| since <= at && at < until);
                    // Only the attempt the ledger holds now: a record whose
                    // delete is still queued, or an older attempt, is not.
                    let held = st
                        .index
                        .get(&record.key)
                        .is_some_and(|h| h.created_index == created_index);
                    if record.status == Status::Failed && in_window && held {
                        out.push((created_index, record));
                    }
                }
            }
        }
        Ok(out)
    }
}
