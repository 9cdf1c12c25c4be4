//! The callers waiting for a part to become terminal.

use super::State;
use crate::domain::{Answer, PartKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The waiters of one part, each with its id (for unregistering).
type List = Vec<(u64, oneshot::Sender<Arc<Answer>>)>;

#[derive(Default)]
pub(super) struct Waiters {
    map: HashMap<PartKey, List>,
    pub count: usize,
    next: u64,
}

impl Waiters {
    /// Registers a waiter; `state` is where it unregisters itself from.
    pub fn add(&mut self, key: PartKey, state: Arc<Mutex<State>>) -> Waiter {
        let (tx, rx) = oneshot::channel();
        let id = self.next;
        self.next += 1;
        self.map.entry(key).or_default().push((id, tx));
        self.count += 1;
        Waiter { rx, key, id, state }
    }

    fn remove(&mut self, key: &PartKey, id: u64) {
        if let Some(list) = self.map.get_mut(key) {
            let before = list.len();
            list.retain(|(i, _)| *i != id);
            self.count -= before - list.len();
            if list.is_empty() {
                self.map.remove(key);
            }
        }
    }

    /// Answers a part's waiters, if any (the answer is made only then), and
    /// returns how many.
    pub fn deliver(&mut self, key: &PartKey, answer: impl FnOnce() -> Answer) -> usize {
        let Some(list) = self.map.remove(key) else {
            return 0;
        };
        self.count -= list.len();
        let answer = Arc::new(answer());
        let woken = list.len();
        for (_, tx) in list {
            let _ = tx.send(answer.clone());
        }
        woken
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
        // As the ledger does: a panic elsewhere must not leave this waiter
        // registered for good.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.waiters.remove(&self.key, self.id);
    }
}
