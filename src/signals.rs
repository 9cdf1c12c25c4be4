//! What one task tells the others, beside the ledger: deletes from the
//! node's table (for imports), reconciliations asked for (for catch-up),
//! and parts resolved (for `paystate-waitanysendpay`).

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{watch, Notify};

#[derive(Default)]
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
        self.reconcile.notify_one()
    }

    /// Resolves when a reconciliation is asked for.
    pub async fn reconciliation_asked(&self) {
        self.reconcile.notified().await
    }
}
