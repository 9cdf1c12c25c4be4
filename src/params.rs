//! Parameter parsing in lightningd's style: one parser for named (object)
//! and positional (array) params, with lightningd's -32602 messages.

use crate::domain::Status;
use crate::error::RpcError;
use cln_rpc::primitives::Sha256;
use serde_json::Value;

/// One parameter of a command, in documented (positional) order.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
}

pub const fn required(name: &'static str) -> Param {
    Param {
        name,
        required: true,
    }
}

pub const fn optional(name: &'static str) -> Param {
    Param {
        name,
        required: false,
    }
}

/// Matches `params` against `spec` and returns one slot per parameter.
/// A JSON `null` counts as absent, as in lightningd. Checks run in
/// lightningd's order: unknown or surplus params, then missing required ones;
/// type checks are left to the typed parsers below, called in spec order.
pub fn collect<'a>(params: &'a Value, spec: &[Param]) -> Result<Vec<Option<&'a Value>>, RpcError> {
    let mut slots: Vec<Option<&Value>> = vec![None; spec.len()];
    match params {
        Value::Object(map) => {
            for (key, value) in map {
                let Some(i) = spec.iter().position(|p| p.name == key) else {
                    return Err(RpcError::invalid_params(format!(
                        "unknown parameter: {key}, this may be caused by a failure to autodetect \
                         key=value-style parameters. Please try using the -k flag and explicit \
                         key=value pairs of parameters."
                    )));
                };
                if !value.is_null() {
                    slots[i] = Some(value);
                }
            }
        }
        Value::Array(items) => {
            if items.len() > spec.len() {
                return Err(RpcError::invalid_params(format!(
                    "too many parameters: got {}, expected {}",
                    items.len(),
                    spec.len()
                )));
            }
            for (slot, value) in slots.iter_mut().zip(items) {
                if !value.is_null() {
                    *slot = Some(value);
                }
            }
        }
        Value::Null => {}
        _ => {
            return Err(RpcError::invalid_params(
                "Expected array or object for params",
            ))
        }
    }
    if let Some(p) = spec
        .iter()
        .zip(&slots)
        .find_map(|(p, s)| (p.required && s.is_none()).then_some(p))
    {
        return Err(RpcError::invalid_params(format!(
            "missing required parameter: {}",
            p.name
        )));
    }
    Ok(slots)
}

