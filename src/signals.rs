//! What one task tells the others, beside the ledger: deletes from the
//! node's table (for imports), reconciliations asked for (for catch-up),
//! parts resolved (for `paystate-waitanysendpay`), and whether the
//! ledger is level with the node (for the level mark, [`crate::level`]).

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{watch, Notify};

pub struct Signals {
    /// Counts deletes from the node's table, so that an import can tell
    /// whether what it read from the node may have gone since.
    node_deletes: AtomicU64,
    /// Rung when the ledger may have drifted from the node (deletes the
    /// feed missed, a record's delete that failed): catch-up reconciles.
    reconcile: Notify,
    /// Counts the parts the node resolved in this run (notifications):
    /// whoever waits for any part's outcome watches it.
    resolved: watch::Sender<u64>,
    /// Counts reconciliations asked for: each says the ledger may have
    /// drifted from the node.
    asked: AtomicU64,
    /// `asked` as it was when the last reconciliation that succeeded (or
    /// the start's level mark) began: the ledger is level while nothing
    /// was asked since. `u64::MAX` until the first.
    levelled: AtomicU64,
    /// The last `deleted` index the feed followed.
    deletes_followed: AtomicU64,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            node_deletes: AtomicU64::new(0),
            reconcile: Notify::new(),
            resolved: watch::Sender::new(0),
            asked: AtomicU64::new(0),
            levelled: AtomicU64::new(u64::MAX),
            deletes_followed: AtomicU64::new(0),
        }
    }
}

impl Signals {
    /// Read before reading parts from the node; see [`Signals::note_node_delete`].
    pub fn node_deletes(&self) -> u64 {
        self.node_deletes.load(Ordering::SeqCst)
    }

    /// Called after each delete from the node's table: whoever read the
    /// node before must read it again before importing from it.
    pub fn note_node_delete(&self) {
        self.node_deletes.fetch_add(1, Ordering::SeqCst);
    }

    /// A part was resolved in the node (a notification came).
    pub fn note_resolved(&self) {
        self.resolved.send_modify(|n| *n += 1);
    }

    /// Changes whenever a part is resolved; subscribe before reading the
    /// node, so that an outcome in between is not missed.
    pub fn resolutions(&self) -> watch::Receiver<u64> {
        self.resolved.subscribe()
    }

    /// Asks for a reconciliation with the node (one asked while none
    /// waits is kept for the next wait).
    pub fn ask_reconciliation(&self) {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.reconcile.notify_one()
    }

    /// Read as a reconciliation begins; handed to [`Signals::levelled`]
    /// when it succeeds.
    pub fn reconciliations_asked(&self) -> u64 {
        self.asked.load(Ordering::SeqCst)
    }

    /// A reconciliation begun when [`Signals::reconciliations_asked`] said
    /// `asked` succeeded: the ledger was level with the node then.
    pub fn levelled(&self, asked: u64) {
        self.levelled.store(asked, Ordering::SeqCst);
    }

    /// Whether the ledger is level with the node, as far as reconciliation
    /// knows: reconciled, and nothing asked for since (notifications not
    /// yet recorded are the queue's to count).
    pub fn level(&self) -> bool {
        self.levelled.load(Ordering::SeqCst) == self.asked.load(Ordering::SeqCst)
    }

    /// The feed followed the node's deletes up to this `deleted` index.
    pub fn deletes_followed_to(&self, index: u64) {
        self.deletes_followed.store(index, Ordering::SeqCst);
    }

    pub fn deletes_followed(&self) -> u64 {
        self.deletes_followed.load(Ordering::SeqCst)
    }

    /// Resolves when a reconciliation is asked for.
    pub async fn reconciliation_asked(&self) {
        self.reconcile.notified().await
    }
}
