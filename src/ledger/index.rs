//! The in-memory index: what identifies each part (its datastore name
//! says it all), counts kept on every change, and a small cache of whole
//! parts.

use crate::domain::{Part, PartKey, Status};
use crate::store::Summary;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// How many parts are kept whole in memory. Polls and wake-ups concern the
/// parts just resolved, which are here; any other costs one datastore read.
pub const CACHED_PARTS: usize = 4096;

/// One part in the index: about 80 bytes, whatever the record's size.
pub(super) struct IndexEntry {
    pub created_index: u64,
    pub status: Status,
    /// Marked `deleting` by an earlier version (start-up finishes it).
    pub deleting: bool,
    /// Its record is queued, not yet in the datastore: the part stays in
    /// memory until it is.
    pub unwritten: bool,
    /// Read since it last had a chance of eviction.
    recent: bool,
    pub cached: Option<Arc<Part>>,
}

impl IndexEntry {
    pub fn stored(s: &Summary, deleting: bool) -> IndexEntry {
        IndexEntry {
            created_index: s.created_index,
            status: s.status,
            deleting,
            unwritten: false,
            recent: false,
            cached: None,
        }
    }

    pub fn unwritten(s: &Summary, part: Arc<Part>) -> IndexEntry {
        IndexEntry {
            unwritten: true,
            cached: Some(part),
            ..IndexEntry::stored(s, false)
        }
    }

    pub fn summary(&self, key: PartKey) -> Summary {
        Summary {
            key,
            created_index: self.created_index,
            status: self.status,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub complete: usize,
    pub failed: usize,
    pub deleting: usize,
}

#[derive(Default)]
pub(super) struct PartIndex {
    pub parts: BTreeMap<PartKey, IndexEntry>,
    /// Kept up to date on every change, so status costs nothing.
    pub counts: Counts,
    /// Keys of cached, written parts, oldest first (second chance for
    /// recent reads).
    cache_order: VecDeque<PartKey>,
}

impl PartIndex {
    fn count(&mut self, e: &IndexEntry, delta: isize) {
        let slot = match (e.deleting, e.status) {
            (true, _) => &mut self.counts.deleting,
            (false, Status::Failed) => &mut self.counts.failed,
            (false, _) => &mut self.counts.complete,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    pub fn insert(&mut self, key: PartKey, e: IndexEntry) {
        self.count(&e, 1);
        let cacheable = e.cached.is_some() && !e.unwritten;
        if let Some(old) = self.parts.insert(key, e) {
            self.count(&old, -1);
        }
        if cacheable {
            self.note_cached(key);
        }
    }

    pub fn remove(&mut self, key: &PartKey) -> Option<IndexEntry> {
        let old = self.parts.remove(key)?;
        self.count(&old, -1);
        Some(old)
    }

    /// The record of this attempt is in the datastore now: the part may
    /// leave memory like any other.
    pub fn written(&mut self, summary: &Summary) {
        if let Some(e) = self.parts.get_mut(&summary.key) {
            if e.created_index == summary.created_index && e.unwritten {
                e.unwritten = false;
                self.note_cached(summary.key);
            }
        }
    }

    /// A live part from the cache, marked as recently read.
    pub fn cached(&mut self, key: &PartKey) -> Option<Arc<Part>> {
        let e = self.parts.get_mut(key).filter(|e| !e.deleting)?;
        e.recent = true;
        e.cached.clone()
    }

    /// Keeps a part read from the datastore, if the index still holds that
    /// very attempt.
    pub fn fill(&mut self, summary: Summary, part: &Arc<Part>) {
        if let Some(e) = self.parts.get_mut(&summary.key) {
            if e.created_index == summary.created_index && e.cached.is_none() {
                e.cached = Some(part.clone());
                self.note_cached(summary.key);
            }
        }
    }

    fn note_cached(&mut self, key: PartKey) {
        self.cache_order.push_back(key);
        // Each pass either evicts or clears a `recent` bit: this ends.
        while self.cache_order.len() > CACHED_PARTS {
            let Some(old) = self.cache_order.pop_front() else {
                break;
            };
            match self.parts.get_mut(&old) {
                Some(e) if e.recent && e.cached.is_some() => {
                    e.recent = false;
                    self.cache_order.push_back(old);
                }
                Some(e) if !e.unwritten => e.cached = None,
                _ => {}
            }
        }
    }

    /// The live parts of one hash, in key order.
    pub fn summaries_of(&self, hash: &cln_rpc::primitives::Sha256) -> Vec<Summary> {
        let lo = PartKey {
            payment_hash: *hash,
            groupid: 0,
            partid: 0,
        };
        self.parts
            .range((Bound::Included(lo), Bound::Unbounded))
            .take_while(|(k, _)| k.payment_hash == *hash)
            .filter(|(_, e)| !e.deleting)
            .map(|(k, e)| e.summary(*k))
            .collect()
    }

    /// Every live part.
    pub fn summaries(&self) -> Vec<Summary> {
        self.parts
            .iter()
            .filter(|(_, e)| !e.deleting)
            .map(|(k, e)| e.summary(*k))
            .collect()
    }
}
