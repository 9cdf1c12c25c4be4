//! paystate's client for lightningd's JSON-RPC socket, and the adapters
//! that make it the ledger's [`Datastore`] and the [`Node`].
//!
//! cln-rpc's client numbers its requests itself; paystate needs ids of its
//! own (`paystate-internal:N`) so that its calls to the built-in
//! `waitsendpay`/`delpay`, which come back through its own `rpc_command`
//! hook, can be recognized there and let through.

use crate::domain::{PartKey, Payment, Status};
use crate::error::RpcError;
use crate::node::Node;
use crate::store::{Datastore, Entry};
use cln_rpc::primitives::Sha256;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Every request paystate sends carries an id starting with this.
pub const INTERNAL_ID_PREFIX: &str = "paystate-internal:";

/// Calls in flight at once: thousands of concurrent waiters must not queue
/// thousands of requests at lightningd.
const MAX_IN_FLIGHT: usize = 64;

/// Answers awaited on a connection, by request id.
type Pending = HashMap<String, oneshot::Sender<Result<Vec<u8>, RpcError>>>;

/// One connection to lightningd, shared by every call: requests are
/// written as they come (pipelined) and a reader task hands each answer to
/// its caller by id. lightningd parses all the requests one read of a
/// connection brings in one database transaction, so concurrent calls
/// (autoclean's deletes, a burst of notifications) share commits instead
/// of paying one each, as they would on a connection per call.
struct Conn {
    writer: tokio::sync::Mutex<tokio::net::unix::OwnedWriteHalf>,
    pending: Arc<Mutex<Option<Pending>>>,
}

/// The slowest call paystate has made to lightningd in this run: its
/// method and how long lightningd took to answer (round trip). lightningd
/// serves one command at a time, so this bounds how long paystate ever
/// kept it from the node's other commands.
#[derive(Default)]
pub struct CallStats {
    slowest: Mutex<Option<(String, std::time::Duration)>>,
}

impl CallStats {
    fn record(&self, method: &str, took: std::time::Duration) {
        let mut s = self.slowest.lock().unwrap_or_else(|p| p.into_inner());
        if !s.as_ref().is_some_and(|(_, t)| took <= *t) {
            *s = Some((method.to_string(), took));
        }
    }

