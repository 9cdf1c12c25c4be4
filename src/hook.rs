//! The `rpc_command` hook: how paystate answers lightningd's own
//! `waitsendpay` and `delpay` names, and its own `paystate-*` names.

use crate::app::App;
use crate::commands::{delpay, listsendpays, waitsendpay};
use crate::node::Node;
use crate::rpc::INTERNAL_ID_PREFIX;
use crate::store::Datastore;
use serde_json::{json, Value};

/// The built-in commands paystate takes over.
pub const TAKEN_OVER: [&str; 2] = ["waitsendpay", "delpay"];

/// paystate's own methods that can fail, answered here rather than as
/// plugin methods: cln-plugin writes `"data": null` into every method
/// error, where lightningd's answers have no `data`. The hook's reply is
/// passed to the caller as written. The methods stay registered (so
/// `help` lists them, and a lightningd that skips the hook still reaches
/// them).
pub const OWN: [&str; 3] = [
    "paystate-waitsendpay",
    "paystate-delpay",
    "paystate-listsendpays",
];

/// The hook's `filters`: every name it answers.
pub fn filters() -> impl Iterator<Item = &'static str> {
    TAKEN_OVER.into_iter().chain(OWN)
}

/// The reply that lets lightningd run the command itself.
pub fn continue_reply() -> Value {
    json!({"result": "continue"})
}

/// Whether a hook call goes on to lightningd untouched: paystate's own
/// calls to the built-ins (they come back through this hook), the
/// built-in names with takeover off, and any command paystate does not
/// answer (lightningd before v25.12 ignores `filters`). Decided without
/// the ledger, so it answers even while the ledger loads.
pub fn passes_through(payload: &Value, takeover: bool) -> bool {
    let call = payload.get("rpc_command").unwrap_or(&Value::Null);
    let internal = call
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with(INTERNAL_ID_PREFIX));
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    let answered = OWN.contains(&method) || (takeover && TAKEN_OVER.contains(&method));
    internal || !answered
}

/// Answers one `rpc_command` hook call. Never fails: whatever it cannot
/// handle continues to lightningd.
pub async fn handle<D: Datastore, N: Node>(app: &App<D, N>, payload: &Value) -> Value {
    if passes_through(payload, app.takeover) {
        return continue_reply();
    }
    let call = payload.get("rpc_command").unwrap_or(&Value::Null);
    let params = call.get("params").cloned().unwrap_or(Value::Null);
    let answer = match call.get("method").and_then(Value::as_str) {
        Some("waitsendpay" | "paystate-waitsendpay") => waitsendpay::run(app, params).await,
        Some("delpay" | "paystate-delpay") => delpay::run(app, params).await,
        Some("paystate-listsendpays") => listsendpays::run(app, &params).await,
        _ => return continue_reply(),
    };
    match answer {
        Ok(result) => json!({"return": {"result": result}}),
        Err(error) => json!({"return": {"error": error.to_json()}}),
    }
}
