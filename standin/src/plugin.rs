//! The plugin as lightningd runs it: a child process spoken to in JSON-RPC
//! over its stdin/stdout, messages separated by a blank line.

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

/// The release the stand-in plays (its `getinfo` and `LIGHTNINGD_VERSION`).
pub const STANDIN_VERSION: &str = "v26.06-standin";

/// A log line the plugin sent (`log` notification).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

pub struct PluginProc {
    /// Every message sent to the plugin, in order.
    sent: Arc<Mutex<Vec<Value>>>,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    child: tokio::sync::Mutex<Child>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    alive: watch::Receiver<bool>,
    pub pid: u32,
}

impl PluginProc {
    /// Started as lightningd starts a plugin: in the lightning-dir (so a
    /// relative `rpc-file` reaches the socket), with `--developer` when the
    /// node runs in developer mode.
    pub fn spawn(
        path: &Path,
        dir: &Path,
        developer: bool,
        env: &[(String, String)],
        logs: Arc<Mutex<Vec<LogLine>>>,
        sent: Arc<Mutex<Vec<Value>>>,
    ) -> Result<Arc<PluginProc>> {
        let mut cmd = Command::new(path);
        if developer {
            cmd.arg("--developer");
        }
        // lightningd names its release to every plugin; a test may name
        // another (in `env`).
        cmd.env("LIGHTNINGD_VERSION", STANDIN_VERSION);
        cmd.current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", path.display()))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let (alive_tx, alive) = watch::channel(true);
        let pend = pending.clone();
        tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 256 * 1024];
            let mut scanned = 0;
            'outer: loop {
                // Plugins end each message with a blank line; parse only
                // up to one, so big messages are not re-parsed per chunk.
                while let Some(end) = crate::framing::blank_line(&buf, scanned) {
                    let mut it =
                        serde_json::Deserializer::from_slice(&buf[..end]).into_iter::<Value>();
                    match it.next() {
                        Some(Ok(msg)) => {
                            let used = it.byte_offset();
                            buf.drain(..used);
                            scanned = 0;
                            route_from_plugin(msg, &pend, &logs);
                        }
                        Some(Err(e)) if !e.is_eof() => {
                            eprintln!("stand-in: plugin wrote invalid JSON: {e}");
                            break 'outer;
                        }
                        Some(Err(_)) => scanned = end,
                        None => {
                            buf.drain(..end);
                            scanned = 0;
                        }
                    }
                }
                scanned = scanned.max(buf.len().saturating_sub(1));
                match stdout.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = alive_tx.send(false);
            pend.lock().unwrap().clear();
        });
        Ok(Arc::new(PluginProc {
            sent,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            child: tokio::sync::Mutex::new(child),
            pending,
            alive,
            pid,
        }))
    }

    pub fn is_alive(&self) -> bool {
        *self.alive.borrow()
    }

    async fn write(&self, msg: &Value) -> Result<()> {
        self.sent.lock().unwrap().push(msg.clone());
        let mut bytes = serde_json::to_vec(msg)?;
        bytes.extend_from_slice(b"\n\n");
        let mut g = self.stdin.lock().await;
        let stdin = g.as_mut().ok_or_else(|| anyhow!("plugin stdin closed"))?;
        stdin.write_all(&bytes).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Sends a request and waits for the whole response message.
    pub async fn request(&self, id: &str, method: &str, params: Value) -> Result<Value> {
        let (tx, rx) = oneshot::channel();
        if !self.is_alive() {
            return Err(anyhow!("plugin is not running"));
        }
        self.pending.lock().unwrap().insert(id.to_string(), tx);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = self.write(&msg).await {
            self.pending.lock().unwrap().remove(id);
            return Err(e);
        }
        rx.await
            .map_err(|_| anyhow!("plugin terminated before replying to {method}"))
    }

    pub async fn notify(&self, method: &str, params: Value) -> Result<()> {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    /// Waits for the plugin to exit; kills it after `grace`.
    pub async fn wait_exit_or_kill(&self, grace: std::time::Duration) {
        if tokio::time::timeout(grace, self.wait_exit()).await.is_err() {
            self.kill().await;
            self.wait_exit().await;
        }
    }

    /// SIGKILL, at once.
    pub async fn kill(&self) {
        let mut child = self.child.lock().await;
        let _ = child.kill().await;
    }

    pub async fn wait_exit(&self) {
        let mut alive = self.alive.clone();
        let _ = alive.wait_for(|a| !*a).await;
    }
}

fn route_from_plugin(
    msg: Value,
    pending: &Mutex<HashMap<String, oneshot::Sender<Value>>>,
    logs: &Mutex<Vec<LogLine>>,
) {
    let is_response = msg.get("result").is_some() || msg.get("error").is_some();
    if is_response {
        let id = match msg.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return,
        };
        if let Some(tx) = pending.lock().unwrap().remove(&id) {
            let _ = tx.send(msg);
        } else {
            eprintln!("stand-in: plugin answered unknown id {id}");
        }
        return;
    }
    if msg.get("method").and_then(Value::as_str) == Some("log") {
        let p = &msg["params"];
        logs.lock().unwrap().push(LogLine {
            level: p["level"].as_str().unwrap_or("").to_string(),
            message: p["message"].as_str().unwrap_or("").to_string(),
        });
    }
}