    pub fn slowest(&self) -> Option<(String, std::time::Duration)> {
        self.slowest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub struct Rpc {
    pub stats: Arc<CallStats>,
    path: PathBuf,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    next_id: AtomicU64,
    in_flight: tokio::sync::Semaphore,
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

fn transport(e: impl std::fmt::Display) -> RpcError {
    RpcError::lightningd(format!("Connection to lightningd failed: {e}"))
}

impl Rpc {
    pub fn new(path: PathBuf) -> Self {
        Rpc {
            stats: Default::default(),
            path,
            conn: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
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
        let id = format!(
            "{INTERNAL_ID_PREFIX}{}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut bytes = serde_json::to_vec(&request).expect("a request serializes");
        bytes.extend_from_slice(b"\n\n");
        let conn = self.connection().await?;
        // Registered before the request goes out, so no answer is missed.
        let (tx, rx) = oneshot::channel();
        match conn.pending.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(p) => p.insert(id.clone(), tx),
            None => return Err(transport("connection closed")),
        };
        let sent = std::time::Instant::now();
        if let Err(e) = conn.writer.lock().await.write_all(&bytes).await {
            close(&conn.pending, "the request could not be written");
            return Err(transport(e));
        }
        let frame = rx
            .await
            .unwrap_or_else(|_| Err(transport("connection closed")))?;
        // A waitsendpay or wait may wait by design; the others are work.
        if method != "waitsendpay" && method != "wait" {
            self.stats.record(method, sent.elapsed());
        }
        let envelope: Envelope<R> = serde_json::from_slice(&frame).map_err(|e| {
            RpcError::lightningd(format!(
                "lightningd's answer to {method} is unreadable: {e}"
            ))
        })?;
        if envelope.id.as_str() != Some(id.as_str()) {
            return Err(RpcError::lightningd(format!(
                "lightningd answered {method} with a foreign id: {}",
                envelope.id
            )));
        }
        match (envelope.result, envelope.error) {
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

    /// The shared connection, opened (again) if there is none or it closed.
    async fn connection(&self) -> Result<Arc<Conn>, RpcError> {
        let mut current = self.conn.lock().await;
        if let Some(c) = current.as_ref() {
            if c.pending.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                return Ok(c.clone());
            }
        }
        let stream = UnixStream::connect(&self.path).await.map_err(transport)?;
        let (reader, writer) = stream.into_split();
        let pending: Arc<Mutex<Option<Pending>>> = Arc::new(Mutex::new(Some(HashMap::new())));
        tokio::spawn(read_answers(reader, pending.clone()));
        let conn = Arc::new(Conn {
            writer: tokio::sync::Mutex::new(writer),
            pending,
        });
        *current = Some(conn.clone());
        Ok(conn)
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

/// What paystate reads of a `datastore` answer (the value it just wrote,
/// echoed back as hex and string, is skipped unread).
#[derive(Deserialize)]
struct Written {
    generation: u64,
}

#[derive(Deserialize)]
struct Envelope<R> {
    #[serde(default)]
    id: Value,
    result: Option<R>,
    error: Option<Value>,
}

/// Ends a connection: every caller still waiting on it gets an error, and
/// the next call opens a new one.
fn close(pending: &Mutex<Option<Pending>>, why: &str) {
    let waiting = pending.lock().unwrap_or_else(|p| p.into_inner()).take();
    for (_, tx) in waiting.into_iter().flatten() {
        let _ = tx.send(Err(transport(why)));
    }
}

/// Hands each answer on the connection to the call that awaits it.
async fn read_answers(mut reader: tokio::net::unix::OwnedReadHalf, pending: Arc<Mutex<Option<Pending>>>) {
    #[derive(Deserialize)]
    struct Id {
        #[serde(default)]
        id: Value,
    }
    let mut buf = Vec::new();
    loop {
        let frame = match read_frame(&mut reader, &mut buf).await {
            Ok(f) => f,
            Err(e) => return close(&pending, &e.message),
        };
        // Only the id is decoded here; the caller decodes the rest.
        let id = serde_json::from_slice::<Id>(&frame).map(|i| i.id);
        let waiter = match &id {
            Ok(Value::String(id)) => pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .and_then(|p| p.remove(id)),
            _ => None,
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(Ok(frame));
            }
            None => {
                log::warn!("Dropping an answer from lightningd for no call of ours ({id:?})");
            }
        }
    }
}

/// Reads one message from the connection and returns its bytes, keeping
/// what follows in `buf`. lightningd ends every answer with a blank line:
/// the buffer is checked only once one has arrived, so a large answer is
/// not re-read for every chunk.
async fn read_frame(
    stream: &mut tokio::net::unix::OwnedReadHalf,
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    let mut scanned = 0;
    loop {
        while let Some(end) = find_blank_line(buf, scanned) {
            let mut it = serde_json::Deserializer::from_slice(&buf[..end])
                .into_iter::<serde::de::IgnoredAny>();
            match it.next() {
                Some(Ok(_)) => {
                    let used = it.byte_offset();
                    let rest = buf.split_off(used);
                    // The connection keeps a small buffer, whatever size
                    // the last answer was.
                    let frame = std::mem::replace(buf, rest);
                    buf.shrink_to(64 * 1024);
                    return Ok(frame);
                }
                Some(Err(e)) if !e.is_eof() => {
                    return Err(transport(format!("unreadable answer: {e}")))
                }
                // Only the blank line that ended the previous answer.
                None => {
                    buf.drain(..end);
                    scanned = 0;
                }
                // A blank line inside a value: look further.
                Some(Err(_)) => scanned = end,
            }
        }
        scanned = scanned.max(buf.len().saturating_sub(1));
        // Straight into the buffer's spare room: no zeroed scratch chunk.
        buf.reserve(64 * 1024);
        let n = stream.read_buf(buf).await.map_err(transport)?;
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

impl Datastore for Rpc {
    async fn create(&self, key: Vec<String>, value: String) -> Result<u64, RpcError> {
        let r: Written = self
            .call_as(
                "datastore",
                json!({"key": key, "string": value, "mode": "must-create"}),
            )
            .await??;
        Ok(r.generation)
    }

    async fn replace(&self, key: Vec<String>, value: String, gen: u64) -> Result<u64, RpcError> {
        let r: Written = self
            .call_as(
                "datastore",
                json!({"key": key, "string": value, "mode": "must-replace", "generation": gen}),
            )
            .await??;
        Ok(r.generation)
    }

    async fn delete(&self, key: Vec<String>, gen: Option<u64>) -> Result<Option<String>, RpcError> {
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(default)]
            string: Option<String>,
        }
        let params = match gen {
            Some(g) => json!({"key": key, "generation": g}),
            None => json!({ "key": key }),
        };
        let d: Deleted = self.call_as("deldatastore", params).await??;
        Ok(d.string)
    }

    async fn list(&self, key: Vec<String>) -> Result<Vec<Entry>, RpcError> {
        #[derive(Deserialize)]
        struct Listing {
            datastore: Vec<Listed>,
        }
        // `hex` (the value again, twice as long) is skipped unread.
        #[derive(Deserialize)]
        struct Listed {
            key: Vec<String>,
            #[serde(default)]
            generation: Option<u64>,
            #[serde(default)]
            string: Option<String>,
        }
        let listing: Listing = self
            .call_as("listdatastore", json!({ "key": key }))
            .await??;
        Ok(listing
            .datastore
            .into_iter()
            .map(|e| Entry {
                key: e.key,
                generation: e.generation,
                string: e.string,
            })
            .collect())
    }
}

fn payments(v: Value) -> Result<Vec<Payment>, RpcError> {
    let Some(Value::Array(items)) = v.get("payments").cloned() else {
        return Err(RpcError::lightningd(
            "listsendpays answered without payments",
        ));
    };
    Ok(items
        .into_iter()
        .filter_map(|p| match serde_json::from_value::<Payment>(p.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("Ignoring unreadable listsendpays entry ({e}): {p}");
                None
            }
        })
        .collect())
}

impl Node for Rpc {
    async fn parts_of(&self, hash: Sha256) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call("listsendpays", json!({"payment_hash": hash}))
                .await?,
        )
    }

    async fn updated_since(&self, start: u64, limit: u32) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call(
                "listsendpays",
                json!({"index": "updated", "start": start, "limit": limit}),
            )
            .await?,
        )
    }

    async fn created_since(&self, start: u64, limit: u32) -> Result<Vec<Payment>, RpcError> {
        payments(
            self.call(
                "listsendpays",
                json!({"index": "created", "start": start, "limit": limit}),
            )
            .await?,
        )
    }

    async fn parts_created(&self) -> Result<u64, RpcError> {
        #[derive(Deserialize)]
        struct Waited {
            #[serde(default)]
            created: u64,
        }
        let w: Waited = self
            .call_as(
                "wait",
                json!({"subsystem": "sendpays", "indexname": "created", "nextvalue": 0}),
            )
            .await??;
        Ok(w.created)
    }

    async fn poll_builtin(&self, key: PartKey) -> Result<Result<Value, RpcError>, RpcError> {
        self.call_raw(
            "waitsendpay",
            json!({"payment_hash": key.payment_hash, "partid": key.partid, "groupid": key.groupid, "timeout": 0}),
        )
        .await
    }

    async fn delpay_builtin(
        &self,
        hash: Sha256,
        status: Status,
        part: Option<(u64, u64)>,
    ) -> Result<Result<Vec<Payment>, RpcError>, RpcError> {
        let mut params = json!({"payment_hash": hash, "status": status});
        if let Some((partid, groupid)) = part {
            params["partid"] = json!(partid);
            params["groupid"] = json!(groupid);
        }
        Ok(match self.call_raw("delpay", params).await? {
            Ok(v) => Ok(payments(v)?),
            Err(e) => Err(e),
        })
    }
}
