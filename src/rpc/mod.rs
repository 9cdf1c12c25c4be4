//! paystate's client for lightningd's JSON-RPC socket: single calls on
//! pooled connections, and batches ([`batch`]). [`ports`] makes it the
//! ledger's [`Datastore`](crate::store::Datastore) and the
//! [`Node`](crate::node::Node).
//!
//! cln-rpc's client numbers its requests itself; paystate needs ids of its
//! own (`paystate-internal:N`) so that its calls to the built-in
//! `waitsendpay`, which come back through its own `rpc_command` hook, can
//! be recognized there and let through.

mod again;
mod batch;
mod created;
pub mod deletes;
mod ports;
mod waits;

pub use crate::calls::{CallStats, INTERNAL_ID_PREFIX};

use crate::error::RpcError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 16;

/// Calls in flight at once (and so connections open): thousands of
/// concurrent waiters must not open thousands of sockets.
const MAX_IN_FLIGHT: usize = 64;

/// One connection to lightningd's socket, with what was read past the
/// last answer.
pub struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// How long a connect keeps trying while lightningd's listen queue is
/// full, and the longest pause between two tries.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);
const CONNECT_PAUSE_MAX: Duration = Duration::from_millis(50);

impl Conn {
    /// A new connection. A full listen queue (EAGAIN: lightningd busy, many
    /// connecting at once) is back-pressure, not a failure: the connect is
    /// tried again, paused a little longer each time, for a bounded while.
    pub async fn open(path: &Path) -> Result<Conn, RpcError> {
        let began = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match UnixStream::connect(path).await {
                Ok(stream) => {
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                    })
                }
                Err(e) if busy(&e) && began.elapsed() < CONNECT_PATIENCE => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(CONNECT_PAUSE_MAX);
                }
                Err(e) => return Err(transport(e)),
            }
        }
    }

    /// Writes requests, already framed.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), RpcError> {
        self.stream.write_all(bytes).await.map_err(transport)
    }

    /// The next answer, decoded.
    pub async fn answer<R: DeserializeOwned>(&mut self) -> Result<Envelope<R>, RpcError> {
        let frame = read_frame(self).await?;
        serde_json::from_slice(&frame)
            .map_err(|e| RpcError::lightningd(format!("lightningd's answer is unreadable: {e}")))
    }
}

/// One request, framed as lightningd reads them.
pub fn request(id: &str, method: &str, params: &Value) -> Vec<u8> {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut bytes = serde_json::to_vec(&request).expect("a request serializes");
    bytes.extend_from_slice(b"\n\n");
    bytes
}

pub struct Rpc {
    pub stats: std::sync::Arc<CallStats>,
    path: PathBuf,
    pool: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
    in_flight: tokio::sync::Semaphore,
    /// The connection batches go on (`batching` enabled), one batch at a time.
    batches: tokio::sync::Mutex<Option<Conn>>,
    /// One watch of the `created` index for every waiting caller.
    created: created::CreatedWatch,
    /// Set as lightningd stops: until then, an unanswered call is asked
    /// again ([`again`]).
    stopping: std::sync::OnceLock<tokio::time::Instant>,
}

/// The longest path a Unix socket address holds (`sun_path`, with its NUL).
const SUN_PATH_MAX: usize = 107;

/// The path to connect to for lightningd's `rpc-file`. lightningd starts a
/// plugin in its lightning-dir and passes `rpc-file` as configured
/// (`lightning-rpc`, relative, by default) precisely so that a deep
/// lightning-dir, whose absolute socket path would not fit a socket
/// address, still works: a relative path is used as given. An absolute one
/// that does not fit is reached from its own directory, which becomes the
/// working directory (paystate opens no other relative path).
pub fn socket_path(rpc_file: &Path) -> std::io::Result<PathBuf> {
    let fits = rpc_file.as_os_str().len() <= SUN_PATH_MAX;
    match (rpc_file.parent(), rpc_file.file_name()) {
        (Some(dir), Some(name)) if rpc_file.is_absolute() && !fits => {
            std::env::set_current_dir(dir)?;
            Ok(PathBuf::from(name))
        }
        _ => Ok(rpc_file.to_path_buf()),
    }
}

/// How long paystate waits for an answer that comes at once by design
/// (none of its calls waits on the node, but the `wait`s of its feeds): a
/// node stalled past it slows paystate, and the call fails with an error
/// naming it; a node merely slow (PostgreSQL during autoclean has been
/// seen at 30 s a call) is waited for. `PAYSTATE_ANSWER_TIMEOUT_MS` sets it
/// for tests.
pub fn answer_patience() -> Duration {
    static PATIENCE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *PATIENCE.get_or_init(|| {
        std::env::var("PAYSTATE_ANSWER_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(120))
    })
}

/// `exchange`, bounded by [`answer_patience`].
pub(crate) async fn patient<T>(
    what: &str,
    exchange: impl std::future::Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    let patience = answer_patience();
    tokio::time::timeout(patience, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(transport(format!(
                "no answer to {what} within {} s",
                patience.as_secs_f64()
            )))
        })
}

