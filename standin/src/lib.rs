//! A lightningd stand-in for paystate's end-to-end tests.
//!
//! It plays lightningd's part as `../shared/cln-fixtures` record it: spawns
//! the plugin and speaks the plugin protocol to it (`getmanifest`, `init`,
//! notifications, hooks, method calls), serves the JSON-RPC socket with the
//! built-in commands paystate uses (payments table, datastore), routes every
//! call to `waitsendpay`/`delpay` through the plugin's `rpc_command` hook,
//! and checks what passes against `../shared/cln-schemas`. With
//! `Options::sqlite` its datastore and payments table are kept in SQLite,
//! a commit per call, as lightningd keeps them (see `db`).

mod batching;
mod check;
pub mod client;
pub mod datastore;
pub mod db;
mod dispatch;
mod framing;
mod launch;
mod listener;
mod node;
mod options;
pub mod params;
pub mod plugin;
pub mod schema;
mod server;
mod state;
pub mod table;
mod waits;

pub use options::{shared_dir, Fault, Options, BUILTINS};
pub use plugin::STANDIN_VERSION;
pub use state::NODE_ID;
pub use table::{Failure as PartFailure, NewPart as PartSpec};

use anyhow::{Context, Result};
use client::Client;
use node::Node;
use plugin::LogLine;
use schema::Schemas;
use serde_json::{json, Value};
use state::{ActivePlugin, Core, RPC_FILE};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use table::{Failure, Key, NewPart};
use tokio::sync::broadcast;

