//! `wait` on the `sendpays` subsystem, as `lightningd/wait.c` answers it:
//! at once with the number only if the value is reached, else when the
//! index reaches it, with the details of the move that did.

use crate::table::IndexEvent;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// What a `wait` call asks for, checked as lightningd checks it.
pub struct Request {
    pub index: &'static str,
    pub nextvalue: u64,
}

pub fn parse(params: &Value) -> Result<Request, Value> {
    let bad = |m: &str| json!({"code": -32602, "message": m});
    let get = |i: usize, name: &str| match params {
        Value::Array(a) => a.get(i).cloned(),
        _ => params.get(name).cloned(),
    };
    if get(0, "subsystem")
        .and_then(|v| v.as_str().map(str::to_owned))
        .as_deref()
        != Some("sendpays")
    {
        return Err(bad("the stand-in waits on the sendpays subsystem only"));
    }
    let index = match get(1, "indexname").as_ref().and_then(Value::as_str) {
        Some("created") => "created",
        Some("updated") => "updated",
        Some("deleted") => "deleted",
        _ => return Err(bad("indexname: unknown index")),
    };
    let nextvalue = get(2, "nextvalue")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("nextvalue: should be an unsigned 64 bit integer"))?;
    Ok(Request { index, nextvalue })
}

/// The answer for a value reached already.
pub fn reached(index: &str, value: u64) -> Value {
    json!({"subsystem": "sendpays", index: value})
}

/// Waits on `rx` (subscribed before the index was read, so no move is
/// missed) for the move that reaches the value. A waiter that fell behind
/// the moves is answered with `current()`, the number only.
pub async fn pending(
    req: &Request,
    mut rx: broadcast::Receiver<IndexEvent>,
    current: impl Fn() -> u64,
) -> Value {
    loop {
        match rx.recv().await {
            Ok(e) if e.index == req.index && e.value >= req.nextvalue => {
                // v26.06 gives the details under the subsystem's name only.
                return json!({"subsystem": "sendpays", req.index: e.value, "sendpays": e.details});
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let now = current();
                if now >= req.nextvalue {
                    return reached(req.index, now);
                }
            }
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
