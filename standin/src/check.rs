//! `check command_to_check [parameters]` as lightningd reads it
//! (`lightningd/jsonrpc.c`, `json_check`): the command's name first
//! (positional) or by name, its own parameters beside it.

use serde_json::Value;

/// The command to check, if named.
pub fn command_to_check(params: &Value) -> Option<String> {
    split(params).map(|(name, _)| name)
}

/// The command's name and its own parameters, in the caller's form.
pub fn split(params: &Value) -> Option<(String, Value)> {
    match params {
        Value::Array(items) => {
            let name = items.first()?.as_str()?.to_string();
            Some((name, Value::Array(items[1..].to_vec())))
        }
        Value::Object(members) => {
            let mut rest = members.clone();
            let name = rest.shift_remove("command_to_check")?.as_str()?.to_string();
            Some((name, Value::Object(rest)))
        }
        _ => None,
    }
}
