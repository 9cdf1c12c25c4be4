//! What every handler shares: the ledger, the node, the signals between
//! tasks, the options, and the last catch-up's report.

use crate::calls::CallStats;
use crate::error::RpcError;
use crate::ledger::Ledger;
use crate::node::Node;
use crate::params::Mode;
use crate::signals::Signals;
use crate::store::{self, Datastore};
use serde::Serialize;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CatchupReport {
    /// `pending` (not started), `running`, `done` or `failed`.
    pub state: &'static str,
    /// Parts moved from an earlier datastore layout.
    pub migrated: usize,
    pub deletes_finished: usize,
    /// Parts the ledger held and the node no longer had, dropped by
    /// reconciliation.
    pub dropped: usize,
    /// Parts read by the whole-table pass.
    pub checked: usize,
    pub imported: usize,
    /// Whether the start skipped the pass over the node's table: the
    /// level mark ([`crate::level`]) showed nothing changed.
    pub pass_skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct App<D, N> {
    pub ledger: Ledger<D>,
    pub node: N,
    /// What the tasks tell each other (deletes seen, reconciliations asked
    /// for, parts resolved).
    pub signals: Signals,
    /// Whether the built-in names are answered (takeover asked for, and
    /// the hook declared).
    pub takeover: bool,
    /// Whether the `rpc_command` hook is declared (a release with hook
    /// `filters`).
    pub hook: bool,
    /// The release paystate runs in, as lightningd names it.
    pub release: Option<String>,
    /// How parameter errors show their token (lightningd's mode).
    pub mode: Mode,
    pub catchup: Mutex<CatchupReport>,
    /// The slowest call made to lightningd, where the node port tells.
    pub calls: Arc<CallStats>,
}

impl<D: Datastore, N: Node> App<D, N> {
    /// The pages of records the node's parts can have: every part's
    /// `created_index` is at most the node's.
    pub async fn record_pages(&self) -> Result<u64, RpcError> {
        Ok(self.node.parts_created().await? / store::PAGE + 1)
    }

    /// The whole index, loaded now unless it is already (for what reads
    /// every part the ledger holds; start-up's load is paced).
    pub async fn load_index(&self) -> Result<(), RpcError> {
        if self.ledger.loaded() {
            return Ok(());
        }
        self.ledger.load_all(self.record_pages().await?).await
    }

    pub fn new(ledger: Ledger<D>, node: N, takeover: bool, mode: Mode) -> Self {
        App {
            ledger,
            node,
            signals: Signals::default(),
            takeover,
            hook: true,
            release: None,
            mode,
            catchup: Mutex::new(CatchupReport {
                state: "pending",
                ..Default::default()
            }),
            calls: Arc::default(),
        }
    }

    pub fn catchup_report(&self) -> CatchupReport {
        self.catchup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn update_catchup(&self, f: impl FnOnce(&mut CatchupReport)) {
        f(&mut self.catchup.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
