//! The payment ledger: every terminal part paystate knows, indexed in memory
//! for answers and kept durably in the node's datastore; and the callers
//! waiting for a part to become terminal.
//!
//! The index holds what identifies each part, not the part itself (a node
//! may have made millions): records are read from the datastore when asked
//! for, and the most recently recorded or read are kept in a small cache.

use crate::domain::{Answer, Part, PartKey, Status};
use crate::error::{codes, RpcError};
use crate::store::{self, Datastore, Summary, Watermark};
use cln_rpc::primitives::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Writes to parts of one payment hash are serialized through one of these
/// stripes (a fixed number, so memory does not grow with the hashes seen;
/// enough that autoclean's concurrent deletes of other hashes rarely wait).
const STRIPES: usize = 1024;

/// The index's shards: a hash's first byte (the datastore layout's `<hh>`).
pub const SHARDS: usize = 256;

/// How many recent deletes are remembered against late notifications. A
/// notification is late by milliseconds; this bounds the memory.
const TOMBSTONES: usize = 16_384;

/// How many parts are kept whole in memory. Polls and wake-ups concern the
/// parts just resolved, which are here; any other costs one datastore read.
pub const CACHED_PARTS: usize = 4096;

/// The waiters of one part, each with its id (for unregistering).
type Waiters = Vec<(u64, oneshot::Sender<Arc<Answer>>)>;

/// One part in the index: about 80 bytes, whatever the record's size.
struct Entry {
    created_index: u64,
    status: Status,
    deleting: bool,
    /// Read since it last had a chance of eviction.
    recent: bool,
    cached: Option<Arc<Part>>,
}

impl Entry {
    fn new(s: &Summary, deleting: bool, cached: Option<Arc<Part>>) -> Entry {
        Entry {
            created_index: s.created_index,
            status: s.status,
            deleting,
            recent: false,
            cached,
        }
    }

    fn summary(&self, key: PartKey) -> Summary {
        Summary {
            key,
            created_index: self.created_index,
            status: self.status,
        }
    }
}

