//! lightningd's transactions, as paystate's costs depend on them
//! (`lightningd/jsonrpc.c`, `read_json`): each request runs in a
//! database transaction of its own, except on a connection with
//! `batching` enabled, where the requests of one read share one (one
//! commit for all); a command that passes through an `rpc_command` hook
//! runs later, from the plugin's answer, in a transaction of its own.
//! The stand-in counts commits, so that tests see what a design costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Transactions committed, and the batches open.
#[derive(Default)]
pub struct Commits {
    committed: AtomicU64,
    open: Mutex<usize>,
}

impl Commits {
    pub fn count(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// A call outside any batch: a commit of its own.
    pub fn single(&self) {
        self.committed.fetch_add(1, Ordering::SeqCst);
    }
}

/// The shared transaction of the requests of one read on a batching
/// connection: committed when the last of them is done with it.
pub struct Batch {
    commits: Arc<Commits>,
    /// Runs when the batch opens (the first of its kind) and commits.
    on_commit: Box<dyn Fn(bool) + Send + Sync>,
}

impl Batch {
    /// `db(true)` begins a database transaction, `db(false)` commits it,
    /// for the first batch to open and the last to close.
    pub fn open(commits: Arc<Commits>, db: impl Fn(bool) + Send + Sync + 'static) -> Batch {
        let mut open = commits.open.lock().unwrap();
        if *open == 0 {
            db(true);
        }
        *open += 1;
        drop(open);
        Batch {
            commits,
            on_commit: Box::new(db),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let mut open = self.commits.open.lock().unwrap();
        *open -= 1;
        if *open == 0 {
            (self.on_commit)(false);
        }
        self.commits.committed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether a batch is open (a call then runs inside its transaction).
pub fn in_batch(commits: &Commits) -> bool {
    *commits.open.lock().unwrap() > 0
}
