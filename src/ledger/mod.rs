//! The payment ledger: the node's terminal parts as paystate was told of
//! them, indexed in memory and kept in the node's datastore; and the
//! callers waiting for a part to become terminal.
//!
//! - [`index`]: what identifies each part, counts, and a cache of parts;
//! - [`shards`]: loading the index from the datastore a shard at a time;
//! - [`waiters`]: callers waiting for a part;
//! - [`tombstones`]: deletes remembered against late notifications;
//! - [`writer`]: datastore writes queued and applied in batches.
//!
//! The ledger follows the node: a part is recorded when it becomes
//! terminal and forgotten when the node deletes it. The index holds what
//! identifies each part, not the part itself (a node may have made
//! millions): records are read from the datastore when asked for.

mod index;
mod shards;
mod tombstones;
mod waiters;
mod writer;

#[cfg(test)]
mod tests;

pub use index::{Counts, CACHED_PARTS};
pub use shards::SHARDS;
pub use writer::FLUSH_AFTER;

use crate::domain::{Answer, Part, PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::store::{self, Datastore, Op, Summary};
use cln_rpc::primitives::Sha256;
use index::{IndexEntry, PartIndex};
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
}

pub use waiters::Waiter;

/// What the ledger knows of a part when a caller asks to wait for it.
pub enum Lookup {
    Ready(Arc<Part>),
    /// Being deleted: gone for every answer.
    Deleting,
    /// Not recorded: the waiter is registered already, so a part recorded
    /// from now on wakes it.
    Absent(Waiter),
}

/// How often a record's failed delete is tried again before it is left
/// to the next start-up's reconciliation.
const DELETE_TRIES: u32 = 10;

