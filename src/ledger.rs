//! The payment ledger: every terminal part paystate knows, indexed in memory
//! for answers and kept durably in the node's datastore; and the callers
//! waiting for a part to become terminal.

use crate::domain::{Part, PartKey, Status};
use crate::error::{codes, RpcError};
use crate::store::{self, Datastore, StoredPart, Watermark};
use cln_rpc::primitives::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Writes to parts of one payment hash are serialized through one of these
/// stripes (a fixed number, so memory does not grow with the hashes seen).
const STRIPES: usize = 64;

/// How many recent deletes are remembered against late notifications. A
/// notification is late by milliseconds; this bounds the memory.
const TOMBSTONES: usize = 16_384;

/// The waiters of one part, each with its id (for unregistering).
type Waiters = Vec<(u64, oneshot::Sender<Arc<Part>>)>;

struct Entry {
    part: Arc<Part>,
    generation: u64,
    deleting: bool,
}

#[derive(Default)]
struct State {
    parts: BTreeMap<PartKey, Entry>,
    /// Kept up to date on every change, so status costs nothing.
    counts: Counts,
    waiters: HashMap<PartKey, Waiters>,
    waiter_count: usize,
    next_waiter: u64,
    /// The catch-up watermark and the generation of its datastore entry.
    watermark: Option<(u64, u64)>,
    /// Parts deleted in this run, by `created_index`: a notification still
    /// in flight for one of them must not bring it back.
    deleted: HashMap<PartKey, u64>,
    deleted_order: VecDeque<PartKey>,
}

