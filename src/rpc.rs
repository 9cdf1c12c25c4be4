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
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Every request paystate sends carries an id starting with this.
pub const INTERNAL_ID_PREFIX: &str = "paystate-internal:";

/// Idle connections kept for reuse.
const POOL_SIZE: usize = 16;

/// Calls in flight at once (and so connections open): thousands of
/// concurrent waiters must not open thousands of sockets.
const MAX_IN_FLIGHT: usize = 64;

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
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
    pub stats: std::sync::Arc<CallStats>,
    path: PathBuf,
    pool: Mutex<Vec<Conn>>,
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
            pool: Mutex::new(Vec::new()),
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
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => Conn {
                stream: UnixStream::connect(&self.path).await.map_err(transport)?,
                buf: Vec::new(),
            },
        };
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut bytes = serde_json::to_vec(&request).expect("a request serializes");
        bytes.extend_from_slice(b"\n\n");
        let sent = std::time::Instant::now();
        conn.stream.write_all(&bytes).await.map_err(transport)?;
        let frame = read_frame(&mut conn).await?;
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
