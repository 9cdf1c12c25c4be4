//! Writes behind: the ledger's datastore writes are queued and applied
//! together, so that lightningd commits many at once. A commit costs the
//! node more than the write itself (on a real node 1.5-2 ms a call alone,
//! against a fraction of that in a batch), and payments and autoclean
//! deletes arrive milliseconds apart.
//!
//! Nothing is lost by waiting: until the node deletes a part, the node
//! has everything its record holds, so a record lost in a crash is
//! imported again by catch-up; and a record whose delete is lost in a
//! crash is a part the node no longer has, which start-up's
//! reconciliation drops (and which no answer shows meanwhile: answers ask
//! the node whether the part exists).
//!
//! A record's delete item is held longer (see [`HOLD_QUIET`]): autoclean
//! deletes whole pages in moments, and a page deleted whole needs none of
//! its items. A crash loses the items held, like any write behind.

use crate::error::RpcError;
use crate::store::{Datastore, Op};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// The longest a write waits for others to join it. lightningd's own
/// batching (autoclean's) holds a transaction open for up to 250 ms.
pub const FLUSH_AFTER: Duration = Duration::from_millis(200);

/// A batch is sent at once when it makes this many writes, its appends to
/// one key counted as one (lightningd commits after 100 requests of one
/// read in any case).
const MAX_QUEUED: usize = crate::store::MAX_BATCH;

/// ... or when this many writes are queued before merging: lightningd's
/// time for a batch goes with the records it carries (23 full pages,
/// some 1,500 records, took 76 ms of a real node's; no call of
/// paystate's is to take more than 50), so a batch carries 8 pages' worth
/// at most.
const MAX_OPS: usize = 512;

/// Held delete items are written once no other has come for this long,
/// so that a page whose parts all go meanwhile is one `deldatastore` and
/// no appends. Autoclean deletes the oldest parts 100 to a commit, a
/// page's 64 within a second, its failed parts first, then (after a
/// listing of the table) its succeeded ones; on PostgreSQL an append to
/// an old page reads every newer row (`db_datastore_first`), a
/// `deldatastore` its own row only.
const HOLD_QUIET: Duration = Duration::from_secs(2);

/// ... and this long at most, while deletes keep coming (a crash loses
/// what is held, as it loses any write behind).
const HOLD_MAX: Duration = Duration::from_secs(30);

/// The most pages with delete items held: the oldest goes beyond it.
const HELD_PAGES: usize = 256;

/// Called with a write's outcome once it is applied.
pub(super) type Done = Box<dyn FnOnce(Result<(), RpcError>) + Send>;

enum Msg {
    Write(Op, Option<Done>),
    /// An append that may wait for a delete of its key to make it moot.
    Defer(Op, Option<Done>),
    /// Apply everything queued now, and say when it is.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Writer {
    pub fn start<D: Datastore>(store: Arc<D>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Writer { tx }
    }

    pub fn queue(&self, op: Op, done: Option<Done>) {
        if let Err(mpsc::error::SendError(Msg::Write(_, Some(done)))) =
            self.tx.send(Msg::Write(op, done))
        {
            done(Err(RpcError::lightningd("the ledger's writer has stopped")));
        }
    }

    /// Queues an append that may be held (up to [`HOLD_MAX`]) in case its
    /// key is deleted meanwhile: a record's delete item, which nothing
    /// waits for (no answer shows a deleted part's record).
    pub fn defer(&self, op: Op, done: Option<Done>) {
        if let Err(mpsc::error::SendError(Msg::Defer(_, Some(done)))) =
            self.tx.send(Msg::Defer(op, done))
        {
            done(Err(RpcError::lightningd("the ledger's writer has stopped")));
        }
    }

