//! The `rpc_command` hook: how paystate answers the built-in names it
//! takes over ([`commands::COMMANDS`]), on a lightningd whose hook honours
//! `filters` (paystate declares no hook on one that does not).

use crate::app::App;
use crate::calls::INTERNAL_ID_PREFIX;
use crate::commands::{self, COMMANDS};
use crate::node::Node;
use crate::store::Datastore;
use serde_json::{json, Value};

/// The hook's `filters`: the built-in names paystate takes over.
pub fn filters() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().filter_map(|c| c.takes_over)
}

/// The reply that lets lightningd run the command itself.
pub fn continue_reply() -> Value {
    json!({"result": "continue"})
}

/// Whether a hook call goes on to lightningd untouched: paystate's own
/// calls to the built-ins (they come back through this hook), the
/// built-in names with takeover off, and any command paystate does not
/// take over. Decided without the ledger, so it answers even while the
/// ledger loads.
pub fn passes_through(payload: &Value, takeover: bool) -> bool {
    let call = payload.get("rpc_command").unwrap_or(&Value::Null);
    let internal = call
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with(INTERNAL_ID_PREFIX));
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    internal || !takeover || !filters().any(|m| m == method)
}

/// Answers one `rpc_command` hook call. Never fails: whatever it cannot
/// handle continues to lightningd.
pub async fn handle<D: Datastore, N: Node>(app: &App<D, N>, payload: &Value) -> Value {
    if passes_through(payload, app.takeover) {
        return continue_reply();
    }
    let call = payload.get("rpc_command").unwrap_or(&Value::Null);
    let params = call.get("params").cloned().unwrap_or(Value::Null);
    let method = call.get("method").and_then(Value::as_str).unwrap_or("");
    match commands::run(app, method, params).await {
        Ok(result) => json!({"return": {"result": result}}),
        Err(error) => json!({"return": {"error": error.to_json()}}),
    }
}