/// The token as lightningd quotes it in an error: its JSON text.
fn token(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn invalid(name: &str, what: &str, v: &Value) -> RpcError {
    RpcError::invalid_params(format!("{name}: {what}: invalid token '{}'", token(v)))
}

/// A 32-byte hash in hex, either case (lightningd accepts uppercase).
pub fn hash(name: &str, v: &Value) -> Result<Sha256, RpcError> {
    v.as_str()
        .and_then(parse_hash)
        .ok_or_else(|| invalid(name, "should be a 32 byte hex value", v))
}

pub fn parse_hash(s: &str) -> Option<Sha256> {
    // Checked here so that only 64 ASCII hex digits, either case, get through.
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.to_ascii_lowercase().parse().ok()
}

/// An unsigned integer given as a JSON number or a string of decimal
/// digits, as lightningd's number parsers take the token's text.
fn unsigned(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

/// lightningd's `param_number` (a u32).
pub fn u32_number(name: &str, v: &Value) -> Result<u32, RpcError> {
    unsigned(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(name, "should be an integer", v))
}

/// lightningd's `param_u64`.
pub fn u64_number(name: &str, v: &Value) -> Result<u64, RpcError> {
    unsigned(v).ok_or_else(|| invalid(name, "should be an unsigned 64 bit integer", v))
}

/// Any payment status: `pending`, `complete` or `failed`.
pub fn status(name: &str, v: &Value) -> Result<Status, RpcError> {
    match v.as_str() {
        Some("pending") => Ok(Status::Pending),
        Some("complete") => Ok(Status::Complete),
        Some("failed") => Ok(Status::Failed),
        _ => Err(invalid(name, "should be an invoice status", v)),
    }
}

/// The status a `delpay` may delete: `complete` or `failed`.
pub fn deletable_status(name: &str, v: &Value) -> Result<Status, RpcError> {
    match status(name, v)? {
        Status::Pending => Err(invalid(name, "Cannot delete pending status", v)),
        s => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: [Param; 3] = [
        required("payment_hash"),
        optional("timeout"),
        optional("partid"),
    ];

    fn msg(r: Result<impl std::fmt::Debug, RpcError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, -32602);
        e.message
    }

    #[test]
    fn named_and_positional_fill_the_same_slots() {
        let named = json!({"timeout": 5, "payment_hash": "ab"});
        let positional = json!(["ab", 5]);
        let a = collect(&named, &SPEC).unwrap();
        let b = collect(&positional, &SPEC).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[2], None);
    }

    #[test]
    fn null_counts_as_absent() {
        let params = json!(["ab", null, 3]);
        let slots = collect(&params, &SPEC).unwrap();
        assert_eq!(slots[1], None);
        assert_eq!(
            msg(collect(&json!({"payment_hash": null}), &SPEC)),
            "missing required parameter: payment_hash"
        );
    }

    #[test]
    fn structural_errors_match_lightningd() {
        assert_eq!(
            msg(collect(&json!({}), &SPEC)),
            "missing required parameter: payment_hash"
        );
        assert_eq!(
            msg(collect(&json!(["a", 1, 2, 3, 4]), &SPEC)),
            "too many parameters: got 5, expected 3"
        );
        assert!(
            msg(collect(&json!({"payment_hash": "a", "bogus": 1}), &SPEC)).starts_with(
                "unknown parameter: bogus, this may be caused by a failure to autodetect"
            )
        );
        // An unknown parameter is reported before a missing one.
        assert!(msg(collect(&json!({"bogus": 1}), &SPEC)).starts_with("unknown parameter: bogus"));
        assert_eq!(
            msg(collect(&json!("x"), &SPEC)),
            "Expected array or object for params"
        );
    }

    #[test]
    fn hashes() {
        let lower = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
        let h = hash("payment_hash", &json!(lower)).unwrap();
        assert_eq!(h.to_string(), lower);
        assert_eq!(
            hash("payment_hash", &json!(lower.to_uppercase())).unwrap(),
            h
        );
        assert_eq!(
            msg(hash("payment_hash", &json!("zz"))),
            "payment_hash: should be a 32 byte hex value: invalid token '\"zz\"'"
        );
        assert_eq!(
            msg(hash("payment_hash", &json!(12))),
            "payment_hash: should be a 32 byte hex value: invalid token '12'"
        );
        assert!(hash("h", &json!(&lower[..63])).is_err());
        assert!(hash("h", &json!(format!("{lower}0"))).is_err());
        assert!(hash("h", &json!(format!("{}g", &lower[..63]))).is_err());
        // Multi-byte characters must not be mistaken for hex or panic.
        assert!(hash("h", &json!("é".repeat(32))).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(u32_number("timeout", &json!(5)).unwrap(), 5);
        assert_eq!(u32_number("timeout", &json!("5")).unwrap(), 5);
        assert_eq!(
            msg(u32_number("timeout", &json!(-1))),
            "timeout: should be an integer: invalid token '-1'"
        );
        assert_eq!(
            msg(u32_number("timeout", &json!(1.5))),
            "timeout: should be an integer: invalid token '1.5'"
        );
        assert_eq!(
            msg(u32_number("timeout", &json!("abc"))),
            "timeout: should be an integer: invalid token '\"abc\"'"
        );
        assert!(u32_number("timeout", &json!(4294967296u64)).is_err());
        assert_eq!(u64_number("partid", &json!(u64::MAX)).unwrap(), u64::MAX);
        assert!(u64_number("partid", &json!("18446744073709551616")).is_err());
        assert!(u64_number("partid", &json!("")).is_err());
        assert!(u64_number("partid", &json!("+1")).is_err());
        assert_eq!(
            msg(u64_number("partid", &json!("x"))),
            "partid: should be an unsigned 64 bit integer: invalid token '\"x\"'"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            deletable_status("status", &json!("failed")).unwrap(),
            Status::Failed
        );
        assert_eq!(
            msg(deletable_status("status", &json!("pending"))),
            "status: Cannot delete pending status: invalid token '\"pending\"'"
        );
        assert_eq!(
            msg(deletable_status("status", &json!("invalid_status"))),
            "status: should be an invoice status: invalid token '\"invalid_status\"'"
        );
        assert!(status("status", &json!(3)).is_err());
    }
}