#[derive(Default)]
struct State {
    parts: BTreeMap<PartKey, Entry>,
    /// Kept up to date on every change, so status costs nothing.
    counts: Counts,
    /// Keys of cached parts, oldest first (second chance for recent reads).
    cache_order: VecDeque<PartKey>,
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
        self.count_as((e.deleting, e.status), delta);
    }

    fn insert(&mut self, key: PartKey, e: Entry) {
        self.count(&e, 1);
        let cached = e.cached.is_some();
        if let Some(old) = self.parts.insert(key, e) {
            self.count(&old, -1);
        }
        if cached {
            self.note_cached(key);
        }
    }

    fn remove(&mut self, key: &PartKey) {
        if let Some(old) = self.parts.remove(key) {
            self.count(&old, -1);
        }
    }

    fn count_as(&mut self, (deleting, status): (bool, Status), delta: isize) {
        let slot = match (deleting, status) {
            (true, _) => &mut self.counts.deleting,
            (false, Status::Failed) => &mut self.counts.failed,
            (false, _) => &mut self.counts.complete,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    /// A live part from the cache, marked as recently read.
    fn cached(&mut self, key: &PartKey) -> Option<Arc<Part>> {
        let e = self.parts.get_mut(key).filter(|e| !e.deleting)?;
        e.recent = true;
        e.cached.clone()
    }

    /// Keeps a part read from the datastore, if the index still holds that
    /// very attempt.
    fn fill(&mut self, summary: Summary, part: &Arc<Part>) {
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
                Some(e) => e.cached = None,
                None => {}
            }
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
    rx: oneshot::Receiver<Arc<Answer>>,
    key: PartKey,
    id: u64,
    state: Arc<Mutex<State>>,
}

impl Waiter {
    /// Resolves with the part's answer when it becomes terminal.
    pub async fn wait(mut self) -> Arc<Answer> {
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

/// What the index says of a part before its record is read.
enum Known {
    Cached(Arc<Part>),
    Stored(Summary),
    Deleting,
    Absent,
}

pub struct Ledger<D> {
    store: D,
    state: Arc<Mutex<State>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Counts deletes from the node's table, so that an import can tell
    /// whether what it read from the node may have gone since.
    node_deletes: AtomicU64,
    /// Which shards of the index are loaded (by the hash's first byte).
    shards: Vec<tokio::sync::OnceCell<()>>,
}

impl<D: Datastore> Ledger<D> {
    /// Opens the ledger: the catch-up watermark and the deletes an earlier
    /// version marked and a crash interrupted (returned, for the caller to
    /// finish). The index of parts loads shard by shard afterwards, on
    /// demand ([`Ledger::ensure`]) or all of it ([`Ledger::load_all`]).
    pub async fn load(store: D) -> Result<(Self, Vec<PartKey>), RpcError> {
        let mut st = State::default();
        let mut interrupted = Vec::new();
        for e in store.list(store::deleting_prefix()).await? {
            let Some(s) = name_of(&e, true) else { continue };
            st.insert(s.key, Entry::new(&s, true, None));
            interrupted.push(s.key);
        }
        if let Some(e) = store.list(store::catchup_key()).await?.into_iter().next() {
            match (
                e.string.as_deref().map(serde_json::from_str::<Watermark>),
                e.generation,
            ) {
                (Some(Ok(w)), Some(g)) => st.watermark = Some((w.updated_index, g)),
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
            shards: (0..SHARDS).map(|_| tokio::sync::OnceCell::new()).collect(),
        };
        Ok((ledger, interrupted))
    }

    /// Loads the index of the shard holding `hash`, once: every per-hash
    /// answer calls this first, so answers are right before the whole
    /// index is in. One `listdatastore` of one shard: lightningd reads that
    /// shard's rows only (listing the shards' parent would read every
    /// record of the ledger in one call).
    pub async fn ensure(&self, hash: &Sha256) -> Result<(), RpcError> {
        let b: &[u8] = hash.as_ref();
        self.ensure_shard(b[0]).await
    }

    /// Loads one shard of the index, once (`shard`: a hash's first byte).
    pub async fn ensure_shard(&self, shard: u8) -> Result<(), RpcError> {
        self.shards[shard as usize]
            .get_or_try_init(|| self.load_shard(shard))
            .await
            .map(drop)
    }

    async fn load_shard(&self, shard: u8) -> Result<(), RpcError> {
        let mut key = store::parts_prefix();
        key.push(format!("{shard:02x}"));
        let listed = self.store.list(key).await?;
        let mut st = self.state();
        for e in listed {
            let Some(s) = name_of(&e, false) else {
                continue;
            };
            match st.parts.get(&s.key) {
                // Recorded in this run, or marked deleting: known better.
                Some(old) if old.created_index == s.created_index => continue,
                // Two attempts of one part: only a foreign writer makes
                // this; the later attempt is the part lightningd knows.
                Some(old) if old.created_index > s.created_index => {
                    log::warn!("Ignoring {}: a later attempt is recorded", s.name());
                    continue;
                }
                _ => {}
            }
            st.insert(s.key, Entry::new(&s, false, None));
        }
        Ok(())
    }

    /// Loads the whole index at once (for a listing of every part; the
    /// background load, paced, is catch-up's).
    pub async fn load_all(&self) -> Result<(), RpcError> {
        for shard in 0..=u8::MAX {
            self.ensure_shard(shard).await?;
        }
        Ok(())
    }

    /// Whether one shard of the index is loaded.
    pub fn shard_loaded(&self, shard: u8) -> bool {
        self.shards[shard as usize].initialized()
    }

    /// Loads the whole index from one listing of the shards' parent and one
    /// of each shard in use: the cheapest way for a small ledger. The
    /// parent's listing costs lightningd a read of every record under it,
    /// so this is only for a ledger known to be small.
    pub async fn load_small(&self) -> Result<(), RpcError> {
        for shard in self.store.list(store::parts_prefix()).await? {
            let name = shard.key.last().map(String::as_str).unwrap_or_default();
            let Ok(b) = u8::from_str_radix(name, 16) else {
                log::warn!("Skipping datastore entry {:?}: not a shard", shard.key);
                continue;
            };
            if name.len() == 2 && name == name.to_ascii_lowercase() {
                self.ensure_shard(b).await?;
            }
        }
        // The shards with no part at all are loaded too: they are empty.
        for shard in self.shards.iter() {
            let _ = shard.set(());
        }
        Ok(())
    }

    /// How many of the index's shards are loaded.
    pub fn shards_loaded(&self) -> usize {
        self.shards.iter().filter(|s| s.initialized()).count()
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

    fn known(st: &mut State, key: &PartKey) -> Known {
        if let Some(part) = st.cached(key) {
            return Known::Cached(part);
        }
        match st.parts.get(key) {
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
        self.state().fill(summary, &part);
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
                    let (tx, rx) = oneshot::channel();
                    let id = st.next_waiter;
                    st.next_waiter += 1;
                    st.waiters.entry(key).or_default().push((id, tx));
                    st.waiter_count += 1;
                    return Ok(Lookup::Absent(Waiter {
                        rx,
                        key,
                        id,
                        state: self.state.clone(),
                    }));
                }
            }
        };
        // Recorded, and terminal for good: a delete racing this read makes
        // the part gone, which is as true an answer as the part itself.
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

    /// Whether the ledger holds the part at all, deleting or not (its shard
    /// loaded: [`Ledger::ensure`]).
    pub fn holds(&self, key: &PartKey) -> bool {
        self.state().parts.contains_key(key)
    }

    /// The live parts of one hash as the index knows them, in key order.
    fn summaries_of(&self, hash: &Sha256) -> Vec<Summary> {
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
            .map(|(k, e)| e.summary(*k))
            .collect()
    }

    /// The highest groupid the ledger holds for a hash (no record read; its
    /// shard loaded: [`Ledger::ensure`]).
    pub fn highest_groupid(&self, hash: &Sha256) -> Option<u64> {
        self.summaries_of(hash).iter().map(|s| s.key.groupid).max()
    }

    /// The parts of these summaries, in their order; those deleted
    /// meanwhile are left out.
    async fn read_all(&self, summaries: Vec<Summary>) -> Result<Vec<Arc<Part>>, RpcError> {
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            out.extend(self.get(&s.key).await?);
        }
        Ok(out)
    }

    /// The live parts of one hash, in key order.
    pub async fn parts_of(&self, hash: &Sha256) -> Result<Vec<Arc<Part>>, RpcError> {
        self.ensure(hash).await?;
        self.read_all(self.summaries_of(hash)).await
    }

    /// Live parts, optionally of one hash and one status, by created_index.
    /// Without a hash this reads every record: it is for inspection.
    pub async fn list(
        &self,
        hash: Option<&Sha256>,
        status: Option<Status>,
    ) -> Result<Vec<Arc<Part>>, RpcError> {
        match hash {
            Some(h) => self.ensure(h).await?,
            None => self.load_all().await?,
        }
        let mut summaries: Vec<Summary> = match hash {
            Some(h) => self.summaries_of(h),
            None => self
                .state()
                .parts
                .iter()
                .filter(|(_, e)| !e.deleting)
                .map(|(k, e)| e.summary(*k))
                .collect(),
        };
        summaries.retain(|s| status.map_or(true, |st| s.status == st));
        summaries.sort_by_key(|s| s.created_index);
        self.read_all(summaries).await
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
        let summary = Summary::of(&part);
        let key = summary.key;
        self.ensure(&key.payment_hash).await?;
        {
            let st = self.state();
            if st.deleted.get(&key) == Some(&summary.created_index) {
                return Ok(Recorded::Deleting);
            }
            match st.parts.get(&key) {
                Some(e) if e.deleting => return Ok(Recorded::Deleting),
                Some(_) => return Ok(Recorded::Duplicate),
                None => {}
            }
        }
        match self
            .store
            .create(summary.record_key(), store::encode(&part))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == codes::DATASTORE_UPDATE_ALREADY_EXISTS => {
                // Written by an earlier run that stopped before we loaded it
                // (or another instance): adopt the stored copy.
                return self.adopt(summary).await;
            }
            Err(e) => return Err(e),
        }
        let mut st = self.state();
        st.insert(key, Entry::new(&summary, false, Some(part.clone())));
        deliver(&mut st, &key, || part.waitsendpay_answer());
        Ok(Recorded::New)
    }

    async fn adopt(&self, summary: Summary) -> Result<Recorded, RpcError> {
        self.state()
            .insert(summary.key, Entry::new(&summary, false, None));
        let part = self.read(summary).await?.ok_or_else(|| {
            RpcError::lightningd(format!(
                "Datastore record of {} vanished while being written",
                summary.key
            ))
        })?;
        deliver(&mut self.state(), &summary.key, || {
            part.waitsendpay_answer()
        });
        Ok(Recorded::Duplicate)
    }

    /// Answers the part's waiters without recording it: a notification's
    /// waiters learn the outcome before the datastore write (which, should
    /// it fail, leaves the part to be imported from the node later), with
    /// the answer lightningd's own waiters get. Returns how many it woke.
    pub fn wake(&self, key: &PartKey, answer: impl FnOnce() -> Answer) -> usize {
        deliver(&mut self.state(), key, answer)
    }

    /// Removes a part from the datastore and the index, and returns it as
    /// it was (its record comes back with the delete: no read first). One
    /// datastore call; two for a part an earlier version marked `deleting`
    /// (the mark goes after the record). The caller holds the hash's lock.
    pub async fn remove(&self, key: &PartKey) -> Result<Option<Arc<Part>>, RpcError> {
        let Some((summary, marked, cached)) = self
            .state()
            .parts
            .get(key)
            .map(|e| (e.summary(*key), e.deleting, e.cached.clone()))
        else {
            return Ok(None);
        };
        // Records are written once and never replaced: whatever the value,
        // this is the part to delete (its name carries its attempt).
        let held = match self.store.delete(summary.record_key(), None).await {
            Ok(value) => value,
            Err(e) if e.code == codes::DATASTORE_DEL_DOES_NOT_EXIST => None,
            Err(e) => return Err(e),
        };
        if marked {
            match self.store.delete(summary.deleting_key(), None).await {
                Err(e) if e.code != codes::DATASTORE_DEL_DOES_NOT_EXIST => return Err(e),
                _ => {}
            }
        }
        self.state().remove(key);
        Ok(cached.or_else(|| {
            let part = held.as_deref().map(store::decode)?;
            part.map_err(|why| log::warn!("Deleted {key}, whose record was unreadable: {why}"))
                .ok()
                .map(Arc::new)
        }))
    }

    /// What the index holds of one hash (optionally one part of it), in
    /// key order: every part, whatever its status, without reading a
    /// record (its shard loaded: [`Ledger::ensure`]).
    pub fn held(&self, hash: &Sha256, part: Option<(u64, u64)>) -> Vec<Summary> {
        let mut held = self.summaries_of(hash);
        if let Some((partid, groupid)) = part {
            held.retain(|s| s.key.partid == partid && s.key.groupid == groupid);
        }
        held
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

    /// Forgets a tombstone: the delete did not happen after all (the node
    /// refused it), so the part may be imported again.
    pub fn untombstone(&self, key: &PartKey) {
        let mut st = self.state();
        if st.deleted.remove(key).is_some() {
            st.deleted_order.retain(|k| k != key);
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

/// The part a listed name stands for; anything else is logged and skipped.
/// Parts are keys with children (their record); deleting marks are values.
fn name_of(e: &store::Entry, is_mark: bool) -> Option<Summary> {
    if e.generation.is_some() != is_mark {
        log::warn!("Skipping datastore entry {:?}: not paystate's", e.key);
        return None;
    }
    let name = e.key.last().map(String::as_str).unwrap_or_default();
    Summary::parse(name)
        .map_err(|why| log::warn!("Skipping datastore entry {:?}: {why}", e.key))
        .ok()
}

/// Answers a part's waiters, if any (the answer is made only then), and
/// returns how many.
fn deliver(st: &mut State, key: &PartKey, answer: impl FnOnce() -> Answer) -> usize {
    let Some(list) = st.waiters.remove(key) else {
        return 0;
    };
    st.waiter_count -= list.len();
    let answer = Arc::new(answer());
    let woken = list.len();
    for (_, tx) in list {
        let _ = tx.send(answer.clone());
    }
    woken
}
