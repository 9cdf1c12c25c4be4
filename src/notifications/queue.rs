//! The notifications in lightningd's order, queued as cln-plugin reads
//! them and taken by one task.
//!
//! cln-plugin spawns a task per notification, and tasks may run in any
//! order; the queue's push runs in its callback, before the spawn.

use super::{record, resolve, Topic};
use crate::app::App;
use crate::node::Node;
use crate::store::Datastore;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Notifications queued at most (a few KB each): while a migration or the
/// index load runs nothing takes them, and a node paying fast must not
/// grow paystate without bound. One left out is a part the ledger lacks,
/// which the reconciliation this asks for imports (answers read the node
/// meanwhile).
pub const QUEUED_NOTIFICATIONS: usize = 10_000;

/// Where notifications go in.
pub struct Queue {
    tx: mpsc::Sender<(Topic, Value)>,
    /// Notifications left out because the queue was full.
    overflowed: Arc<AtomicU64>,
    /// Notifications pushed and not yet recorded (queued, or their record
    /// being written).
    unrecorded: Arc<AtomicU64>,
}

/// Where they come out, once the ledger is there to take them.
pub struct Queued {
    rx: mpsc::Receiver<(Topic, Value)>,
    overflowed: Arc<AtomicU64>,
    unrecorded: Arc<AtomicU64>,
}

pub fn queue(capacity: usize) -> (Queue, Queued) {
    let (tx, rx) = mpsc::channel(capacity);
    let overflowed = Arc::new(AtomicU64::new(0));
    let unrecorded = Arc::new(AtomicU64::new(0));
    (
        Queue {
            tx,
            overflowed: overflowed.clone(),
            unrecorded: unrecorded.clone(),
        },
        Queued {
            rx,
            overflowed,
            unrecorded,
        },
    )
}

impl Queue {
    /// Never waits: a full queue leaves the notification out (logged once
    /// per overflow), and its taker asks for a reconciliation.
    pub fn push(&self, topic: Topic, params: Value) {
        self.unrecorded.fetch_add(1, Ordering::SeqCst);
        let sent = self.tx.try_send((topic, params));
        if sent.is_err() {
            self.unrecorded.fetch_sub(1, Ordering::SeqCst);
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = sent {
            if self.overflowed.fetch_add(1, Ordering::Relaxed) == 0 {
                log::warn!(
                    "{} notifications queued while the ledger loads: \
                     leaving the next ones to a reconciliation",
                    self.tx.max_capacity()
                );
            }
        }
    }
}

impl Queue {
    /// Whether every notification pushed is recorded (or was left out,
    /// which asked for a reconciliation).
    pub fn all_recorded(&self) -> bool {
        self.unrecorded.load(Ordering::SeqCst) == 0
    }
}

impl Queued {
    /// Takes the notifications in order: each part's waiters answered in
    /// turn (never awaiting), each record written by a task of its own (a
    /// record may wait for its shard to load; the next waiters do not wait
    /// for it).
    pub async fn run<D: Datastore, N: Node>(mut self, app: Arc<App<D, N>>) {
        while let Some((topic, params)) = self.rx.recv().await {
            let left_out = self.overflowed.swap(0, Ordering::Relaxed);
            if left_out > 0 {
                log::info!("{left_out} notifications were left out of a full queue; reconciling");
                app.signals.ask_reconciliation();
            }
            match resolve(&app, topic, &params) {
                Some(part) => {
                    let app = app.clone();
                    let unrecorded = self.unrecorded.clone();
                    tokio::spawn(async move {
                        record(&app, topic, part, &params).await;
                        unrecorded.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                None => {
                    self.unrecorded.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}