/// lightningd's listen queue is full (a Unix socket's EAGAIN on connect).
fn busy(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

fn transport(e: impl std::fmt::Display) -> RpcError {
    RpcError::lightningd(format!("Connection to lightningd failed: {e}"))
}

impl Rpc {
    /// Whether lightningd accepts new connections on its socket: it stops
    /// listening as it begins to shut down (`lightningd/lightningd.c`,
    /// before plugins are told), and listens on through a `plugin stop`.
    pub async fn accepting(&self) -> bool {
        match tokio::net::UnixStream::connect(&self.path).await {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::ConnectionRefused,
        }
    }

    pub fn new(path: PathBuf) -> Self {
        Rpc {
            stats: Default::default(),
            path,
            pool: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            batches: tokio::sync::Mutex::new(None),
            created: Default::default(),
            stopping: std::sync::OnceLock::new(),
        }
    }

    /// lightningd is stopping: from now on a single call left unanswered
    /// is asked again, up to `deadline` ([`again`]).
    pub fn ask_again_until(&self, deadline: tokio::time::Instant) {
        let _ = self.stopping.set(deadline);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh id for one of paystate's requests.
    pub fn next_id(&self) -> String {
        format!(
            "{INTERNAL_ID_PREFIX}{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// One call: the inner result is lightningd's answer, the outer error a
    /// failure to get one. The answer is decoded straight into `R`, so a
    /// large one (a whole datastore listing) never exists as a `Value` tree.
    pub async fn call_as<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<R, RpcError>, RpcError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| RpcError::lightningd("RPC client closed"))?;
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => Conn::open(&self.path).await?,
        };
        let sent = std::time::Instant::now();
        let (frame, id) = match self.stopping.get() {
            // A connection may carry an ask given up on: answers to it are
            // passed over.
            Some(&deadline) => {
                let again = again::may_ask_again(method, &params);
                let frame = again::exchange(&mut conn, method, &params, deadline, again, || {
                    self.next_id()
                })
                .await?;
                (frame, None)
            }
            // Every call here is answered at once by design (a `wait` for
            // 0, a `waitsendpay` poll): one that is not is a stalled node,
            // and the connection, in an unknown state, is dropped with the
            // error.
            None => {
                let id = self.next_id();
                let frame = patient(method, async {
                    conn.send(&request(&id, method, &params)).await?;
                    read_frame(&mut conn).await
                })
                .await?;
                (frame, Some(id))
            }
        };
        // A waitsendpay or wait may wait by design; the others are work.
        if method != "waitsendpay" && method != "wait" {
            self.stats.record(method, sent.elapsed());
        }
        {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
        }
        let envelope: Envelope<R> = serde_json::from_slice(&frame).map_err(|e| {
            RpcError::lightningd(format!(
                "lightningd's answer to {method} is unreadable: {e}"
            ))
        })?;
        // While lightningd stops, `again` matched the answer to its ids.
        if id.is_some_and(|id| envelope.id.as_str() != Some(id.as_str())) {
            return Err(RpcError::lightningd(format!(
                "lightningd answered {method} with a foreign id: {}",
                envelope.id
            )));
        }
        envelope.outcome(method)
    }

    pub async fn call_raw(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, RpcError>, RpcError> {
        self.call_as(method, params).await
    }

    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_raw(method, params).await?
    }
}

/// An answer: its id, and its result or error.
#[derive(Deserialize)]
pub struct Envelope<R> {
    #[serde(default)]
    pub id: Value,
    result: Option<R>,
    error: Option<Value>,
}

impl<R> Envelope<R> {
    /// The inner result is lightningd's answer, the outer error an answer
    /// that is neither.
    pub fn outcome(self, method: &str) -> Result<Result<R, RpcError>, RpcError> {
        match (self.result, self.error) {
            (Some(result), _) => Ok(Ok(result)),
            (None, Some(err)) => Ok(Err(serde_json::from_value(err.clone()).unwrap_or_else(
                |_| {
                    RpcError::lightningd(format!(
                        "lightningd answered {method} with a malformed error: {err}"
                    ))
                },
            ))),
            (None, None) => Err(RpcError::lightningd(format!(
                "lightningd answered {method} with neither result nor error"
            ))),
        }
    }
}

/// Reads one message from the connection and returns its bytes, keeping
/// what follows. lightningd ends every answer with a blank line: the buffer
/// is checked only once one has arrived, so a large answer is not re-read
/// for every chunk.
async fn read_frame(conn: &mut Conn) -> Result<Vec<u8>, RpcError> {
    let mut scanned = 0;
    loop {
        while let Some(end) = find_blank_line(&conn.buf, scanned) {
            let mut it = serde_json::Deserializer::from_slice(&conn.buf[..end])
                .into_iter::<serde::de::IgnoredAny>();
            match it.next() {
                Some(Ok(_)) => {
                    let used = it.byte_offset();
                    let rest = conn.buf.split_off(used);
                    // A pooled connection keeps a small buffer, whatever
                    // size the last answer was.
                    let frame = std::mem::replace(&mut conn.buf, rest);
                    conn.buf.shrink_to(64 * 1024);
                    return Ok(frame);
                }
                Some(Err(e)) if !e.is_eof() => {
                    return Err(transport(format!("unreadable answer: {e}")))
                }
                // Only the blank line that ended the previous answer.
                None => {
                    conn.buf.drain(..end);
                    scanned = 0;
                }
                // A blank line inside a value: look further.
                Some(Err(_)) => scanned = end,
            }
        }
        scanned = scanned.max(conn.buf.len().saturating_sub(1));
        // Straight into the buffer's spare room: no zeroed scratch chunk.
        conn.buf.reserve(64 * 1024);
        let n = conn
            .stream
            .read_buf(&mut conn.buf)
            .await
            .map_err(transport)?;
        if n == 0 {
            return Err(transport("connection closed"));
        }
    }
}

/// The end of the first `\n\n` at or after `from`.
fn find_blank_line(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| from + i + 2)
}
