//! The payment ledger: the node's terminal parts as paystate was told of
//! them, indexed in memory and kept in the node's datastore; and the
//! callers waiting for a part to become terminal.
//!
//! - [`index`]: each part in 16 bytes, and counts;
//! - [`record`]: a part's record, the few bytes the datastore keeps;
//! - [`failures`]: the failed parts of a time window;
//! - [`recent_failures`]: the newest failures, compact in memory;
//! - [`page`]: a page of records, appended to;
//! - [`load`]: the index rebuilt from the records, a few groups at a time;
//! - [`marks`]: deletes an earlier version marked, finished at start-up;
//! - [`recent`]: the parts recorded last, whole, for the answers racing them;
//! - [`waiters`]: callers waiting for a part;
//! - [`tombstones`]: deletes remembered against late notifications;
//! - [`writer`]: datastore writes queued and applied in batches.
//!
//! The ledger follows the node: a part is recorded when it becomes
//! terminal and forgotten when the node deletes it. Answers start from
//! the node's rows; the ledger says which parts were terminal, and how.

pub mod failures;
mod index;
mod load;
pub mod marks;
pub mod page;
mod recent;
pub(crate) mod recent_failures;
pub mod record;
mod tombstones;
mod waiters;
mod writer;

#[cfg(test)]
mod tests;

pub use index::{Counts, Held};
pub use writer::FLUSH_AFTER;

use crate::domain::{Answer, Part, PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::store::{self, Datastore, Op};
use cln_rpc::primitives::Sha256;
use index::PartIndex;
use recent::Recent;
use record::Record;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tombstones::Tombstones;
use waiters::Waiters;
use writer::Writer;

/// Writes to parts of one payment hash are serialized through one of these
/// stripes (a fixed number, so memory does not grow with the hashes seen).
const STRIPES: usize = 1024;

/// The ledger's memory, behind one lock.
#[derive(Default)]
struct State {
    index: PartIndex,
    waiters: Waiters,
    tombstones: Tombstones,
    recent: Recent,
    /// Deletes an earlier version marked and a crash interrupted: the
    /// part, and the mark to delete once the part is gone.
    marks: HashMap<PartKey, Vec<String>>,
    /// While the index loads: deletes of parts it did not hold (yet),
    /// applied to the records the load finds (`None`: any status).
    unplaced: HashMap<PartKey, Option<Status>>,
    loaded: bool,
}

pub use waiters::Waiter;

/// What the ledger knows of a part when a caller asks to wait for it.
pub enum Lookup {
    /// Terminal, at this attempt; the part whole if it was recorded lately.
    Ready {
        created_index: u64,
        part: Option<Arc<Part>>,
    },
    /// Being deleted: gone for every answer.
    Deleting,
    /// Not recorded: the waiter is registered already, so a part recorded
    /// from now on wakes it.
    Absent(Waiter),
}

/// How often a record's failed delete is tried again before it is left
/// to the next start-up's reconciliation.
const DELETE_TRIES: u32 = 10;

/// A record's delete: the page deleted whole where it held that part
/// alone, else a delete item appended. A failed page delete is left (the
/// page holds only deleted records: the next load deletes it); a failed
/// append is tried again a second later (a slot is never reused: the
/// item can come late).
fn delete_behind(writer: Writer, drifted: Arc<AtomicBool>, op: Op, tried: u32) {
    let again = writer.clone();
    let retry = op.clone();
    // A delete item may wait for its page's other deletes (the page then
    // goes whole, and the item is never written).
    let queue = match op {
        Op::Append { .. } => Writer::defer,
        _ => Writer::queue,
    };
    queue(
        &writer,
        op.clone(),
        Some(Box::new(move |outcome| match outcome {
            Err(e) if e.code != codes::DATASTORE_DEL_DOES_NOT_EXIST => {
                drifted.store(true, Ordering::SeqCst);
                log::warn!(
                    "Could not delete a record ({op:?}): {} ({})",
                    e.message,
                    e.code
                );
                if matches!(retry, Op::Append { .. }) && tried + 1 < DELETE_TRIES {
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        delete_behind(again, drifted, retry, tried + 1);
                    });
                }
            }
            _ => {}
        })),
    );
}

/// The outcome of recording a part.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// Already recorded: a duplicate notification changes nothing.
    Duplicate,
    /// Deleted (or being deleted): it is not brought back.
    Deleting,
}

pub struct Ledger<D> {
    store: Arc<D>,
    state: Arc<Mutex<State>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// The next group of records to load (all below it are loaded).
    loading: tokio::sync::Mutex<u64>,
    pages_loaded: std::sync::atomic::AtomicU64,
    writer: Writer,
    /// Set when a write of this run failed: the datastore may differ from
    /// the index until a reconciliation (no level mark is written).
    drifted: Arc<AtomicBool>,
}