impl State {
    fn count(&mut self, e: &Entry, delta: isize) {
        let slot = match (e.deleting, e.part.status()) {
            (true, _) => &mut self.counts.deleting,
            (false, Status::Failed) => &mut self.counts.failed,
            (false, _) => &mut self.counts.complete,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    fn insert(&mut self, key: PartKey, e: Entry) {
        self.count(&e, 1);
        if let Some(old) = self.parts.insert(key, e) {
            self.count(&old, -1);
        }
    }

    fn remove(&mut self, key: &PartKey) {
        if let Some(old) = self.parts.remove(key) {
            self.count(&old, -1);
        }
    }

    fn remove_waiter(&mut self, key: &PartKey, id: u64) {
        if let Some(list) = self.waiters.get_mut(key) {
            let before = list.len();
            list.retain(|(i, _)| *i != id);
            self.waiter_count -= before - list.len();
            if list.is_empty() {
                self.waiters.remove(key);
            }
        }
    }
}

/// A registered wait for one part. Dropping it (on timeout, or when the
/// caller goes away) unregisters it.
pub struct Waiter {
    rx: oneshot::Receiver<Arc<Part>>,
    key: PartKey,
    id: u64,
    state: Arc<Mutex<State>>,
}

impl Waiter {
    /// Resolves when the part is recorded as terminal.
    pub async fn wait(mut self) -> Arc<Part> {
        match (&mut self.rx).await {
            Ok(part) => part,
            // Senders are only dropped after sending; never spin if not.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut st) = self.state.lock() {
            st.remove_waiter(&self.key, self.id);
        }
    }
}

/// What the ledger knows of a part when a caller asks to wait for it.
pub enum Lookup {
    Ready(Arc<Part>),
    /// Being deleted: gone for every answer.
    Deleting,
    /// Not recorded: the waiter is registered already, so a part recorded
    /// from now on wakes it.
    Absent(Waiter),
}

/// The outcome of recording a part.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    New,
    /// Already recorded: a duplicate notification changes nothing.
    Duplicate,
    /// A delete of this part is in progress; it is not brought back.
    Deleting,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub complete: usize,
    pub failed: usize,
    pub deleting: usize,
}

pub struct Ledger<D> {
    store: D,
    state: Arc<Mutex<State>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Counts deletes from the node's table, so that an import can tell
    /// whether what it read from the node may have gone since.
    node_deletes: AtomicU64,
}

impl<D: Datastore> Ledger<D> {
    /// Loads the ledger from the datastore. Returns it with the parts whose
    /// delete was interrupted, for the caller to finish.
    pub async fn load(store: D) -> Result<(Self, Vec<PartKey>), RpcError> {
        let mut st = State::default();
        let mut interrupted = Vec::new();
        // One listing per shard, decoded before the next is read: memory
        // at load stays bounded by one shard's listing.
        for shard in store.list(store::parts_prefix()).await? {
            if shard.string.is_some() {
                log::warn!("Skipping datastore entry {:?}: not a shard", shard.key);
                continue;
            }
            for e in store.list(shard.key).await? {
                let Some(s) = e.string.as_deref() else {
                    log::warn!("Skipping datastore entry {:?}: not a string", e.key);
                    continue;
                };
                match StoredPart::decode(s) {
                    Ok(sp) => {
                        let deleting = sp.deleting;
                        let part = sp.into_part();
                        let key = part.key();
                        if deleting {
                            interrupted.push(key);
                        }
                        st.insert(
                            key,
                            Entry {
                                part: Arc::new(part),
                                generation: e.generation,
                                deleting,
                            },
                        );
                    }
                    Err(err) => log::warn!("Skipping datastore entry {:?}: {err}", e.key),
                }
            }
        }
        if let Some(e) = store.list(store::catchup_key()).await?.into_iter().next() {
            match e.string.as_deref().map(serde_json::from_str::<Watermark>) {
                Some(Ok(w)) => st.watermark = Some((w.updated_index, e.generation)),
                _ => {
                    log::warn!("Ignoring unreadable catch-up watermark; catching up from the start")
                }
            }
        }
        let ledger = Ledger {
            store,
            state: Arc::new(Mutex::new(st)),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            node_deletes: AtomicU64::new(0),
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
        self.stripes[b[0] as usize % STRIPES].lock().await
    }

    /// Read before reading parts from the node; see [`Ledger::note_node_delete`].
    pub fn node_deletes(&self) -> u64 {
        self.node_deletes.load(Ordering::SeqCst)
    }

    /// Called after each delete from the node's table, with the hash's lock
    /// still held: whoever read the node before must read it again before
    /// importing from it.
    pub fn note_node_delete(&self) {
        self.node_deletes.fetch_add(1, Ordering::SeqCst);
    }

    /// The part if recorded, else a registered waiter for it.
    pub fn lookup_or_wait(&self, key: PartKey) -> Lookup {
        let mut st = self.state();
        match st.parts.get(&key) {
            Some(e) if e.deleting => Lookup::Deleting,
            Some(e) => Lookup::Ready(e.part.clone()),
            None => {
                let (tx, rx) = oneshot::channel();
                let id = st.next_waiter;
                st.next_waiter += 1;
                st.waiters.entry(key).or_default().push((id, tx));
                st.waiter_count += 1;
                Lookup::Absent(Waiter {
                    rx,
                    key,
                    id,
                    state: self.state.clone(),
                })
            }
        }
    }

    pub fn get(&self, key: &PartKey) -> Option<Arc<Part>> {
        self.state()
            .parts
            .get(key)
            .filter(|e| !e.deleting)
            .map(|e| e.part.clone())
    }

    /// Whether the ledger holds the part at all, deleting or not.
    pub fn holds(&self, key: &PartKey) -> bool {
        self.state().parts.contains_key(key)
    }

    /// The live parts of one hash, in key order.
    pub fn parts_of(&self, hash: &Sha256) -> Vec<Arc<Part>> {
        let lo = PartKey {
            payment_hash: *hash,
            groupid: 0,
            partid: 0,
        };
        let st = self.state();
        st.parts
            .range((Bound::Included(lo), Bound::Unbounded))
            .take_while(|(k, _)| k.payment_hash == *hash)
            .filter(|(_, e)| !e.deleting)
            .map(|(_, e)| e.part.clone())
            .collect()
    }

    /// Live parts, optionally of one hash and one status, by created_index.
    pub fn list(&self, hash: Option<&Sha256>, status: Option<Status>) -> Vec<Arc<Part>> {
        let mut parts: Vec<Arc<Part>> = match hash {
            Some(h) => self.parts_of(h),
            None => self
                .state()
                .parts
                .values()
                .filter(|e| !e.deleting)
                .map(|e| e.part.clone())
                .collect(),
        };
        if let Some(s) = status {
            parts.retain(|p| p.status() == s);
        }
        parts.sort_by_key(|p| p.payment.created_index);
        parts
    }

    pub fn counts(&self) -> Counts {
        self.state().counts
    }

    pub fn waiter_count(&self) -> usize {
        self.state().waiter_count
    }

    /// Records a terminal part durably, then wakes its waiters. The caller
    /// holds the hash's lock.
    pub async fn record(&self, part: impl Into<Arc<Part>>) -> Result<Recorded, RpcError> {
        let part: Arc<Part> = part.into();
        let key = part.key();
        {
            let st = self.state();
            if st.deleted.get(&key) == Some(&part.payment.created_index) {
                return Ok(Recorded::Deleting);
            }
            match st.parts.get(&key) {
                Some(e) if e.deleting => return Ok(Recorded::Deleting),
                Some(_) => return Ok(Recorded::Duplicate),
                None => {}
            }
        }
        let dskey = store::part_key(&key);
        let generation = match self
            .store
            .create(dskey.clone(), StoredPart::encode(&part, false))
            .await
        {
            Ok(g) => g,
            Err(e) if e.code == codes::DATASTORE_UPDATE_ALREADY_EXISTS => {
                // Written by an earlier run that stopped before we loaded it
                // (or another instance): adopt the stored copy.
                return self.adopt(key, dskey).await;
            }
            Err(e) => return Err(e),
        };
        let mut st = self.state();
        st.insert(
            key,
            Entry {
                part: part.clone(),
                generation,
                deleting: false,
            },
        );
        deliver(&mut st, &key, &part);
        Ok(Recorded::New)
    }

    async fn adopt(&self, key: PartKey, dskey: Vec<String>) -> Result<Recorded, RpcError> {
        let entry = self
            .store
            .list(dskey)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                RpcError::lightningd(format!(
                    "datastore entry for {key} vanished while being written"
                ))
            })?;
        let sp = entry
            .string
            .as_deref()
            .ok_or("not a string".to_string())
            .and_then(StoredPart::decode)
            .map_err(|e| {
                RpcError::lightningd(format!("unreadable datastore entry for {key}: {e}"))
            })?;
        let deleting = sp.deleting;
        let part = Arc::new(sp.into_part());
        let mut st = self.state();
        st.insert(
            key,
            Entry {
                part: part.clone(),
                generation: entry.generation,
                deleting,
            },
        );
        if deleting {
            return Ok(Recorded::Deleting);
        }
        deliver(&mut st, &key, &part);
        Ok(Recorded::Duplicate)
    }