/// The stand-in node. Dropping it kills the plugin and removes its folder.
pub struct Lightningd {
    core: Arc<Core>,
    /// The accepting end of the RPC socket (replaced by a restart).
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Lightningd {
    /// Starts the node (socket up) without the plugin.
    pub async fn new(opts: Options) -> Result<Lightningd> {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir().join(format!(
            "ld-standin-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        let dir = match opts.long_dir {
            true => base.join("a-lightning-dir-deep-enough-that-its-socket-path-does-not-fit-a-unix-socket-address/regtest"),
            false => base.clone(),
        };
        std::fs::create_dir_all(&dir)?;
        let schemas = shared_dir()
            .filter(|_| opts.check_schemas)
            .map(|d| Schemas::load(&d.join("cln-schemas")));
        let (events, _) = broadcast::channel(65536);
        let (index_moves, _) = broadcast::channel(65536);
        let db = opts
            .sqlite
            .then(|| db::Db::open(&dir.join("lightningd.sqlite3")))
            .transpose()?;
        let core = Arc::new(Core {
            base,
            dir,
            opts,
            node: Mutex::new(Node {
                db,
                ..Node::default()
            }),
            plugin: Mutex::default(),
            events,
            index_moves,
            commits: Arc::default(),
            seq: AtomicU64::new(50),
            schemas,
            violations: Mutex::default(),
            faults: Mutex::default(),
            plugin_calls: Mutex::default(),
            logs: Arc::default(),
            sent: Arc::default(),
            gate: Arc::default(),
        });
        let server = Mutex::new(Some(listen(&core)?));
        Ok(Lightningd { core, server })
    }

    /// Starts the node and the plugin (as `--plugin=` at start-up).
    pub async fn start(opts: Options) -> Result<Lightningd> {
        let ld = Lightningd::new(opts).await?;
        ld.start_plugin(true).await?;
        Ok(ld)
    }

    /// lightningd stopped and started again, its tables kept: see
    /// [`Lightningd::shut_down`] and [`Lightningd::start_up`].
    pub async fn restart(&self) -> Result<()> {
        self.shut_down().await;
        self.start_up(true).await
    }

    /// lightningd's stop (`lightningd/lightningd.c`): it stops listening
    /// on its socket, then tells the plugin `shutdown` (if subscribed) and
    /// waits for it to exit (30 s, then kills it). The tables stay, and
    /// the test's own hand may still change them.
    pub async fn shut_down(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(accepting) = server {
            accepting.abort();
            // Gone, listener and all: a connect is refused from here.
            let _ = accepting.await;
        }
        let hooked = self.core.opts.hook_that_exits_at_shutdown;
        if hooked {
            self.inject(options::ANY_METHOD, Fault::Stall, 1);
        }
        self.stop_plugin().await;
        if hooked {
            // That plugin is gone: the next run's calls are answered.
            self.core.faults.lock().unwrap().remove(options::ANY_METHOD);
        }
    }

    /// lightningd's start after [`Lightningd::shut_down`]: it listens
    /// again, with the plugin started as at start-up, or without it (a
    /// node run once without paystate).
    pub async fn start_up(&self, with_plugin: bool) -> Result<()> {
        *self.server.lock().unwrap() = Some(listen(&self.core)?);
        if with_plugin {
            self.start_plugin(true).await?;
        }
        Ok(())
    }

    /// Stops (false) or resumes (true) accepting connections on the RPC
    /// socket, as a lightningd busy in one long command does: connects
    /// queue, and past the listen queue fail with EAGAIN.
    pub fn accept_connections(&self, on: bool) {
        self.core.gate.accept(on);
    }

    /// Connections open on the RPC socket now, and the most at once.
    pub fn connections(&self) -> (u64, u64) {
        self.core.gate.open()
    }

    pub fn rpc_path(&self) -> PathBuf {
        self.core.dir.join(RPC_FILE)
    }

    pub fn dir(&self) -> &Path {
        &self.core.dir
    }

    pub fn schemas(&self) -> Option<&Schemas> {
        self.core.schemas.as_ref()
    }

    pub async fn client(&self) -> Result<Client> {
        Client::connect(&self.rpc_path(), "test").await
    }

    /// One call from a fresh client.
    pub async fn call(&self, method: &str, params: Value) -> Result<Result<Value, Value>> {
        self.client().await?.call(method, params).await
    }

    /// Spawns the plugin and runs `getmanifest` and `init` as lightningd
    /// does; `startup` is false for `plugin start` on a running node.
    pub async fn start_plugin(&self, startup: bool) -> Result<Value> {
        launch::start_plugin(&self.core, startup).await
    }

    fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.core.plugin.lock().unwrap().clone()
    }

    pub fn plugin_pid(&self) -> Option<u32> {
        self.active().map(|p| p.proc.pid)
    }

    /// `plugin stop` (`lightningd/plugin_control.c`): a plugin subscribed
    /// to `shutdown` is told and waited for (30 s), then killed; any other
    /// is killed at once.
    pub async fn stop_plugin(&self) {
        // Taken in a statement of its own: the lock must not be held
        // across the await (a scrutinee's guard lives through the block).
        let taken = self.core.plugin.lock().unwrap().take();
        if let Some(p) = taken {
            if p.subscriptions.iter().any(|s| s == "shutdown") {
                let _ = p.proc.notify("shutdown", json!({})).await;
                p.proc.wait_exit_or_kill(Duration::from_secs(30)).await;
            } else {
                p.proc.kill().await;
                p.proc.wait_exit().await;
            }
        }
    }

    /// SIGKILL, at once, whatever it is doing.
    pub async fn kill_plugin(&self) {
        let taken = self.core.plugin.lock().unwrap().take();
        if let Some(p) = taken {
            p.proc.kill().await;
            p.proc.wait_exit().await;
        }
    }

    /// What `sendpay` does to the table: a pending part. Returns its listing.
    pub fn create_part(&self, spec: NewPart) -> Value {
        self.create_parts([spec]).remove(0)
    }

    /// Many `sendpay`s in one transaction (to prepare a large table).
    pub fn create_parts(&self, specs: impl IntoIterator<Item = NewPart>) -> Vec<Value> {
        self.core.node_call(|n| {
            specs
                .into_iter()
                .map(|spec| {
                    let key = (spec.payment_hash.clone(), spec.groupid, spec.partid);
                    let listing = n.table.create(spec).expect("create_parts");
                    n.save_parts([&key]);
                    listing
                })
                .collect()
        })
    }

    /// Parts complete while no plugin hears of it (resolved while the
    /// plugin was away): table updated, no notification. Returns their
    /// listings.
    pub fn settle_quietly(&self, keys: &[Key], preimage: impl Fn(&Key) -> String) -> Vec<Value> {
        self.core.node_call(|n| {
            let listings = keys
                .iter()
                .map(|k| {
                    n.table
                        .succeed(k, &preimage(k), None)
                        .expect("settle_quietly")
                })
                .collect();
            n.save_parts(keys);
            listings
        })
    }

    /// The part completes: table updated, `sendpay_success` sent.
    pub async fn succeed(&self, key: &Key, preimage: &str) -> Value {
        let payload = self.core.node_call(|n| {
            let payload = n.table.succeed(key, preimage, None).expect("succeed");
            n.save_parts([key]);
            payload
        });
        let _ = self.core.events.send((key.clone(), Ok(payload.clone())));
        self.core.notify("sendpay_success", &payload).await;
        payload
    }

    /// The part fails: table updated, `sendpay_failure` sent (with the
    /// payload shape of a real lightningd: `data.status: "pending"`).
    /// `None` stores no reason (as a very old database would) and sends
    /// no notification.
    pub async fn fail(&self, key: &Key, failure: Option<Failure>) -> Option<Value> {
        let payload = self.core.node_call(|n| {
            let payload = n.table.fail(key, failure).expect("fail");
            n.save_parts([key]);
            payload
        });
        let answer = match &payload {
            Some(p) => p.clone(),
            None => json!({"code": 209, "message": "Payment failure reason unknown"}),
        };
        let _ = self.core.events.send((key.clone(), Err(answer)));
        if let Some(p) = &payload {
            self.core.notify("sendpay_failure", p).await;
        }
        payload
    }

    /// Sends a raw notification to the plugin (for malformed payloads).
    pub async fn notify_raw(&self, topic: &str, params: Value) {
        if let Some(p) = self.active() {
            let _ = p.proc.notify(topic, params).await;
        }
    }

    pub fn part(&self, key: &Key) -> Option<table::Part> {
        self.core.node.lock().unwrap().table.get(key).cloned()
    }

    pub fn parts(&self) -> Vec<table::Part> {
        self.core
            .node
            .lock()
            .unwrap()
            .table
            .parts
            .values()
            .cloned()
            .collect()
    }

    pub fn datastore(&self) -> datastore::Datastore {
        self.core.node.lock().unwrap().datastore.clone()
    }

    /// Writes a datastore entry directly (to prepare a large ledger).
    pub fn seed_datastore(&self, key: Vec<String>, value: &[u8]) {
        self.seed_datastore_many([(key, value.to_vec())]);
    }

    /// Writes datastore entries directly, in one transaction.
    pub fn seed_datastore_many(&self, entries: impl IntoIterator<Item = (Vec<String>, Vec<u8>)>) {
        self.core.node_call(|n| {
            for (key, value) in entries {
                let record = datastore::Record {
                    generation: 0,
                    data: value,
                };
                if let Some(db) = &n.db {
                    db.put_entry(&key, &record);
                }
                n.datastore.entries.insert(key, record);
            }
        })
    }

    /// Database transactions committed so far: one per call, one per read
    /// of a batching connection, one per hooked command.
    pub fn commits(&self) -> u64 {
        self.core.commits.count()
    }

    /// Rows in the database's `datastore` and `payments` tables (with
    /// `Options::sqlite`).
    pub fn db_rows(&self) -> Option<(u64, u64)> {
        let node = self.core.node.lock().unwrap();
        let db = node.db.as_ref()?;
        Some((db.count("datastore"), db.count("payments")))
    }

    /// Bytes of the database's `datastore` table with its index (sqlite's
    /// `dbstat`, with `Options::sqlite`).
    pub fn datastore_bytes(&self) -> Option<u64> {
        let node = self.core.node.lock().unwrap();
        Some(node.db.as_ref()?.table_bytes("datastore"))
    }

    /// Makes the next `times` calls to `method` fail with `fault`.
    pub fn inject(&self, method: &str, fault: Fault, times: usize) {
        let mut f = self.core.faults.lock().unwrap();
        let list = f.entry(method.to_string()).or_default();
        list.extend(std::iter::repeat_n(fault, times));
    }

    pub fn clear_faults(&self) {
        self.core.faults.lock().unwrap().clear();
    }

    /// Calls the plugin made on the socket, `(method, params)`, in order.
    pub fn plugin_calls(&self) -> Vec<(String, Value)> {
        self.core.plugin_calls.lock().unwrap().clone()
    }

    /// Every message sent to the plugin (all runs), in order.
    pub fn sent_to_plugin(&self) -> Vec<Value> {
        self.core.sent.lock().unwrap().clone()
    }

    pub fn logs(&self) -> Vec<LogLine> {
        self.core.logs.lock().unwrap().clone()
    }

    /// Schema violations seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.core.violations.lock().unwrap().clone()
    }

    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "schema violations: {v:#?}");
    }
}

/// Binds the RPC socket where its path fits, moves it into place (a
/// socket works under any name once bound, as lightningd's does), and
/// serves it.
fn listen(core: &Arc<Core>) -> Result<tokio::task::JoinHandle<()>> {
    let short = core.base.join("s");
    let _ = std::fs::remove_file(&short);
    let listener = listener::bind(&short, core.opts.listen_backlog)?;
    std::fs::rename(&short, core.dir.join(RPC_FILE)).context("placing the RPC socket")?;
    let c = core.clone();
    Ok(tokio::spawn(async move {
        while let Ok((stream, counted)) = listener::accept(&listener, &c.gate).await {
            let c = c.clone();
            tokio::spawn(async move {
                server::serve(c, stream).await;
                drop(counted);
            });
        }
    }))
}

impl Drop for Lightningd {
    fn drop(&mut self) {
        if let Some(accepting) = self.server.lock().unwrap().take() {
            accepting.abort();
        }
        // kill_on_drop kills the plugin once the last handle goes.
        let taken = self.core.plugin.lock().unwrap().take();
        drop(taken);
        let _ = std::fs::remove_dir_all(&self.core.base);
    }
}
