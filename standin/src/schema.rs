//! A small validator for Core Lightning's JSON schemas (`doc/schemas/`),
//! which use JSON Schema with CLN's own types (`hash`, `u64`, `msat`,
//! `pubkey`, `short_channel_id`, ...). It covers the keywords those schemas
//! use: type, enum, properties, required, additionalProperties, items,
//! allOf/anyOf/oneOf, if/then/else.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

fn is_hex(s: &str) -> bool {
    s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn type_ok(t: &str, v: &Value) -> bool {
    let uint = |max: u64| v.as_u64().is_some_and(|n| n <= max);
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "u64" | "msat" | "sat" => uint(u64::MAX),
        "u32" => uint(u32::MAX as u64),
        "u16" => uint(u16::MAX as u64),
        "u8" => uint(u8::MAX as u64),
        "hex" => v.as_str().is_some_and(is_hex),
        "hash" | "secret" | "txid" => v.as_str().is_some_and(|s| s.len() == 64 && is_hex(s)),
        "pubkey" => v.as_str().is_some_and(|s| {
            s.len() == 66 && is_hex(s) && (s.starts_with("02") || s.starts_with("03"))
        }),
        "short_channel_id" => v.as_str().is_some_and(|s| {
            let parts: Vec<&str> = s.split('x').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }),
        // Types paystate never meets: accept what JSON can carry.
        _ => true,
    }
}

/// Validates `v` against `schema`; returns every violation found, each
/// with its JSON path.
pub fn validate(schema: &Value, v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, v, "$", &mut errors);
    errors
}

fn check(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else { return };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.contains(v) {
            errors.push(format!("{path}: {v} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(obj) = v {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    errors.push(format!("{path}: missing required field {r}"));
                }
            }
        }
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, child, &format!("{path}.{k}"), errors),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: unexpected field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, s.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(sub, v, path, errors);
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf") {
        if !any.iter().any(|sub| validate(sub, v).is_empty()) {
            errors.push(format!("{path}: matches none of anyOf"));
        }
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let n = one.iter().filter(|sub| validate(sub, v).is_empty()).count();
        if n != 1 {
            errors.push(format!("{path}: matches {n} of oneOf, not exactly one"));
        }
    }
    if let Some(cond) = s.get("if") {
        let branch = if validate(cond, v).is_empty() {
            s.get("then")
        } else {
            s.get("else")
        };
        if let Some(b) = branch {
            check(b, v, path, errors);
        }
    }
}

/// The schemas of one `cln-schemas` folder, by command, notification and hook.
#[derive(Debug, Default, Clone)]
pub struct Schemas {
    commands: HashMap<String, Value>,
    notifications: HashMap<String, Value>,
    hooks: HashMap<String, Value>,
}

fn load_dir(dir: &Path, field: &str) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(name) = v.get(field).and_then(Value::as_str) {
            out.insert(name.to_string(), v.clone());
        }
    }
    out
}

impl Schemas {
    pub fn load(dir: &Path) -> Schemas {
        Schemas {
            commands: load_dir(dir, "rpc"),
            notifications: load_dir(&dir.join("notification"), "notification"),
            hooks: load_dir(&dir.join("hook"), "hook"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    fn part<'a>(map: &'a HashMap<String, Value>, name: &str, part: &str) -> Option<&'a Value> {
        map.get(name).and_then(|s| s.get(part))
    }

    /// A command's named params (positional ones are not checkable here).
    pub fn request(&self, method: &str, params: &Value) -> Vec<String> {
        match (Self::part(&self.commands, method, "request"), params) {
            (Some(s), Value::Object(_)) => validate(s, params),
            _ => vec![],
        }
    }

    pub fn response(&self, method: &str, result: &Value) -> Vec<String> {
        Self::part(&self.commands, method, "response").map_or(vec![], |s| validate(s, result))
    }

    pub fn notification(&self, topic: &str, payload: &Value) -> Vec<String> {
        Self::part(&self.notifications, topic, "response").map_or(vec![], |s| validate(s, payload))
    }

    pub fn hook_request(&self, hook: &str, payload: &Value) -> Vec<String> {
        Self::part(&self.hooks, hook, "request").map_or(vec![], |s| validate(s, payload))
    }

    pub fn hook_response(&self, hook: &str, reply: &Value) -> Vec<String> {
        Self::part(&self.hooks, hook, "response").map_or(vec![], |s| validate(s, reply))
    }
}

/// Every JSON-RPC error object has an integer code and a string message.
pub fn error_object(e: &Value) -> Vec<String> {
    let mut out = vec![];
    if !e.get("code").is_some_and(|c| c.is_i64()) {
        out.push(format!("error without integer code: {e}"));
    }
    if !e.get("message").is_some_and(Value::is_string) {
        out.push(format!("error without string message: {e}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cln_types_and_keywords() {
        let s = json!({"type": "object", "additionalProperties": false, "required": ["h"],
            "properties": {"h": {"type": "hash"}, "n": {"type": "u32"}, "s": {"type": "string", "enum": ["a"]}}});
        assert!(validate(&s, &json!({"h": "ab".repeat(32), "n": 5, "s": "a"})).is_empty());
        assert_eq!(
            validate(&s, &json!({"h": "AB".repeat(32)})).len(),
            1,
            "hashes are lowercase"
        );
        assert_eq!(
            validate(&s, &json!({"h": "ab".repeat(32), "n": -1})).len(),
            1
        );
        assert_eq!(
            validate(&s, &json!({"h": "ab".repeat(32), "x": 1})).len(),
            1
        );
        assert_eq!(validate(&s, &json!({})).len(), 1);
        assert_eq!(
            validate(&s, &json!({"h": "ab".repeat(32), "s": "b"})).len(),
            1
        );
        let scid = json!({"type": "short_channel_id"});
        assert!(validate(&scid, &json!("103x1x0")).is_empty());
        assert!(!validate(&scid, &json!("103x1")).is_empty());
    }
}