    /// Answers the part's waiters without recording it: a notification's
    /// waiters learn the outcome before the datastore write (which, should
    /// it fail, leaves the part to be imported from the node later).
    pub fn wake(&self, part: &Arc<Part>) {
        deliver(&mut self.state(), &part.key(), part);
    }

    /// Durably marks a part as being deleted; from now on it is gone for
    /// every answer. The caller holds the hash's lock.
    pub async fn mark_deleting(&self, key: &PartKey, deleting: bool) -> Result<(), RpcError> {
        let (part, generation) = {
            let st = self.state();
            let e = st
                .parts
                .get(key)
                .ok_or_else(|| RpcError::lightningd(format!("no ledger entry for {key}")))?;
            if e.deleting == deleting {
                return Ok(());
            }
            (e.part.clone(), e.generation)
        };
        let value = StoredPart::encode(&part, deleting);
        let generation = self
            .store
            .replace(store::part_key(key), value, generation)
            .await?;
        let mut st = self.state();
        if let Some(e) = st.parts.get(key) {
            let updated = Entry {
                part: e.part.clone(),
                generation,
                deleting,
            };
            st.insert(*key, updated);
        }
        Ok(())
    }

    /// Removes a part from the datastore and the index. The caller holds
    /// the hash's lock.
    pub async fn remove(&self, key: &PartKey) -> Result<(), RpcError> {
        let Some(generation) = self.state().parts.get(key).map(|e| e.generation) else {
            return Ok(());
        };
        match self.store.delete(store::part_key(key), generation).await {
            Ok(()) => {}
            Err(e) if e.code == codes::DATASTORE_DEL_DOES_NOT_EXIST => {}
            Err(e) => return Err(e),
        }
        self.state().remove(key);
        Ok(())
    }

    /// Remembers that this part (this attempt: its `created_index`) was
    /// deleted, so that a notification for it arriving late is ignored.
    pub fn tombstone(&self, key: PartKey, created_index: u64) {
        let mut st = self.state();
        if st.deleted.insert(key, created_index).is_none() {
            st.deleted_order.push_back(key);
            if st.deleted_order.len() > TOMBSTONES {
                if let Some(old) = st.deleted_order.pop_front() {
                    st.deleted.remove(&old);
                }
            }
        }
    }

    pub fn watermark(&self) -> u64 {
        self.state().watermark.map_or(0, |(w, _)| w)
    }

    /// Durably advances the catch-up watermark.
    pub async fn set_watermark(&self, updated_index: u64) -> Result<(), RpcError> {
        let current = self.state().watermark;
        let value = serde_json::to_string(&Watermark { updated_index }).expect("serializes");
        let generation = match current {
            Some((w, _)) if w >= updated_index => return Ok(()),
            Some((_, g)) => self.store.replace(store::catchup_key(), value, g).await?,
            None => self.store.create(store::catchup_key(), value).await?,
        };
        self.state().watermark = Some((updated_index, generation));
        Ok(())
    }
}

fn deliver(st: &mut State, key: &PartKey, part: &Arc<Part>) {
    if let Some(list) = st.waiters.remove(key) {
        st.waiter_count -= list.len();
        for (_, tx) in list {
            let _ = tx.send(part.clone());
        }
    }
}
