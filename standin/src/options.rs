//! What a stand-in node is started with, the faults it can be told to
//! inject, and the names lightningd keeps for itself.

use crate::listener;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Another plugin's `rpc_command` hook sees every call (xpay's, before
    /// v25.12) and that plugin exits on `shutdown`: at lightningd's stop,
    /// the first of the plugin's calls read after plugins are told is never
    /// answered (`shutdown_plugins` clears pending requests, and
    /// `destroy_plugin` fails none while lightningd shuts down).
    pub hook_that_exits_at_shutdown: bool,
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
            hook_that_exits_at_shutdown: false,
        }
    }
}

/// Faults injected under this name hit the next call of any method.
pub const ANY_METHOD: &str = "*";

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
