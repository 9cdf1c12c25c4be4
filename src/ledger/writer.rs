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

use crate::error::RpcError;
use crate::store::{Datastore, Op};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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

/// Called with a write's outcome once it is applied.
pub(super) type Done = Box<dyn FnOnce(Result<(), RpcError>) + Send>;

enum Msg {
    Write(Op, Option<Done>),
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

    /// Returns once every write queued before has been applied (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
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
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Write(op, done) => {
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
            Msg::Flush(tx) => self.flushes.push(tx),
        }
    }

    fn full(&self) -> bool {
        self.ops.len() >= MAX_QUEUED || self.dones.len() >= MAX_OPS
    }
}

async fn run<D: Datastore>(store: Arc<D>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut b = Batch::default();
        b.take(first);
        let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
        while b.flushes.is_empty() && !b.full() {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => b.take(m),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // What came meanwhile goes too, up to a batch's worth.
        while !b.full() {
            match rx.try_recv() {
                Ok(m) => b.take(m),
                Err(_) => break,
            }
        }
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
            b.take(Msg::Write(op, None));
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
        let t = tokio::time::Instant::now();
        w.flush().await;
        assert!(t.elapsed() < FLUSH_AFTER);
        assert_eq!(ds.entries.lock().unwrap().len(), MAX_QUEUED + 4);
        assert_eq!(ds.batches.lock().unwrap().as_slice(), [MAX_QUEUED, 6]);
    }
}
