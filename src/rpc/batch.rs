//! Batches: several requests written to lightningd at once, on a
//! connection with `batching` enabled. lightningd parses every request of
//! one read inside one database transaction (`lightningd/jsonrpc.c`,
//! `read_json`: up to 100 requests or 250 ms), so a batch of datastore
//! writes costs one commit instead of one each: the commit, not the
//! write, is what a datastore call mostly costs the node.

use super::{request, transport, Conn, Rpc};
use crate::error::RpcError;
use serde_json::{json, Value};
use std::collections::HashMap;

impl Rpc {
    /// Sends `calls` together and returns their answers in the same order.
    /// The outer error: the connection failed (none, some or all of the
    /// calls may have been carried out).
    pub async fn call_batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        let mut slot = self.batches.lock().await;
        let conn = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(self.batching_conn().await?),
        };
        let what = format!(
            "a batch of {} {}",
            calls.len(),
            calls.first().map_or("", |c| c.0)
        );
        let outcome = super::patient(&what, exchange(self, conn, calls)).await;
        if outcome.is_err() {
            // The connection's state is unknown: the next batch opens another.
            *slot = None;
        }
        let sent = outcome?;
        Ok(sent)
    }

    /// A connection of its own with `batching` on: lightningd then wraps
    /// each read's requests in one transaction, not one each.
    pub(super) async fn batching_conn(&self) -> Result<Conn, RpcError> {
        let mut conn = Conn::open(self.path()).await?;
        let id = self.next_id();
        let answer = super::patient("batching", async {
            conn.send(&request(&id, "batching", &json!({"enable": true})))
                .await?;
            conn.answer::<Value>().await
        })
        .await?;
        // A lightningd without `batching` still serves the batch, with a
        // commit per request.
        if let Err(e) = answer.outcome("batching")? {
            log::debug!(
                "lightningd refused batching ({}); batches commit per call",
                e.message
            );
        }
        Ok(conn)
    }
}

async fn exchange(
    rpc: &Rpc,
    conn: &mut Conn,
    calls: &[(&str, Value)],
) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
    let mut bytes = Vec::new();
    let mut slots = HashMap::with_capacity(calls.len());
    for (i, (method, params)) in calls.iter().enumerate() {
        let id = rpc.next_id();
        bytes.extend(request(&id, method, params));
        slots.insert(id, i);
    }
    let began = std::time::Instant::now();
    conn.send(&bytes).await?;
    let mut out: Vec<Option<Result<Value, RpcError>>> = vec![None; calls.len()];
    for _ in 0..calls.len() {
        let envelope = conn.answer::<Value>().await?;
        let i = envelope
            .id
            .as_str()
            .and_then(|id| slots.remove(id))
            .ok_or_else(|| transport(format!("an answer with a foreign id {}", envelope.id)))?;
        out[i] = Some(envelope.outcome(calls[i].0)?);
    }
    let methods: Vec<&str> = calls.iter().map(|(m, _)| *m).collect();
    rpc.stats.record_batch(&methods, began.elapsed());
    Ok(out
        .into_iter()
        .map(|o| o.expect("every slot answered"))
        .collect())
}
