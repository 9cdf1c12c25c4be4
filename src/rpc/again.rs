//! Calls asked again while lightningd stops. A call that reaches the
//! `rpc_command` hook of a plugin just as that plugin exits on its own
//! `shutdown` is never answered: `shutdown_plugins` clears the plugins'
//! pending requests and `destroy_plugin` fails none while lightningd shuts
//! down (`lightningd/plugin.c`). Before v25.12, xpay's hook sees every
//! command, so any of paystate's last calls can be that one. No new
//! connection can be opened then (lightningd has stopped listening), but
//! lightningd reads on while a command of the connection is pending, so
//! the call is asked again on the same connection, under a fresh id, and
//! the first answer to any of its ids is taken. Only calls that may be
//! made twice are asked again: reads, and the level mark's `must-create`
//! (a second ask is answered after the first, which comes first if it
//! landed); others are waited for up to the stop's deadline. Either way,
//! answers to asks given up on are passed over.

use super::{read_frame, request, Conn, Envelope};
use crate::error::RpcError;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// How long a call is first waited for before it is asked again (each
/// time twice as long): a node that is stopping answers in milliseconds.
const FIRST_PATIENCE: Duration = Duration::from_millis(250);

/// Whether a call may be asked again: it reads, or it creates a key
/// (asked twice, the second is answered after the first). A `wait` that
/// waits, or a write that appends or replaces, may not.
pub(super) fn may_ask_again(method: &str, params: &Value) -> bool {
    match method {
        "wait" => params["nextvalue"].as_u64() == Some(0),
        "listsendpays" | "listdatastore" => true,
        "datastore" => params["mode"] == "must-create",
        _ => false,
    }
}

/// The frame answering `method` by `deadline`; where `again`, asked again
/// under a fresh id (`next_id`) while none comes.
pub(super) async fn exchange(
    conn: &mut Conn,
    method: &str,
    params: &Value,
    deadline: Instant,
    again: bool,
    mut next_id: impl FnMut() -> String,
) -> Result<Vec<u8>, RpcError> {
    let mut ids = Vec::new();
    let mut patience = if again {
        FIRST_PATIENCE
    } else {
        deadline.saturating_duration_since(Instant::now())
    };
    loop {
        let id = next_id();
        conn.send(&request(&id, method, params)).await?;
        ids.push(id);
        let until = (Instant::now() + patience).min(deadline);
        match tokio::time::timeout_at(until, answer_to(conn, &ids)).await {
            Ok(frame) => return frame,
            Err(_) if until >= deadline => {
                return Err(super::transport(format!(
                    "no answer to {method} while lightningd stops (asked {} times)",
                    ids.len()
                )))
            }
            Err(_) => {
                log::debug!(
                    "No answer to {method} within {} ms while lightningd stops: asking again",
                    patience.as_millis()
                );
                patience *= 2;
            }
        }
    }
}

/// The next frame answering one of `ids`; others (answers to calls given
/// up on earlier) are passed over. Cancel-safe: what is read stays in the
/// connection's buffer.
async fn answer_to(conn: &mut Conn, ids: &[String]) -> Result<Vec<u8>, RpcError> {
    loop {
        let frame = read_frame(conn).await?;
        let envelope: Envelope<IgnoredAny> = serde_json::from_slice(&frame)
            .map_err(|e| RpcError::lightningd(format!("lightningd's answer is unreadable: {e}")))?;
        if envelope
            .id
            .as_str()
            .is_some_and(|id| ids.iter().any(|i| i == id))
        {
            return Ok(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    /// A lightningd that drops the first request it reads (held by a hook
    /// whose plugin exited) and answers the rest.
    async fn dropping_first(listener: UnixListener) {
        let (stream, _) = listener.accept().await.unwrap();
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd).lines();
        let mut seen = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            seen += 1;
            if seen == 1 {
                continue;
            }
            let req: Value = serde_json::from_str(&line).unwrap();
            let answer =
                serde_json::json!({"jsonrpc": "2.0", "id": req["id"], "result": {"deleted": 7}});
            wr.write_all(format!("{answer}\n\n").as_bytes())
                .await
                .unwrap();
        }
    }

    #[test]
    fn only_reads_and_creates_are_asked_again() {
        use serde_json::json;
        assert!(may_ask_again(
            "wait",
            &json!({"subsystem": "sendpays", "indexname": "deleted", "nextvalue": 0})
        ));
        assert!(!may_ask_again(
            "wait",
            &json!({"subsystem": "sendpays", "indexname": "deleted", "nextvalue": 3})
        ));
        assert!(may_ask_again(
            "datastore",
            &json!({"key": ["a"], "hex": "00", "mode": "must-create"})
        ));
        assert!(!may_ask_again(
            "datastore",
            &json!({"key": ["a"], "hex": "00", "mode": "create-or-append"})
        ));
        assert!(!may_ask_again("deldatastore", &json!({"key": ["a"]})));
        assert!(!may_ask_again(
            "waitsendpay",
            &json!({"payment_hash": "00", "timeout": 0})
        ));
        assert!(may_ask_again("listsendpays", &json!({})));
    }

    #[tokio::test]
    async fn a_dropped_call_is_answered_when_asked_again_on_its_connection() {
        let path = std::env::temp_dir().join(format!("paystate-again-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = tokio::spawn(dropping_first(UnixListener::bind(&path).unwrap()));
        let mut conn = Conn::open(&path).await.unwrap();
        let mut n = 0;
        let frame = exchange(
            &mut conn,
            "wait",
            &serde_json::json!({}),
            Instant::now() + Duration::from_secs(10),
            true,
            || {
                n += 1;
                format!("paystate-internal:{n}")
            },
        )
        .await
        .unwrap();
        let v: Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["id"], "paystate-internal:2");
        assert_eq!(v["result"]["deleted"], 7);
        server.abort();
        let _ = std::fs::remove_file(&path);
    }
}
