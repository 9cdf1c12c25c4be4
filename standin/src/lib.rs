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
mod dispatch;
mod framing;
mod server;
use framing::raw_params;
pub use plugin::STANDIN_VERSION;
use server::serve;
pub mod client;
pub mod datastore;
pub mod db;
mod listener;
pub mod params;
pub mod plugin;
pub mod schema;
pub mod table;
mod waits;

use anyhow::{anyhow, bail, Context, Result};
use batching::{Batch, Commits, Order, Turn};
use client::Client;
use plugin::{LogLine, PluginProc};
use schema::Schemas;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use table::{Failure, Key, NewPart, Status, Wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast;

pub use table::{Failure as PartFailure, NewPart as PartSpec};

/// Commands lightningd has built in: a plugin method of one of these names
/// crashes lightningd v26.06 (`name-clash.json`).
pub const BUILTINS: &[&str] = &[
    "getinfo",
    "listsendpays",
    "waitsendpay",
    "delpay",
    "sendpay",
    "datastore",
    "listdatastore",
    "deldatastore",
    "datastoreusage",
    "listpays",
    "pay",
    "plugin",
    "stop",
    "help",
    "wait",
    "check",
];

/// The folder beside the repository holding the official schemas and the
/// recorded exchanges, if this checkout has one.
pub fn shared_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    d.join("cln-fixtures")
        .is_dir()
        .then(|| d.canonicalize().unwrap_or(d))
}

#[derive(Debug, Clone)]
pub struct Options {
    pub plugin: PathBuf,
    /// Values for the plugin's options (others get their defaults).
    pub plugin_options: Map<String, Value>,
    /// lightningd before v25.12 ignores hook `filters` and sends every command.
    pub ignore_hook_filters: bool,
    /// Environment for the plugin process.
    pub env: Vec<(String, String)>,
    /// Validate traffic against `../shared/cln-schemas` (off for benchmarks,
    /// whose figures are paystate's cost, not the validator's).
    pub check_schemas: bool,
    /// lightningd's `--developer`: bad parameters' tokens are quoted in
    /// errors, and plugins are started with `--developer`. Off, as
    /// operators run it, errors say `invalid token (see logs for details)`.
    pub developer: bool,
    /// A lightning-dir whose socket path is longer than a socket address
    /// holds (108 bytes), as deep home directories and test suites have.
    pub long_dir: bool,
    /// Keep the datastore and payments table in SQLite, every call one
    /// committed transaction, as lightningd does: slower, and what
    /// benchmarks need to price writes and reads as a real node does.
    pub sqlite: bool,
    /// The RPC socket's listen queue: lightningd's 128 by default.
    pub listen_backlog: i32,
}

impl Options {
    pub fn new(plugin: impl Into<PathBuf>) -> Options {
        Options {
            plugin: plugin.into(),
            plugin_options: Map::new(),
            ignore_hook_filters: false,
            env: vec![],
            check_schemas: true,
            developer: true,
            long_dir: false,
            sqlite: false,
            listen_backlog: listener::BACKLOG,
        }
    }
}

/// A fault to inject in a built-in command the plugin calls.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this error instead.
    Error(i64, String),
    /// Close the connection without answering.
    Hangup,
    /// Never answer (the caller hangs until it gives up or dies).
    Stall,
    /// Answer with this result instead (a field a later release adds or
    /// changes).
    Answer(Value),
    /// Answer once the test adds a permit (a node busy elsewhere, for as
    /// long as the test needs).
    Gate(Arc<tokio::sync::Semaphore>),
}

struct ActivePlugin {
    proc: Arc<PluginProc>,
    methods: Vec<String>,
    subscriptions: Vec<String>,
    /// `Some(filters)` if the plugin registered `rpc_command` (empty: all).
    hook_filters: Option<Vec<String>>,
    /// The manifest said `cancheck`: `check` of its methods is passed on.
    can_check: bool,
}

#[derive(Default)]
struct Node {
    table: table::Table,
    datastore: datastore::Datastore,
    db: Option<db::Db>,
}

impl Node {
    /// One call's work: in the open batch's transaction (`batched`), or
    /// in one of its own (with `sqlite`, a real one), counted.
    fn call<T>(&mut self, commits: &Commits, batched: bool, f: impl FnOnce(&mut Node) -> T) -> T {
        if batched {
            return f(self);
        }
        commits.single();
        // A batch is open: its transaction is the one open (lightningd
        // serves one read at a time, the stand-in's tasks interleave).
        let own = !batching::in_batch(commits);
        if let Some(db) = self.db.as_ref().filter(|_| own) {
            db.begin();
        }
        let out = f(self);
        if let Some(db) = self.db.as_ref().filter(|_| own) {
            db.commit();
        }
        out
    }

