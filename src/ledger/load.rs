//! The index rebuilt from the pages of records, a few pages a round trip
//! (each listed by its exact key: lightningd reads ~40 µs a row, and a
//! page's bytes). Answers do not wait for the load: they start from the
//! node's rows, and a part deleted before its record was loaded is kept
//! out ([`State::unplaced`](super::State)) and its record deleted when
//! found.

use super::page;
use super::Ledger;
use crate::domain::Status;
use crate::error::RpcError;
use crate::store::{self, Datastore, Entry, Op};
use std::sync::atomic::Ordering;

impl<D: Datastore> Ledger<D> {
    /// Loads the next pages below `end` (a page number), at most
    /// `at_once` in one round trip. Returns the records listed, or `None`
    /// once every page below `end` is loaded.
    pub async fn load_step(&self, end: u64, at_once: u64) -> Result<Option<usize>, RpcError> {
        let mut next = self.loading.lock().await;
        if *next >= end {
            let mut st = self.state();
            st.loaded = true;
            st.unplaced = Default::default();
            return Ok(None);
        }
        let upto = end.min(*next + at_once.max(1));
        let keys = (*next..upto).map(store::page_key).collect();
        let listings = self.store.list_many(keys).await?;
        let mut rows = 0;
        for (page, listed) in (*next..upto).zip(listings) {
            rows += self.index_page(page, listed);
        }
        *next = upto;
        self.pages_loaded.store(upto, Ordering::Relaxed);
        Ok(Some(rows))
    }

    /// Loads every page below `end` at once (for a listing of every part;
    /// catch-up's load is paced).
    pub async fn load_all(&self, end: u64) -> Result<(), RpcError> {
        while self.load_step(end, 8).await?.is_some() {}
        Ok(())
    }

    /// Whether the whole index is loaded.
    pub fn loaded(&self) -> bool {
        self.state().loaded
    }

    /// How many pages of records are loaded (all below this one).
    pub fn pages_loaded(&self) -> u64 {
        self.pages_loaded.load(Ordering::Relaxed)
    }

    /// One page's listing (its own entry, if the page exists) into the
    /// index; returns how many records it held.
    fn index_page(&self, page: u64, listed: Vec<Entry>) -> usize {
        let key = store::page_key(page);
        let Some(bytes) = listed
            .into_iter()
            .find(|e| e.key == key)
            .and_then(|e| e.value)
        else {
            return 0;
        };
        let read = page::read(&bytes);
        if let Some(why) = &read.damage {
            log::warn!(
                "Page {key:?} is damaged past its first {} items: {why}",
                read.items
            );
        }
        let held = read.records.len();
        let mut stale = Vec::new();
        let mut st = self.state();
        for (slot, record) in read.records {
            let created_index = page * store::PAGE + u64::from(slot);
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
                Some(h) => {
                    st.index.remove_held(&h);
                    stale.push(h.created_index);
                }
                None => {}
            }
            st.index.insert(key, created_index, record.status);
            if record.status == Status::Failed {
                st.index.note_failure(created_index, &record);
            }
        }
        for ci in stale {
            self.queue_delete(&st, ci);
        }
        if held == 0 && read.damage.is_none() && st.index.page_held(page) == 0 {
            // Only deleted records (a page delete that failed): gone whole.
            drop(st);
            self.writer.queue(Op::Delete { key }, None);
        }
        held
    }
}
