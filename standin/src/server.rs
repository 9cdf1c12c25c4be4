//! The RPC socket's connections, served as lightningd serves them: the
//! requests of one read parsed together (one transaction on a `batching`
//! connection), each run as its own task in the order they came, answers
//! written as they are ready.

use crate::batching::{Order, Turn};
use crate::dispatch::Reply;
use crate::framing::raw_params;
use crate::state::Core;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub(crate) async fn serve(core: Arc<Core>, stream: UnixStream) {
    let (mut rd, wr) = stream.into_split();
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 65536];
    let (hang_tx, mut hang_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut batching = false;
    let mut tasks = tokio::task::JoinSet::new();
    let order = Arc::new(Order::default());
    let mut received = 0u64;
    loop {
        // The requests of one read share a transaction on a batching
        // connection.
        let batch = batching.then(|| core.open_batch());
        loop {
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            match it.next() {
                Some(Ok(req)) => {
                    let used = it.byte_offset();
                    let raw = raw_params(&buf[..used]);
                    buf.drain(..used);
                    if req.get("method").and_then(Value::as_str) == Some("batching") {
                        batching = req["params"]["enable"].as_bool().unwrap_or(false);
                    }
                    let (core, wr, hang) = (core.clone(), wr.clone(), hang_tx.clone());
                    let batch = batch.clone();
                    let turn = Turn::new(order.clone(), received);
                    received += 1;
                    // Requests on one connection run concurrently, as in
                    // lightningd, and end with it (a pending `wait` too).
                    while tasks.try_join_next().is_some() {}
                    tasks.spawn(async move {
                        let id = req.get("id").cloned().unwrap_or(Value::Null);
                        turn.wait().await;
                        match core.dispatch(req, raw, batch, turn).await {
                            Reply::Answer(r) => {
                                let msg = match r {
                                    Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
                                    Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
                                };
                                let mut bytes = serde_json::to_vec(&msg).unwrap();
                                bytes.extend_from_slice(b"\n\n");
                                let _ = wr.lock().await.write_all(&bytes).await;
                            }
                            Reply::Hangup => {
                                let _ = hang.send(()).await;
                            }
                        }
                    });
                }
                Some(Err(e)) if !e.is_eof() => return,
                _ => break,
            }
        }
        drop(batch);
        tokio::select! {
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = hang_rx.recv() => {
                let _ = wr.lock().await.shutdown().await;
                return;
            }
        }
    }
}
