//! What the stand-in node holds while it runs: its tables, the plugin it
//! runs, the faults it injects, and what it saw (logs, calls, violations).

use crate::batching::{Batch, Commits, Turn};
use crate::node::Node;
use crate::options::{Fault, Options};
use crate::plugin::{LogLine, PluginProc};
use crate::schema::Schemas;
use crate::table::Key;
use crate::{listener, table, waits};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

pub const NODE_ID: &str = "038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b";
pub(crate) const RPC_FILE: &str = "lightning-rpc";

pub(crate) struct ActivePlugin {
    pub(crate) proc: Arc<PluginProc>,
    pub(crate) methods: Vec<String>,
    pub(crate) subscriptions: Vec<String>,
    /// `Some(filters)` if the plugin registered `rpc_command` (empty: all).
    pub(crate) hook_filters: Option<Vec<String>>,
    /// The manifest said `cancheck`: `check` of its methods is passed on.
    pub(crate) can_check: bool,
}

pub(crate) struct Core {
    /// The folder this node made (removed on drop); `dir` is below it.
    pub(crate) base: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) node: Mutex<Node>,
    pub(crate) plugin: Mutex<Option<Arc<ActivePlugin>>>,
    /// Resolutions, for the built-in `waitsendpay` waiting on a part.
    pub(crate) events: broadcast::Sender<(Key, Result<Value, Value>)>,
    /// Moves of the `sendpays` indexes, for pending `wait`s.
    pub(crate) index_moves: broadcast::Sender<table::IndexEvent>,
    pub(crate) commits: Arc<Commits>,
    pub(crate) seq: AtomicU64,
    pub(crate) schemas: Option<Schemas>,
    pub(crate) violations: Mutex<Vec<String>>,
    pub(crate) faults: Mutex<HashMap<String, Vec<Fault>>>,
    pub(crate) plugin_calls: Mutex<Vec<(String, Value)>>,
    pub(crate) logs: Arc<Mutex<Vec<LogLine>>>,
    pub(crate) sent: Arc<Mutex<Vec<Value>>>,
    pub(crate) gate: Arc<listener::Gate>,
}

impl Core {
    /// A built-in's work on the node, as one call (one transaction); the
    /// index moves it made are announced to pending `wait`s.
    pub(crate) fn node_call<T>(&self, f: impl FnOnce(&mut Node) -> T) -> T {
        self.node_call_in(None, f)
    }

    /// [`Core::node_call`] as part of a batch, if given (then let go).
    pub(crate) fn node_call_in<T>(
        &self,
        batch: Option<Arc<Batch>>,
        f: impl FnOnce(&mut Node) -> T,
    ) -> T {
        let out = {
            let mut n = self.node.lock().unwrap();
            let out = n.call(&self.commits, batch.is_some(), f);
            for e in n.table.events.drain(..) {
                let _ = self.index_moves.send(e);
            }
            out
        };
        // The last of a batch commits it, which takes the node's lock.
        drop(batch);
        out
    }

    /// Opens the shared transaction of one read on a batching connection.
    pub(crate) fn open_batch(self: &Arc<Self>) -> Arc<Batch> {
        let core = Arc::downgrade(self);
        Arc::new(Batch::open(self.commits.clone(), move |begin| {
            let Some(core) = core.upgrade() else { return };
            let n = core.node.lock().unwrap();
            if let Some(db) = &n.db {
                match begin {
                    true => db.begin(),
                    false => db.commit(),
                }
            }
        }))
    }

    pub(crate) async fn wait(&self, params: &Value, turn: Option<Turn>) -> Result<Value, Value> {
        let req = waits::parse(params)?;
        let rx = {
            let n = self.node.lock().unwrap();
            let now = n.table.index_value(req.index).unwrap_or(0);
            if now >= req.nextvalue {
                return Ok(waits::reached(req.index, now));
            }
            self.index_moves.subscribe()
        };
        drop(turn);
        let current = || {
            let n = self.node.lock().unwrap();
            n.table.index_value(req.index).unwrap_or(0)
        };
        Ok(waits::pending(&req, rx, current).await)
    }

    pub(crate) fn violation(&self, what: &str, errors: Vec<String>) {
        if !errors.is_empty() {
            self.violations
                .lock()
                .unwrap()
                .push(format!("{what}: {errors:?}"));
        }
    }

    pub(crate) fn check(&self, f: impl FnOnce(&Schemas) -> Vec<String>, what: &str) {
        if let Some(s) = &self.schemas {
            self.violation(what, f(s));
        }
    }

    pub(crate) fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.plugin
            .lock()
            .unwrap()
            .clone()
            .filter(|p| p.proc.is_alive())
    }

    pub(crate) async fn notify(&self, topic: &str, payload: &Value) {
        self.check(
            |s| s.notification(topic, payload),
            &format!("{topic} notification"),
        );
        if let Some(p) = self.active() {
            if p.subscriptions.iter().any(|s| s == topic || s == "*") {
                // Wrapped in an object named after the topic, as lightningd sends it.
                let _ = p.proc.notify(topic, json!({ topic: payload })).await;
            }
        }
    }
}
