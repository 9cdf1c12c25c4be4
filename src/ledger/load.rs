//! The index rebuilt from the records, a few groups (256 `created_index`
//! values each) a round trip: lightningd answers `listdatastore` by
//! reading every row under the key, so a group is the most one listing
//! costs it. Answers do not wait for the load: they start from the
//! node's rows, and a part deleted before its record was loaded is kept
//! out ([`State::unplaced`](super::State)) and its record deleted when
//! found.

use super::record::Record;
use super::Ledger;
use crate::error::RpcError;
use crate::store::{self, Datastore, Entry};
use std::sync::atomic::Ordering;

impl<D: Datastore> Ledger<D> {
    /// Loads the next groups below `end` (a group number), at most
    /// `at_once` in one round trip. Returns the records listed, or `None`
    /// once every group below `end` is loaded.
    pub async fn load_step(&self, end: u64, at_once: u64) -> Result<Option<usize>, RpcError> {
        let mut next = self.loading.lock().await;
        if *next >= end {
            let mut st = self.state();
            st.loaded = true;
            st.unplaced = Default::default();
            return Ok(None);
        }
        let upto = end.min(*next + at_once.max(1));
        let keys = (*next..upto).map(store::group_key).collect();
        let listings = self.store.list_many(keys).await?;
        let rows = listings.iter().map(Vec::len).sum();
        for listed in listings {
            self.index_group(listed);
        }
        *next = upto;
        self.groups_loaded.store(upto, Ordering::Relaxed);
        Ok(Some(rows))
    }

    /// Loads every group below `end` at once (for a listing of every part;
    /// catch-up's load is paced).
    pub async fn load_all(&self, end: u64) -> Result<(), RpcError> {
        while self.load_step(end, 8).await?.is_some() {}
        Ok(())
    }

    /// Whether the whole index is loaded.
    pub fn loaded(&self) -> bool {
        self.state().loaded
    }

    /// How many groups of records are loaded (all below this one).
    pub fn groups_loaded(&self) -> u64 {
        self.groups_loaded.load(Ordering::Relaxed)
    }

    /// One group's listing into the index.
    fn index_group(&self, listed: Vec<Entry>) {
        let mut stale = Vec::new();
        let mut st = self.state();
        for e in listed {
            let Some(created_index) = store::created_index_of(&e.key) else {
                log::warn!("Skipping datastore entry {:?}: not paystate's", e.key);
                continue;
            };
            let record = match e.value.as_deref().map(Record::decode) {
                Some(Ok(r)) => r,
                Some(Err(why)) => {
                    log::warn!("Skipping the unreadable record {:?}: {why}", e.key);
                    continue;
                }
                None => {
                    log::warn!("Skipping datastore entry {:?}: not a record", e.key);
                    continue;
                }
            };
            let key = record.key;
            let deleted = st
                .unplaced
                .get(&key)
                .is_some_and(|s| s.map_or(true, |s| s == record.status));
            if deleted || st.tombstones.buries(&key, created_index) {
                // Deleted by the node in this run, before its record was loaded.
                st.unplaced.remove(&key);
                stale.push(created_index);
                continue;
            }
            match st.index.get(&key) {
                Some(h) if h.created_index == created_index => continue,
                // Two attempts of one part: the node has one row per part,
                // the later one.
                Some(h) if h.created_index > created_index => {
                    stale.push(created_index);
                    continue;
                }
                Some(h) => stale.push(h.created_index),
                None => {}
            }
            st.index.insert(key, created_index, record.status);
        }
        drop(st);
        for ci in stale {
            self.queue_delete(store::record_key(ci));
        }
    }
}