impl<D: Datastore> Ledger<D> {
    /// Opens the ledger: the deletes an earlier version marked and a crash
    /// interrupted (returned, for the caller to finish). The index loads
    /// afterwards ([`load`]), while answers go on.
    pub async fn load(store: D) -> Result<(Self, Vec<PartKey>), RpcError> {
        let store = Arc::new(store);
        let ledger = Ledger {
            writer: Writer::start(store.clone()),
            store,
            state: Default::default(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            loading: tokio::sync::Mutex::new(0),
            pages_loaded: Default::default(),
            drifted: Default::default(),
        };
        let interrupted = ledger.read_marks().await?;
        Ok((ledger, interrupted))
    }

    /// Reads the deletes an earlier version marked; returns those not
    /// known yet (a migration may have just carried them over).
    pub async fn read_marks(&self) -> Result<Vec<PartKey>, RpcError> {
        let found = marks::interrupted_deletes(&*self.store).await?;
        let mut st = self.state();
        let mut new = Vec::new();
        for (key, mark) in found {
            if st.marks.insert(key, mark).is_none() {
                new.push(key);
            }
        }
        st.index.counts.deleting = st.marks.len();
        Ok(new)
    }

    /// The datastore the ledger keeps its records in (start-up's
    /// migration moves earlier layouts' records there).
    pub fn datastore(&self) -> &D {
        &self.store
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps half-updated
        // in a way that matters more than stopping would; carry on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serializes writers (notifications, deletes, imports) of one hash.
    pub async fn lock(&self, hash: &Sha256) -> tokio::sync::MutexGuard<'_, ()> {
        let b: &[u8] = hash.as_ref();
        let n = u16::from_be_bytes([b[0], b[1]]) as usize;
        self.stripes[n % STRIPES].lock().await
    }

    /// The part if recorded, else a registered waiter for it.
    pub fn lookup_or_wait(&self, key: PartKey) -> Lookup {
        let mut st = self.state();
        if st.marks.contains_key(&key) {
            return Lookup::Deleting;
        }
        match st.index.get(&key) {
            Some(h) => Lookup::Ready {
                created_index: h.created_index,
                part: st.recent.get(&key, h.created_index),
            },
            None => {
                let state = self.state.clone();
                Lookup::Absent(st.waiters.add(key, state))
            }
        }
    }

    /// The attempt of the part the ledger holds, if any (a part being
    /// deleted is not held).
    pub fn attempt(&self, key: &PartKey) -> Option<Held> {
        let st = self.state();
        st.index.get(key).filter(|_| !st.marks.contains_key(key))
    }

    /// Whether the ledger holds this attempt of the part (same
    /// `created_index`).
    pub fn holds_attempt(&self, p: &Payment) -> bool {
        self.attempt(&p.key())
            .is_some_and(|h| h.created_index == p.created_index)
    }

    /// The parts of one hash the ledger holds (optionally one part of it),
    /// by `groupid` and `partid`.
    pub fn held(&self, hash: &Sha256, part: Option<(u64, u64)>) -> Vec<Held> {
        let mut held = self.state().index.of_hash(hash);
        if let Some((partid, groupid)) = part {
            held.retain(|h| h.partid == partid && h.groupid == groupid);
        }
        held
    }

    /// Every part the index holds.
    pub fn all(&self) -> Vec<Held> {
        self.state().index.all()
    }

    /// The parts whose `created_index` lies in `[lo, hi)` (a scan of the
    /// index: reconciliation takes the table a range at a time).
    pub fn between(&self, lo: u64, hi: u64) -> Vec<Held> {
        self.state().index.between(lo, hi)
    }

    /// Whether the ledger holds the part at all; the unit tests' view.
    #[cfg(test)]
    pub fn holds(&self, key: &PartKey) -> bool {
        self.state().index.get(key).is_some()
    }

    pub fn counts(&self) -> Counts {
        self.state().index.counts
    }

    pub fn waiter_count(&self) -> usize {
        self.state().waiters.count
    }

    /// Records a terminal part and wakes its waiters. The part is in memory
    /// at once; its record is written behind ([`writer`]).
    pub async fn record(&self, part: impl Into<Arc<Part>>) -> Result<Recorded, RpcError> {
        let part: Arc<Part> = part.into();
        let answer = part.clone();
        self.record_as(part, || answer.waitsendpay_answer()).await
    }

    /// [`Ledger::record`], its waiters answered with `answer` (whatever the
    /// outcome: the part is terminal in the node).
    pub async fn record_as(
        &self,
        part: Arc<Part>,
        answer: impl FnOnce() -> Answer,
    ) -> Result<Recorded, RpcError> {
        let key = part.key();
        let created_index = part.payment.created_index;
        let status = part.status();
        let record = Record::of(&part);
        {
            let mut st = self.state();
            if st.tombstones.buries(&key, created_index) || st.marks.contains_key(&key) {
                st.waiters.deliver(&key, answer);
                return Ok(Recorded::Deleting);
            }
            match st.index.get(&key) {
                Some(h) if h.created_index >= created_index => {
                    st.waiters.deliver(&key, answer);
                    return Ok(Recorded::Duplicate);
                }
                // An older attempt the node no longer has: the newer stands.
                Some(h) => {
                    st.index.remove_held(&h);
                    self.queue_delete(&st, h.created_index);
                }
                None => {}
            }
            st.index.insert(key, created_index, status);
            if status == Status::Failed {
                st.index.note_failure(created_index, &record);
            }
            st.recent.add(part.clone());
            st.waiters.deliver(&key, answer);
        }
        let state = self.state.clone();
        let drifted = self.drifted.clone();
        let (page, slot) = store::page_of(created_index);
        self.writer.queue(
            Op::Append {
                key: store::page_key(page),
                value: page::record_item(slot, &record),
            },
            Some(Box::new(move |outcome| {
                if let Err(e) = outcome {
                    drifted.store(true, Ordering::SeqCst);
                    log::warn!(
                        "Could not record {key}: {} ({}); it is imported from the node when asked for",
                        e.message,
                        e.code
                    );
                    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                    if st.index.get(&key).is_some_and(|h| h.created_index == created_index) {
                        st.index.remove(&key);
                    }
                }
            })),
        );
        Ok(Recorded::New)
    }

    /// Answers the part's waiters without recording it: a notification's
    /// waiters learn the outcome first, with the answer lightningd's own
    /// waiters get. Returns how many it woke.
    pub fn wake(&self, key: &PartKey, answer: impl FnOnce() -> Answer) -> usize {
        self.state().waiters.deliver(key, answer)
    }

    /// The node deleted this part (of this status and attempt, where
    /// known): the ledger forgets it at once, and its record goes with the
    /// next batch of writes. A notification or import of that attempt
    /// arriving later is ignored. Returns whether the ledger held it.
    pub fn forget(
        &self,
        key: &PartKey,
        status: Option<Status>,
        created_index: Option<u64>,
    ) -> bool {
        let mut st = self.state();
        let held = st.index.get(key).filter(|h| {
            status.map_or(true, |w| h.status == w)
                && created_index.map_or(true, |c| h.created_index == c)
        });
        let mark = st.marks.remove(key);
        st.index.counts.deleting = st.marks.len();
        let Some(h) = held else {
            // Not recorded (yet): a notification in flight must not bring
            // it back, nor the load its record.
            st.tombstones.add(*key, created_index);
            if !st.loaded {
                st.unplaced.insert(*key, status);
            }
            drop(st);
            if let Some(mark) = mark {
                self.delete_behind(Op::Delete { key: mark });
            }
            return false;
        };
        st.index.remove_held(&h);
        st.tombstones.add(*key, Some(h.created_index));
        self.queue_delete(&st, h.created_index);
        drop(st);
        if let Some(mark) = mark {
            self.delete_behind(Op::Delete { key: mark });
        }
        true
    }

    /// Forgets a part the index holds, found by [`Ledger::all`] (the node
    /// no longer has that attempt). Returns whether it still held it.
    pub fn forget_held(&self, h: &Held) -> bool {
        let mut st = self.state();
        if !st.index.remove_held(h) {
            return false;
        }
        self.queue_delete(&st, h.created_index);
        true
    }

    /// The delete of the record of `created_index` (the index no longer
    /// holds it), written behind (no answer shows the record meanwhile:
    /// answers ask the node whether a part exists). Queued under the
    /// state's lock, so that writes to one page queue in the order the
    /// index changed.
    fn queue_delete(&self, st: &State, created_index: u64) {
        let (page, slot) = store::page_of(created_index);
        // Until the index is loaded, the page may hold parts it does not know.
        let op = match st.loaded && st.index.page_held(page) == 0 {
            true => Op::Delete {
                key: store::page_key(page),
            },
            false => Op::Append {
                key: store::page_key(page),
                value: page::delete_item(slot),
            },
        };
        self.delete_behind(op);
    }

    fn delete_behind(&self, op: Op) {
        delete_behind(self.writer.clone(), self.drifted.clone(), op, 0);
    }

    /// Whether a write of this run failed (a record or a delete the
    /// datastore may lack).
    pub fn drifted(&self) -> bool {
        self.drifted.load(Ordering::SeqCst)
    }

    /// Returns once every write queued so far is applied.
    pub async fn flush(&self) {
        self.writer.flush().await
    }
}