fn delete_behind(writer: Writer, key: Vec<String>, tried: u32) {
    let again = writer.clone();
    writer.queue(
        Op::Delete { key: key.clone() },
        Some(Box::new(move |outcome| match outcome {
            Err(e) if e.code != codes::DATASTORE_DEL_DOES_NOT_EXIST => {
                log::warn!(
                    "Could not delete the record {key:?}: {} ({}); trying again",
                    e.message,
                    e.code
                );
                if tried + 1 < DELETE_TRIES {
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        delete_behind(again, key, tried + 1);
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

/// What the index says of a part before its record is read.
enum Known {
    Cached(Arc<Part>),
    Stored(Summary),
    Deleting,
    Absent,
}

pub struct Ledger<D> {
    store: Arc<D>,
    state: Arc<Mutex<State>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Which shards of the index are loaded (by the hash's first byte).
    shards: Vec<tokio::sync::OnceCell<()>>,
    writer: Writer,
}

impl<D: Datastore> Ledger<D> {
    /// Opens the ledger: the deletes an earlier version marked and a crash interrupted (returned, for the caller to
    /// finish). The index of parts loads shard by shard afterwards.
    pub async fn load(store: D) -> Result<(Self, Vec<PartKey>), RpcError> {
        let mut st = State::default();
        let mut interrupted = Vec::new();
        for e in store.list(store::deleting_prefix()).await? {
            let Some(s) = shards::name_of(&e, true) else {
                continue;
            };
            st.index.insert(s.key, IndexEntry::stored(&s, true));
            interrupted.push(s.key);
        }
        let store = Arc::new(store);
        let ledger = Ledger {
            writer: Writer::start(store.clone()),
            store,
            state: Arc::new(Mutex::new(st)),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            shards: (0..SHARDS).map(|_| tokio::sync::OnceCell::new()).collect(),
        };
        Ok((ledger, interrupted))
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

    fn known(st: &mut State, key: &PartKey) -> Known {
        if let Some(part) = st.index.cached(key) {
            return Known::Cached(part);
        }
        match st.index.parts.get(key) {
            None => Known::Absent,
            Some(e) if e.deleting => Known::Deleting,
            Some(e) => Known::Stored(e.summary(*key)),
        }
    }

    /// Reads a part's record; `None` if it went meanwhile (deleted).
    async fn read(&self, summary: Summary) -> Result<Option<Arc<Part>>, RpcError> {
        let Some(e) = self.store.list(summary.record_key()).await?.pop() else {
            return Ok(None);
        };
        let part = e
            .string
            .as_deref()
            .ok_or_else(|| "not a string".to_string())
            .and_then(store::decode)
            .and_then(|p| match Summary::of(&p) == summary {
                true => Ok(p),
                false => Err("its fields disagree with its name".into()),
            })
            .map_err(|why| {
                RpcError::lightningd(format!(
                    "Unreadable datastore record of {}: {why}",
                    summary.key
                ))
            })?;
        let part = Arc::new(part);
        self.state().index.fill(summary, &part);
        Ok(Some(part))
    }

    /// The part if recorded, else a registered waiter for it.
    pub async fn lookup_or_wait(&self, key: PartKey) -> Result<Lookup, RpcError> {
        self.ensure(&key.payment_hash).await?;
        let summary = {
            let mut st = self.state();
            match Self::known(&mut st, &key) {
                Known::Cached(part) => return Ok(Lookup::Ready(part)),
                Known::Deleting => return Ok(Lookup::Deleting),
                Known::Stored(s) => s,
                Known::Absent => {
                    let state = self.state.clone();
                    return Ok(Lookup::Absent(st.waiters.add(key, state)));
                }
            }
        };
        Ok(match self.read(summary).await? {
            Some(part) => Lookup::Ready(part),
            None => Lookup::Deleting,
        })
    }

    /// The live part, if recorded.
    pub async fn get(&self, key: &PartKey) -> Result<Option<Arc<Part>>, RpcError> {
        self.ensure(&key.payment_hash).await?;
        let known = Self::known(&mut self.state(), key);
        match known {
            Known::Cached(part) => Ok(Some(part)),
            Known::Stored(s) => self.read(s).await,
            Known::Deleting | Known::Absent => Ok(None),
        }
    }

    /// What the index holds of a live part (its shard loaded:
    /// [`Ledger::ensure`]).
    pub fn summary(&self, key: &PartKey) -> Option<Summary> {
        let st = self.state();
        st.index
            .parts
            .get(key)
            .filter(|e| !e.deleting)
            .map(|e| e.summary(*key))
    }

    /// Whether the ledger holds the part at all, deleting or not (its shard
    /// loaded: [`Ledger::ensure`]); the unit tests' view.
    #[cfg(test)]
    pub fn holds(&self, key: &PartKey) -> bool {
        self.state().index.parts.contains_key(key)
    }

    /// Whether the ledger holds this attempt of the part (same
    /// `created_index`; its shard loaded).
    pub fn holds_attempt(&self, p: &Payment) -> bool {
        self.summary(&p.key())
            .is_some_and(|s| s.created_index == p.created_index)
    }

    /// What the index holds of one hash (optionally one part of it), in
    /// key order, without reading a record (its shard loaded).
    pub fn held(&self, hash: &Sha256, part: Option<(u64, u64)>) -> Vec<Summary> {
        let mut held = self.state().index.summaries_of(hash);
        if let Some((partid, groupid)) = part {
            held.retain(|s| s.key.partid == partid && s.key.groupid == groupid);
        }
        held
    }

    /// Every live part the loaded index holds.
    pub fn summaries(&self) -> Vec<Summary> {
        self.state().index.summaries()
    }

    /// The parts of these summaries, in their order; those deleted
    /// meanwhile are left out (the tests read the records back with it).
    #[cfg(test)]
    pub async fn read_all(&self, summaries: Vec<Summary>) -> Result<Vec<Arc<Part>>, RpcError> {
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            out.extend(self.get(&s.key).await?);
        }
        Ok(out)
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
        let summary = Summary::of(&part);
        let key = summary.key;
        self.ensure(&key.payment_hash).await?;
        {
            let mut st = self.state();
            if st.tombstones.buries(&key, summary.created_index) {
                st.waiters.deliver(&key, answer);
                return Ok(Recorded::Deleting);
            }
            let older = match st.index.parts.get(&key) {
                Some(e) if e.deleting => {
                    st.waiters.deliver(&key, answer);
                    return Ok(Recorded::Deleting);
                }
                Some(e) if e.created_index >= summary.created_index => {
                    st.waiters.deliver(&key, answer);
                    return Ok(Recorded::Duplicate);
                }
                // An older attempt the node no longer has: the newer stands.
                Some(e) => Some(e.summary(key)),
                None => None,
            };
            if let Some(old) = older {
                self.queue_delete(old.record_key());
            }
            st.index
                .insert(key, IndexEntry::unwritten(&summary, part.clone()));
            st.waiters.deliver(&key, answer);
        }
        let state = self.state.clone();
        self.writer.queue(
            Op::Create {
                key: summary.record_key(),
                value: store::encode(&part),
            },
            Some(Box::new(move |outcome| {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    // Already there: an earlier run wrote it.
                    Err(e) if e.code != codes::DATASTORE_UPDATE_ALREADY_EXISTS => {
                        log::warn!(
                            "Could not record {key}: {} ({}); it is imported from the node when asked for",
                            e.message,
                            e.code
                        );
                        if st.index.parts.get(&key).is_some_and(|e| {
                            e.unwritten && e.created_index == summary.created_index
                        }) {
                            st.index.remove(&key);
                        }
                    }
                    _ => st.index.written(&summary),
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
    pub async fn forget(
        &self,
        key: &PartKey,
        status: Option<Status>,
        created_index: Option<u64>,
    ) -> Result<bool, RpcError> {
        self.ensure(&key.payment_hash).await?;
        let mut st = self.state();
        let held = st
            .index
            .parts
            .get(key)
            .map(|e| (e.summary(*key), e.deleting));
        let Some((summary, marked)) = held.filter(|(s, _)| {
            status.map_or(true, |w| s.status == w)
                && created_index.map_or(true, |c| s.created_index == c)
        }) else {
            // Not recorded (yet): a notification in flight must not bring it back.
            st.tombstones.add(*key, created_index);
            return Ok(false);
        };
        st.index.remove(key);
        st.tombstones.add(*key, Some(summary.created_index));
        drop(st);
        self.queue_delete(summary.record_key());
        if marked {
            self.queue_delete(summary.deleting_key());
        }
        Ok(true)
    }

    /// A record's delete, written behind; should it fail, it is tried
    /// again a second later (no answer shows the record meanwhile: answers
    /// ask the node whether a part exists).
    fn queue_delete(&self, key: Vec<String>) {
        delete_behind(self.writer.clone(), key, 0);
    }

    /// Returns once every write queued so far is applied.
    pub async fn flush(&self) {
        self.writer.flush().await
    }
}