    /// Writes the rows of these parts as the table now has them.
    fn save_parts<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        if let Some(db) = &self.db {
            for key in keys {
                db.put_part(key, self.table.get(key));
            }
        }
    }

    fn datastore_call(&mut self, method: &str, params: &Value) -> Result<Value, params::Fail> {
        let (ds, db) = (&mut self.datastore, self.db.as_ref());
        match method {
            "datastore" => ds.datastore(params, db),
            "listdatastore" => ds.listdatastore(params, db),
            "deldatastore" => ds.deldatastore(params, db),
            _ => ds.datastoreusage(params),
        }
    }
}

struct Core {
    /// The folder this node made (removed on drop); `dir` is below it.
    base: PathBuf,
    dir: PathBuf,
    opts: Options,
    node: Mutex<Node>,
    plugin: Mutex<Option<Arc<ActivePlugin>>>,
    /// Resolutions, for the built-in `waitsendpay` waiting on a part.
    events: broadcast::Sender<(Key, Result<Value, Value>)>,
    /// Moves of the `sendpays` indexes, for pending `wait`s.
    index_moves: broadcast::Sender<table::IndexEvent>,
    commits: Arc<Commits>,
    seq: AtomicU64,
    schemas: Option<Schemas>,
    violations: Mutex<Vec<String>>,
    faults: Mutex<HashMap<String, Vec<Fault>>>,
    plugin_calls: Mutex<Vec<(String, Value)>>,
    logs: Arc<Mutex<Vec<LogLine>>>,
    sent: Arc<Mutex<Vec<Value>>>,
    gate: Arc<listener::Gate>,
}

/// The stand-in node. Dropping it kills the plugin and removes its folder.
pub struct Lightningd {
    core: Arc<Core>,
    server: tokio::task::JoinHandle<()>,
}

pub const NODE_ID: &str = "038194b5f32bdf0aa59812c86c4ef7ad2f294104fa027d1ace9b469bb6f88cf37b";
const RPC_FILE: &str = "lightning-rpc";
/// Plugin ids (`paystate-internal:N`) mark calls the plugin makes.
const PLUGIN_ID_PREFIX: &str = "paystate-internal:";

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