    /// Returns once every write queued before has been applied (or failed),
    /// held ones included.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Deferred appends, by key, kept across batches until their key is
/// deleted (then they are moot), written otherwise, or due.
#[derive(Default)]
struct Held {
    keys: HashMap<Vec<String>, Waiting>,
    /// When the last deferred append came.
    last: Option<Instant>,
}

struct Waiting {
    value: Vec<u8>,
    dones: Vec<Option<Done>>,
    since: Instant,
}

impl Held {
    /// Holds an append; returns a key to write now, the oldest, where
    /// more than [`HELD_PAGES`] are held.
    fn hold(
        &mut self,
        key: Vec<String>,
        value: Vec<u8>,
        done: Option<Done>,
    ) -> Option<Vec<String>> {
        let now = Instant::now();
        self.last = Some(now);
        let w = self.keys.entry(key).or_insert_with(|| Waiting {
            value: Vec::new(),
            dones: Vec::new(),
            since: now,
        });
        w.value.extend(value);
        w.dones.push(done);
        if self.keys.len() <= HELD_PAGES {
            return None;
        }
        self.keys
            .iter()
            .min_by_key(|(_, w)| w.since)
            .map(|(k, _)| k.clone())
    }

    /// When something held is due, if anything is.
    fn due(&self) -> Option<Instant> {
        let oldest = self.keys.values().map(|w| w.since).min()?;
        let quiet = self.last.map_or(oldest, |l| l + HOLD_QUIET);
        Some(quiet.min(oldest + HOLD_MAX))
    }

