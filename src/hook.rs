//! The `rpc_command` hook: how paystate answers lightningd's own
//! `waitsendpay` and `delpay` names.

use crate::app::App;
use crate::commands::{delpay, waitsendpay};
use crate::node::Node;
use crate::rpc::INTERNAL_ID_PREFIX;
use crate::store::Datastore;
use serde_json::{json, Value};

/// The built-in commands paystate takes over (the hook's `filters`).
pub const TAKEN_OVER: [&str; 2] = ["waitsendpay", "delpay"];

fn continue_() -> Value {
    json!({"result": "continue"})
}

/// Answers one `rpc_command` hook call. Never fails: whatever it cannot
/// handle continues to lightningd.
pub async fn handle<D: Datastore, N: Node>(app: &App<D, N>, payload: &Value) -> Value {
    let call = payload.get("rpc_command").unwrap_or(&Value::Null);
    // paystate's own calls to the built-ins come back here: let them through.
    let internal = call
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with(INTERNAL_ID_PREFIX));
    if internal || !app.takeover {
        return continue_();
    }
    let params = call.get("params").cloned().unwrap_or(Value::Null);
    let answer = match call.get("method").and_then(Value::as_str) {
        Some("waitsendpay") => waitsendpay::run(app, params).await,
        Some("delpay") => delpay::run(app, params).await,
        // lightningd before v25.12 ignores filters and sends every command.
        _ => return continue_(),
    };
    match answer {
        Ok(result) => json!({"return": {"result": result}}),
        Err(error) => json!({"return": {"error": error.to_json()}}),
    }
}