enum Reply {
    Answer(Result<Value, Value>),
    Hangup,
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
        // Bound where the path fits, then moved into place: a socket
        // works under any name once bound, as lightningd's does.
        let short = base.join("s");
        let listener = listener::bind(&short, opts.listen_backlog)?;
        std::fs::rename(&short, dir.join(RPC_FILE)).context("placing the RPC socket")?;
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
        let c = core.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, counted)) = listener::accept(&listener, &c.gate).await {
                let c = c.clone();
                tokio::spawn(async move {
                    serve(c, stream).await;
                    drop(counted);
                });
            }
        });
        Ok(Lightningd { core, server })
    }

    /// Starts the node and the plugin (as `--plugin=` at start-up).
    pub async fn start(opts: Options) -> Result<Lightningd> {
        let ld = Lightningd::new(opts).await?;
        ld.start_plugin(true).await?;
        Ok(ld)
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
        let core = &self.core;
        if core
            .plugin
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|p| p.proc.is_alive())
        {
            bail!("plugin already running");
        }
        let proc = PluginProc::spawn(
            &core.opts.plugin,
            &core.dir,
            core.opts.developer,
            &core.opts.env,
            core.logs.clone(),
            core.sent.clone(),
        )?;
        let seq = core.seq.fetch_add(1, Ordering::Relaxed);
        let resp = tokio::time::timeout(
            Duration::from_secs(30),
            proc.request(
                &format!("cln:getmanifest#{seq}"),
                "getmanifest",
                json!({"allow-deprecated-apis": false}),
            ),
        )
        .await
        .context("getmanifest timed out")??;
        let manifest = resp
            .get("result")
            .cloned()
            .ok_or_else(|| anyhow!("getmanifest failed: {resp}"))?;
        let methods: Vec<String> = manifest["rpcmethods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect();
        if let Some(clash) = methods.iter().find(|m| BUILTINS.contains(&m.as_str())) {
            proc.kill().await;
            bail!("plugin registered the built-in name {clash}: lightningd v26.06 crashes (name-clash.json)");
        }
        let subscriptions = manifest["subscriptions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        let hook_filters = manifest["hooks"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|h| {
                (h["name"] == "rpc_command").then(|| {
                    h["filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
            });
        let mut options = Map::new();
        for o in manifest["options"].as_array().into_iter().flatten() {
            let Some(name) = o["name"].as_str() else {
                continue;
            };
            match (core.opts.plugin_options.get(name), o.get("default")) {
                (Some(v), _) => options.insert(name.into(), v.clone()),
                (None, Some(d)) => options.insert(name.into(), d.clone()),
                (None, None) => None,
            };
        }
        // Hooks are live from the manifest on: a hooked call the plugin
        // makes before answering init would wait on the plugin itself.
        let active = Arc::new(ActivePlugin {
            proc: proc.clone(),
            methods,
            subscriptions,
            hook_filters,
            can_check: manifest["cancheck"].as_bool().unwrap_or(false),
        });
        *core.plugin.lock().unwrap() = Some(active);
        let seq = core.seq.fetch_add(1, Ordering::Relaxed);
        let init = json!({
            "options": options,
            "configuration": {
                "lightning-dir": core.dir.to_string_lossy(),
                "rpc-file": RPC_FILE,
                "startup": startup,
                "network": "regtest",
                "feature_set": {"init": "800898880a8a59a1", "node": "808898880a8a59a1", "channel": "",
                    "invoice": "02000002024100", "bolt12_offer": "", "bolt12_invreq": "",
                    "bolt12_invoice": "020000", "channel_type": "08800000800000"}
            }
        });
        let resp = tokio::time::timeout(
            Duration::from_secs(60),
            proc.request(&format!("cln:init#{seq}"), "init", init),
        )
        .await
        .context("init timed out")??;
        if resp.get("result").and_then(|r| r.get("disable")).is_some()
            || resp.get("error").is_some()
        {
            *core.plugin.lock().unwrap() = None;
            proc.stop(Duration::from_secs(5)).await;
            bail!("plugin disabled itself: {resp}");
        }
        Ok(manifest)
    }

    fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.core.plugin.lock().unwrap().clone()
    }

    pub fn plugin_pid(&self) -> Option<u32> {
        self.active().map(|p| p.proc.pid)
    }

    /// `plugin stop`: closes its stdin and waits for it to exit.
    pub async fn stop_plugin(&self) {
        // Taken in a statement of its own: the lock must not be held
        // across the await (a scrutinee's guard lives through the block).
        let taken = self.core.plugin.lock().unwrap().take();
        if let Some(p) = taken {
            p.proc.stop(Duration::from_secs(10)).await;
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
    pub fn seed_datastore(&self, key: Vec<String>, value: &str) {
        self.seed_datastore_many([(key, value.to_string())]);
    }

    /// Writes datastore entries directly, in one transaction.
    pub fn seed_datastore_many(&self, entries: impl IntoIterator<Item = (Vec<String>, String)>) {
        self.core.node_call(|n| {
            for (key, value) in entries {
                let record = datastore::Record {
                    generation: 0,
                    data: value.into_bytes(),
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

impl Drop for Lightningd {
    fn drop(&mut self) {
        self.server.abort();
        // kill_on_drop kills the plugin once the last handle goes.
        let taken = self.core.plugin.lock().unwrap().take();
        drop(taken);
        let _ = std::fs::remove_dir_all(&self.core.base);
    }
}

impl Core {
    /// A built-in's work on the node, as one call (one transaction); the
    /// index moves it made are announced to pending `wait`s.
    fn node_call<T>(&self, f: impl FnOnce(&mut Node) -> T) -> T {
        self.node_call_in(None, f)
    }

    /// [`Core::node_call`] as part of a batch, if given (then let go).
    fn node_call_in<T>(&self, batch: Option<Arc<Batch>>, f: impl FnOnce(&mut Node) -> T) -> T {
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
    fn open_batch(self: &Arc<Self>) -> Arc<Batch> {
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

    async fn wait(&self, params: &Value, turn: Option<Turn>) -> Result<Value, Value> {
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

    fn violation(&self, what: &str, errors: Vec<String>) {
        if !errors.is_empty() {
            self.violations
                .lock()
                .unwrap()
                .push(format!("{what}: {errors:?}"));
        }
    }

    fn check(&self, f: impl FnOnce(&Schemas) -> Vec<String>, what: &str) {
        if let Some(s) = &self.schemas {
            self.violation(what, f(s));
        }
    }

    fn active(&self) -> Option<Arc<ActivePlugin>> {
        self.plugin
            .lock()
            .unwrap()
            .clone()
            .filter(|p| p.proc.is_alive())
    }

    async fn notify(&self, topic: &str, payload: &Value) {
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