    /// The keys due at `now`: all of them once deferred appends have
    /// stopped coming, else those held for [`HOLD_MAX`].
    fn due_keys(&self, now: Instant) -> Vec<Vec<String>> {
        let quiet = self.last.map_or(true, |l| now >= l + HOLD_QUIET);
        self.keys
            .iter()
            .filter(|(_, w)| quiet || now >= w.since + HOLD_MAX)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The writes queued for one commit, merged as they come: appends to one
/// key go as one write (a page's records of one batch: one write for
/// lightningd), in their order, and an append never joins one from
/// before a write of another kind to its key.
#[derive(Default)]
struct Batch {
    /// The writes to send.
    ops: Vec<Op>,
    /// For each write to send, the queued writes it carries.
    takers: Vec<Vec<usize>>,
    /// The keys whose last write is an append open to join, and where.
    open: HashMap<Vec<String>, usize>,
    /// Each queued write's caller.
    dones: Vec<Option<Done>>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn take(&mut self, msg: Msg, held: &mut Held) {
        match msg {
            Msg::Write(op, done) => {
                let key = match &op {
                    Op::Create { key, .. } | Op::Append { key, .. } | Op::Delete { key } => key,
                };
                let moot = match op {
                    // A page deleted whole: its held delete items go with it.
                    Op::Delete { .. } => held.keys.remove(key),
                    _ => {
                        self.release(held, key.clone());
                        None
                    }
                };
                self.push(op, done);
                if let Some(w) = moot {
                    let at = self.ops.len() - 1;
                    for d in w.dones {
                        self.takers[at].push(self.dones.len());
                        self.dones.push(d);
                    }
                }
            }
            Msg::Defer(Op::Append { key, value }, done) => {
                if let Some(oldest) = held.hold(key, value, done) {
                    self.release(held, oldest);
                }
            }
            Msg::Defer(op, done) => self.take(Msg::Write(op, done), held),
            Msg::Flush(tx) => {
                for key in held.keys.keys().cloned().collect::<Vec<_>>() {
                    self.release(held, key);
                }
                self.flushes.push(tx);
            }
        }
    }

    /// Writes what is held for `key` in this batch, in its place.
    fn release(&mut self, held: &mut Held, key: Vec<String>) {
        if let Some(w) = held.keys.remove(&key) {
            let mut dones = w.dones.into_iter();
            self.push(
                Op::Append {
                    key,
                    value: w.value,
                },
                dones.next().flatten(),
            );
            let at = self.ops.len() - 1;
            for d in dones {
                self.takers[at].push(self.dones.len());
                self.dones.push(d);
            }
        }
    }

    fn push(&mut self, op: Op, done: Option<Done>) {
        let i = self.dones.len();
        self.dones.push(done);
        match op {
            Op::Append { key, value } => match self.open.get(&key) {
                Some(&at) => {
                    if let Op::Append { value: v, .. } = &mut self.ops[at] {
                        v.extend(value);
                    }
                    self.takers[at].push(i);
                }
                None => {
                    self.open.insert(key.clone(), self.ops.len());
                    self.ops.push(Op::Append { key, value });
                    self.takers.push(vec![i]);
                }
            },
            Op::Create { ref key, .. } | Op::Delete { ref key } => {
                self.open.remove(key);
                self.ops.push(op);
                self.takers.push(vec![i]);
            }
        }
    }

    fn full(&self) -> bool {
        self.ops.len() >= MAX_QUEUED || self.dones.len() >= MAX_OPS
    }
}

async fn run<D: Datastore>(store: Arc<D>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut held = Held::default();
    loop {
        let mut b = Batch::default();
        let deadline = tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => {
                    b.take(m, &mut held);
                    Instant::now() + FLUSH_AFTER
                }
                None => break,
            },
            _ = sleep_until(held.due()) => {
                for key in held.due_keys(Instant::now()) {
                    b.release(&mut held, key);
                }
                Instant::now()
            }
        };
        // Nothing to send (a delete item only held): no company to wait for.
        while b.flushes.is_empty() && !b.full() && !b.ops.is_empty() {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => b.take(m, &mut held),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // What came meanwhile goes too, up to a batch's worth.
        while !b.full() {
            match rx.try_recv() {
                Ok(m) => b.take(m, &mut held),
                Err(_) => break,
            }
        }
        apply(&*store, b).await;
    }
    // The channel closed: what is held goes now.
    let mut b = Batch::default();
    for key in held.keys.keys().cloned().collect::<Vec<_>>() {
        b.release(&mut held, key);
    }
    apply(&*store, b).await;
}

/// Sleeps until `due`, or for ever where nothing is due.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn apply<D: Datastore>(store: &D, b: Batch) {
    if !b.ops.is_empty() {
        let (ops, takers) = (b.ops, b.takers);
        let n = ops.len();
        let outcomes = match store.apply(ops).await {
            Ok(o) => o,
            Err(e) => {
                log::warn!(
                    "Could not write {n} ledger change(s): {} ({})",
                    e.message,
                    e.code
                );
                vec![Err(e); n]
            }
        };
        let mut dones: Vec<Option<Done>> = b.dones;
        for (each, outcome) in takers.into_iter().zip(outcomes) {
            for i in each {
                if let Some(done) = dones[i].take() {
                    done(outcome.clone());
                }
            }
        }
    }
    for f in b.flushes {
        let _ = f.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeDatastore;
    use std::sync::Mutex;

    fn create(n: usize) -> Op {
        Op::Create {
            key: vec!["k".into(), n.to_string()],
            value: b"v".to_vec(),
        }
    }

    fn append(key: &str, v: u8) -> Op {
        Op::Append {
            key: vec![key.into()],
            value: vec![v],
        }
    }

    #[test]
    fn appends_to_one_key_go_as_one_until_another_write_to_it() {
        let del = Op::Delete {
            key: vec!["a".into()],
        };
        let mut b = Batch::default();
        for op in [
            append("a", 1),
            append("b", 2),
            append("a", 3),
            del.clone(),
            append("a", 4),
            append("b", 5),
        ] {
            b.take(Msg::Write(op, None), &mut Held::default());
        }
        assert_eq!(
            b.ops,
            [
                Op::Append {
                    key: vec!["a".into()],
                    value: vec![1, 3]
                },
                Op::Append {
                    key: vec!["b".into()],
                    value: vec![2, 5]
                },
                del,
                append("a", 4),
            ]
        );
        assert_eq!(b.takers, [vec![0, 2], vec![1, 5], vec![3], vec![4]]);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_wait_for_company_then_go_together() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for n in 0..3 {
            let seen = seen.clone();
            w.queue(
                create(n),
                Some(Box::new(move |r| seen.lock().unwrap().push((n, r)))),
            );
        }
        tokio::time::sleep(FLUSH_AFTER / 2).await;
        assert!(
            ds.entries.lock().unwrap().is_empty(),
            "written before the batch closed"
        );
        tokio::time::sleep(FLUSH_AFTER).await;
        assert_eq!(ds.entries.lock().unwrap().len(), 3);
        assert_eq!(ds.batches.lock().unwrap().as_slice(), [3]);
        assert!(seen.lock().unwrap().iter().all(|(_, r)| r.is_ok()));
    }

    #[tokio::test(start_paused = true)]
    async fn appends_to_one_key_count_as_one_write_toward_a_full_batch() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        // Many records of a few pages: one batch, not one per hundred.
        for n in 0..(3 * MAX_QUEUED) {
            w.queue(append(["a", "b", "c"][n % 3], n as u8), None);
        }
        w.flush().await;
        assert_eq!(ds.batches.lock().unwrap().as_slice(), [3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_or_a_flush_goes_at_once() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        for n in 0..(MAX_QUEUED + 5) {
            w.queue(create(n), None);
        }
        w.queue(
            Op::Delete {
                key: vec!["k".into(), "0".into()],
            },
            None,
        );
        let t = Instant::now();
        w.flush().await;
        assert!(t.elapsed() < FLUSH_AFTER);
        assert_eq!(ds.entries.lock().unwrap().len(), MAX_QUEUED + 4);
        assert_eq!(ds.batches.lock().unwrap().as_slice(), [MAX_QUEUED, 6]);
    }

    fn outcomes() -> (Arc<Mutex<Vec<bool>>>, impl Fn() -> Option<Done>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let done = move || {
            let s = s.clone();
            Some(Box::new(move |r: Result<(), RpcError>| s.lock().unwrap().push(r.is_ok())) as Done)
        };
        (seen, done)
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_append_whose_key_is_deleted_is_never_written() {
        let ds = Arc::new(FakeDatastore::default());
        ds.entries
            .lock()
            .unwrap()
            .insert(vec!["a".into()], (0, vec![9]));
        let w = Writer::start(ds.clone());
        let (seen, done) = outcomes();
        w.defer(append("a", 1), done());
        w.defer(append("a", 2), done());
        tokio::time::sleep(HOLD_QUIET / 2).await;
        w.queue(
            Op::Delete {
                key: vec!["a".into()],
            },
            done(),
        );
        w.flush().await;
        assert!(ds.entries.lock().unwrap().is_empty());
        // One write, the delete, and every caller told its outcome.
        assert_eq!(ds.batches.lock().unwrap().as_slice(), [1]);
        assert_eq!(*seen.lock().unwrap(), [true, true, true]);
    }

    #[tokio::test(start_paused = true)]
    async fn held_appends_go_once_deferrals_pause_or_at_the_longest_hold() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        let written = |k: &str| {
            ds.entries
                .lock()
                .unwrap()
                .get(&vec![k.to_string()])
                .map(|e| e.1.clone())
        };
        w.defer(append("a", 1), None);
        tokio::time::sleep(HOLD_QUIET / 2).await;
        assert_eq!(written("a"), None, "written before a pause");
        tokio::time::sleep(HOLD_QUIET).await;
        assert_eq!(written("a"), Some(vec![1]));
        // Deferrals that keep coming hold a key for HOLD_MAX at most, and
        // the keys held for less stay held.
        w.defer(append("b", 1), None);
        let start = Instant::now();
        let mut n = 0;
        while written("b").is_none() {
            assert!(start.elapsed() <= HOLD_MAX + FLUSH_AFTER, "held too long");
            tokio::time::sleep(HOLD_QUIET / 4).await;
            n += 1;
            w.defer(append(&format!("c{n}"), 1), None);
        }
        assert!(start.elapsed() >= HOLD_MAX);
        assert_eq!(
            ds.entries.lock().unwrap().len(),
            2,
            "a key held for less than HOLD_MAX went too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_to_a_held_key_or_a_flush_takes_its_appends_first() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        w.defer(append("a", 1), None);
        w.defer(append("b", 2), None);
        w.queue(append("a", 3), None);
        tokio::time::sleep(FLUSH_AFTER * 2).await;
        let get = |k: &str| {
            ds.entries
                .lock()
                .unwrap()
                .get(&vec![k.to_string()])
                .map(|e| e.1.clone())
        };
        assert_eq!(get("a"), Some(vec![1, 3]));
        assert_eq!(get("b"), None);
        w.flush().await;
        assert_eq!(get("b"), Some(vec![2]));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_most_pages_held_the_oldest_goes() {
        let ds = Arc::new(FakeDatastore::default());
        let w = Writer::start(ds.clone());
        for n in 0..=HELD_PAGES {
            w.defer(append(&n.to_string(), 1), None);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(FLUSH_AFTER * 2).await;
        let keys: Vec<_> = ds.entries.lock().unwrap().keys().cloned().collect();
        assert_eq!(keys, [vec!["0".to_string()]]);
    }
}
