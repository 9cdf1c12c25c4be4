//! lightningd's parameter handling (param.c), as the stand-in's built-in
//! commands need it: named or positional, `null` as absent, unknown and
//! missing parameters, and the typed checks with lightningd's messages.

use serde_json::Value;

pub type Fail = (i64, String);

pub fn invalid(msg: impl Into<String>) -> Fail {
    (-32602, msg.into())
}

/// `spec`: names in positional order, with `true` for required.
pub fn collect(params: &Value, spec: &[(&str, bool)]) -> Result<Vec<Option<Value>>, Fail> {
    let mut out = vec![None; spec.len()];
    match params {
        Value::Object(m) => {
            for (k, v) in m {
                let i = spec.iter().position(|(n, _)| n == k).ok_or_else(|| {
                    invalid(format!(
                        "unknown parameter: {k}, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters."
                    ))
                })?;
                out[i] = Some(v.clone()).filter(|v| !v.is_null());
            }
        }
        Value::Array(a) => {
            if a.len() > spec.len() {
                return Err(invalid(format!(
                    "too many parameters: got {}, expected {}",
                    a.len(),
                    spec.len()
                )));
            }
            for (i, v) in a.iter().enumerate() {
                out[i] = Some(v.clone()).filter(|v| !v.is_null());
            }
        }
        Value::Null => {}
        _ => return Err(invalid("Expected array or object for params")),
    }
    for (i, (name, req)) in spec.iter().enumerate() {
        if *req && out[i].is_none() {
            return Err(invalid(format!("missing required parameter: {name}")));
        }
    }
    Ok(out)
}

fn tok(v: &Value) -> String {
    v.to_string()
}

fn bad(name: &str, what: &str, v: &Value) -> Fail {
    invalid(format!("{name}: {what}: invalid token '{}'", tok(v)))
}

/// `param_sha256`: 64 hex digits, either case; returns lowercase.
pub fn sha256(name: &str, v: &Value) -> Result<String, Fail> {
    match v.as_str() {
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(s.to_ascii_lowercase())
        }
        _ => Err(bad(name, "should be a 32 byte hex value", v)),
    }
}

fn digits(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

pub fn number(name: &str, v: &Value) -> Result<u32, Fail> {
    digits(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(name, "should be an integer", v))
}

pub fn u64(name: &str, v: &Value) -> Result<u64, Fail> {
    digits(v).ok_or_else(|| bad(name, "should be an unsigned 64 bit integer", v))
}

pub fn string(name: &str, v: &Value) -> Result<String, Fail> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(name, "should be a string", v))
}

/// `param_datastore_key`: an array of strings, or one string.
pub fn key(name: &str, v: &Value) -> Result<Vec<String>, Fail> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(name, "should be an array of strings", v)),
        _ => Err(bad(name, "should be an array of strings", v)),
    }
}
