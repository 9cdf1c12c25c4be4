//! lightningd's transactions, as paystate's costs depend on them
//! (`lightningd/jsonrpc.c`, `read_json`): each request runs in a
//! database transaction of its own, except on a connection with
//! `batching` enabled, where the requests of one read share one (one
//! commit for all); a command that passes through an `rpc_command` hook
//! runs later, from the plugin's answer, in a transaction of its own.
//! The stand-in counts commits, so that tests see what a design costs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Transactions committed, and the batches open. Atomics, not a lock:
/// a batch's commit takes the node's lock, and a call holding the node's
/// lock asks whether a batch is open.
#[derive(Default)]
pub struct Commits {
    committed: AtomicU64,
    open: AtomicUsize,
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
        if commits.open.fetch_add(1, Ordering::SeqCst) == 0 {
            db(true);
        }
        Batch {
            commits,
            on_commit: Box::new(db),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if self.commits.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            (self.on_commit)(false);
        }
        self.commits.committed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Whether a batch is open (a call then runs inside its transaction).
pub fn in_batch(commits: &Commits) -> bool {
    commits.open.load(Ordering::SeqCst) > 0
}

/// lightningd runs the requests of one connection in the order they
/// arrive, each up to the point where it waits (for a hook's answer, a
/// plugin method's, a payment's outcome): a write and a later delete of
/// the same key never swap. Each request of a connection takes its turn.
#[derive(Default)]
pub struct Order {
    next: AtomicU64,
    turned: tokio::sync::Notify,
}

/// One request's turn on its connection: taken with [`Turn::wait`], given
/// up when dropped (at the point the request waits, or when it is done).
pub struct Turn {
    order: Arc<Order>,
    n: u64,
}

impl Turn {
    /// The `n`th request of a connection (from 0).
    pub fn new(order: Arc<Order>, n: u64) -> Turn {
        Turn { order, n }
    }

    /// Returns when the requests before this one are done or waiting.
    pub async fn wait(&self) {
        loop {
            let turned = self.order.turned.notified();
            if self.order.next.load(Ordering::SeqCst) == self.n {
                return;
            }
            turned.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Only the request whose turn it is gives it up (a request is
        // dropped unwaited only when its connection ends).
        if self
            .order
            .next
            .compare_exchange(self.n, self.n + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.order.turned.notify_waiters();
        }
    }
}
