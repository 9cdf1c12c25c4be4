//! A JSON-RPC client of the stand-in's socket, as `lightning-cli` or any
//! other program on the node would use it.

use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The text pyln-client sends for `params` (given as raw JSON text):
/// Python's `json.dumps` spacing, top-level members whose value is `null`
/// left out, every leaf exactly as written.
pub fn pyln_text(raw: &str) -> String {
    fn write(raw: &str, top: bool) -> String {
        let raw = raw.trim();
        if let Ok(crate::params::Members(members)) = serde_json::from_str(raw) {
            let items: Vec<String> = members
                .iter()
                .filter(|(_, v)| !(top && v.get() == "null"))
                .map(|(k, v)| format!("{}: {}", json!(k), write(v.get(), false)))
                .collect();
            format!("{{{}}}", items.join(", "))
        } else if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw) {
            let items: Vec<String> = items.iter().map(|v| write(v.get(), false)).collect();
            format!("[{}]", items.join(", "))
        } else {
            raw.to_string()
        }
    }
    write(raw, true)
}

/// A socket path longer than a socket address holds (107 bytes) is reached
/// through its directory's file descriptor (`/proc/self/fd/N/name`), as
/// clients of a deep lightning-dir do.
async fn connect_any_length(path: &Path) -> Result<UnixStream> {
    if path.as_os_str().len() <= 107 {
        return connect_waiting(path).await;
    }
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path.parent().ok_or_else(|| anyhow!("no directory"))?)?;
    let name = path.file_name().ok_or_else(|| anyhow!("no file name"))?;
    let short = format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        name.to_string_lossy()
    );
    connect_waiting(Path::new(&short)).await
}

/// A connect as a blocking client's (lightning-cli, pyln-client): a full
/// listen queue makes it wait, not fail.
async fn connect_waiting(path: &Path) -> Result<UnixStream> {
    let began = std::time::Instant::now();
    loop {
        match UnixStream::connect(path).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && began.elapsed() < std::time::Duration::from_secs(60) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await
            }
            other => return Ok(other?),
        }
    }
}

pub struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    next: u64,
    name: String,
}

impl Client {
    pub async fn connect(path: &Path, name: &str) -> Result<Client> {
        Ok(Client {
            stream: connect_any_length(path).await?,
            buf: Vec::new(),
            next: 1,
            name: name.to_string(),
        })
    }

    /// Calls `method`; `Ok(result)` or `Err(error object)`.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Result<Value, Value>> {
        let id = json!(format!("{}:{method}#{}", self.name, self.next));
        self.next += 1;
        self.call_with_id(id, method, params).await
    }

    pub async fn call_with_id(
        &mut self,
        id: Value,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, Value>> {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.exchange(&id, serde_json::to_string(&req)?.as_bytes())
            .await
    }

    /// Sends one request and reads its answer: `Ok(result)` or
    /// `Err(error object)`.
    async fn exchange(&mut self, id: &Value, request: &[u8]) -> Result<Result<Value, Value>> {
        self.stream.write_all(request).await?;
        let resp = self.read().await?;
        if resp.get("id") != Some(id) {
            return Err(anyhow!(
                "answer with id {:?} to request {id}",
                resp.get("id")
            ));
        }
        if let Some(r) = resp.get("result") {
            return Ok(Ok(r.clone()));
        }
        Ok(Err(resp.get("error").cloned().ok_or_else(|| {
            anyhow!("neither result nor error: {resp}")
        })?))
    }

    /// Calls `method` with `params` exactly as written (the text lightningd
    /// parses and quotes back in its errors).
    pub async fn call_text(&mut self, method: &str, params: &str) -> Result<Result<Value, Value>> {
        let id = format!("{}:{method}#{}", self.name, self.next);
        self.next += 1;
        let req = format!(
            r#"{{"jsonrpc": "2.0", "id": "{id}", "method": "{method}", "params": {params}}}"#
        );
        self.exchange(&json!(id), req.as_bytes()).await
    }

    /// Sends a request without waiting (pipelining); see [`Client::recv`].
    pub async fn send(&mut self, id: Value, method: &str, params: Value) -> Result<()> {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.stream
            .write_all(serde_json::to_string(&req)?.as_bytes())
            .await?;
        Ok(())
    }

    /// Sends the calls in one write (lightningd reads them at once: on a
    /// connection with `batching` enabled, in one transaction, as
    /// autoclean sends its deletes) and returns their answers in order.
    pub async fn call_many(
        &mut self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, Value>>> {
        let mut bytes = Vec::new();
        let mut ids = Vec::new();
        for (method, params) in calls {
            let id = json!(format!("{}:{method}#{}", self.name, self.next));
            self.next += 1;
            let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            bytes.extend(serde_json::to_vec(&req)?);
            ids.push(id);
        }
        self.stream.write_all(&bytes).await?;
        let mut answers: std::collections::HashMap<String, Result<Value, Value>> =
            Default::default();
        while answers.len() < ids.len() {
            let resp = self.read().await?;
            let id = resp.get("id").map(|i| i.to_string()).unwrap_or_default();
            let answer = match (resp.get("result"), resp.get("error")) {
                (Some(r), _) => Ok(r.clone()),
                (_, Some(e)) => Err(e.clone()),
                _ => return Err(anyhow!("neither result nor error: {resp}")),
            };
            answers.insert(id, answer);
        }
        ids.iter()
            .map(|id| {
                answers
                    .remove(&id.to_string())
                    .ok_or_else(|| anyhow!("no answer to {id}"))
            })
            .collect()
    }

    /// The next response on this connection, whichever request it answers.
    pub async fn recv(&mut self) -> Result<Value> {
        self.read().await
    }

    async fn read(&mut self) -> Result<Value> {
        let mut scanned = 0;
        loop {
            // Answers end with a blank line: parse only once one is here.
            while let Some(end) = crate::framing::blank_line(&self.buf, scanned) {
                let mut it =
                    serde_json::Deserializer::from_slice(&self.buf[..end]).into_iter::<Value>();
                match it.next() {
                    Some(Ok(v)) => {
                        let used = it.byte_offset();
                        self.buf.drain(..used);
                        return Ok(v);
                    }
                    Some(Err(e)) if !e.is_eof() => return Err(e.into()),
                    // Only the blank line after the last answer: drop it.
                    None => {
                        self.buf.drain(..end);
                        scanned = 0;
                    }
                    // A blank line inside a value: look further.
                    Some(Err(_)) => scanned = end,
                }
            }
            scanned = scanned.max(self.buf.len().saturating_sub(1));
            let mut chunk = vec![0u8; 256 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(anyhow!("connection closed by lightningd"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
