//! The values lightningd's parameter parsers read: hashes, numbers (as
//! the release reads them), statuses, indexes.

use super::{invalid, Mode, Numbers};
use crate::domain::Status;
use crate::error::RpcError;
use crate::node::Index;
use cln_rpc::primitives::Sha256;
use serde_json::Value;

/// The text lightningd's parsers read: a string's contents, any other
/// token's JSON text (so `12` is "12", and an object never parses).
fn text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) if !n.is_f64() => Some(n.to_string().into()),
        _ => None,
    }
}

/// `param_sha256`: the token's text hex-decodes to 32 bytes (either case).
pub fn hash(mode: Mode, name: &str, v: &Value) -> Result<Sha256, RpcError> {
    text(v)
        .and_then(|s| parse_hash(&s))
        .ok_or_else(|| invalid(mode, name, "should be a 32 byte hex value", v))
}

pub fn parse_hash(s: &str) -> Option<Sha256> {
    // Checked here so that only 64 ASCII hex digits, either case, get through.
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    s.to_ascii_lowercase().parse().ok()
}

/// lightningd's `json_to_u64`, as the release reads it.
fn unsigned(numbers: Numbers, v: &Value) -> Option<u64> {
    let s = text(v)?;
    match numbers {
        // `str_to_u64`: decimal digits only, no sign, no overflow.
        Numbers::Digits => {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        Numbers::Strtoull => strtoull(&s),
    }
}

/// glibc's `strtoull(s, &end, 0)` where `end` must reach the token's end:
/// an empty token reads as 0 (no digits leave `end` at the start, which is
/// its end), and only an overflow (`ERANGE`) is refused.
fn strtoull(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let mut i = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(b.len());
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let hex = b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    let (radix, start) = match (hex, b.get(i)) {
        (true, _) => (16, i + 2),
        (false, Some(b'0')) => (8, i),
        _ => (10, i),
    };
    let digits = &s[start..];
    let n = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if n == 0 {
        return s.is_empty().then_some(0);
    }
    if start + n != s.len() {
        return None;
    }
    let v = u64::from_str_radix(&digits[..n], radix).ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// A u32 read as `json_to_u32` reads it, or `what` is wrong with it.
fn u32_as(mode: Mode, name: &str, what: &str, v: &Value) -> Result<u32, RpcError> {
    unsigned(mode.numbers, v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(mode, name, what, v))
}

/// lightningd's `param_number` (a u32).
pub fn u32_number(mode: Mode, name: &str, v: &Value) -> Result<u32, RpcError> {
    u32_as(mode, name, "should be an integer", v)
}

/// lightningd's `param_u32`.
pub fn u32_value(mode: Mode, name: &str, v: &Value) -> Result<u32, RpcError> {
    u32_as(mode, name, "should be an unsigned 32 bit integer", v)
}

/// lightningd's `param_index`: `created`, `updated` or `deleted`.
pub fn index(mode: Mode, name: &str, v: &Value) -> Result<Index, RpcError> {
    match text(v).as_deref() {
        Some("created") => Ok(Index::Created),
        Some("updated") => Ok(Index::Updated),
        Some("deleted") => Ok(Index::Deleted),
        _ => Err(invalid(mode, name, "unknown index", v)),
    }
}

/// lightningd's `param_u64`.
pub fn u64_number(mode: Mode, name: &str, v: &Value) -> Result<u64, RpcError> {
    unsigned(mode.numbers, v)
        .ok_or_else(|| invalid(mode, name, "should be an unsigned 64 bit integer", v))
}

/// Any payment status: `pending`, `complete` or `failed`.
pub fn status(mode: Mode, name: &str, v: &Value) -> Result<Status, RpcError> {
    match text(v).as_deref() {
        Some("pending") => Ok(Status::Pending),
        Some("complete") => Ok(Status::Complete),
        Some("failed") => Ok(Status::Failed),
        _ => Err(invalid(mode, name, "should be an invoice status", v)),
    }
}

/// lightningd's `param_bool`: the JSON literals `true` and `false` only.
pub fn boolean(mode: Mode, name: &str, v: &Value) -> Result<bool, RpcError> {
    v.as_bool()
        .ok_or_else(|| invalid(mode, name, "should be 'true' or 'false'", v))
}

/// The status a `delpay` may delete: `complete` or `failed`.
pub fn deletable_status(mode: Mode, name: &str, v: &Value) -> Result<Status, RpcError> {
    match status(mode, name, v)? {
        Status::Pending => Err(invalid(mode, name, "Cannot delete pending status", v)),
        s => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::{msg, DEV};
    use serde_json::json;

    #[test]
    fn hashes() {
        let lower = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
        let h = hash(DEV, "payment_hash", &json!(lower)).unwrap();
        assert_eq!(h.to_string(), lower);
        assert_eq!(
            hash(DEV, "payment_hash", &json!(lower.to_uppercase())).unwrap(),
            h
        );
        assert_eq!(
            msg(hash(DEV, "payment_hash", &json!("zz"))),
            "payment_hash: should be a 32 byte hex value: invalid token '\"zz\"'"
        );
        assert_eq!(
            msg(hash(DEV, "payment_hash", &json!(12))),
            "payment_hash: should be a 32 byte hex value: invalid token '12'"
        );
        assert!(hash(DEV, "h", &json!(&lower[..63])).is_err());
        assert!(hash(DEV, "h", &json!(format!("{lower}0"))).is_err());
        assert!(hash(DEV, "h", &json!(format!("{}g", &lower[..63]))).is_err());
        // Multi-byte characters must not be mistaken for hex or panic.
        assert!(hash(DEV, "h", &json!("é".repeat(32))).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(u32_number(DEV, "timeout", &json!(5)).unwrap(), 5);
        assert_eq!(u32_number(DEV, "timeout", &json!("5")).unwrap(), 5);
        assert_eq!(u32_number(DEV, "timeout", &json!("007")).unwrap(), 7);
        assert_eq!(
            msg(u32_number(DEV, "timeout", &json!(-1))),
            "timeout: should be an integer: invalid token '-1'"
        );
        assert_eq!(
            msg(u32_number(DEV, "timeout", &json!(1.5))),
            "timeout: should be an integer: invalid token '1.5'"
        );
        assert_eq!(
            msg(u32_number(DEV, "timeout", &json!("abc"))),
            "timeout: should be an integer: invalid token '\"abc\"'"
        );
        assert!(u32_number(DEV, "timeout", &json!(4294967296u64)).is_err());
        assert_eq!(
            u64_number(DEV, "partid", &json!(u64::MAX)).unwrap(),
            u64::MAX
        );
        assert!(u64_number(DEV, "partid", &json!("18446744073709551616")).is_err());
        assert!(u64_number(DEV, "partid", &json!("")).is_err());
        assert!(u64_number(DEV, "partid", &json!("+1")).is_err());
        assert!(u64_number(DEV, "partid", &json!(1.0)).is_err());
    }

    #[test]
    fn numbers_as_releases_up_to_v26_06_read_them() {
        let old = DEV.with_numbers(Numbers::Strtoull);
        for (token, read) in [
            (json!(-1), Some(u64::MAX)),
            (json!("-2"), Some(u64::MAX - 1)),
            (json!(" 5"), Some(5)),
            (json!("+5"), Some(5)),
            (json!("0x1f"), Some(31)),
            (json!("010"), Some(8)),
            (json!("007"), Some(7)),
            (json!(""), Some(0)),
            (json!("08"), None),
            (json!("0x"), None),
            (json!("5 "), None),
            (json!(" "), None),
            (json!("-"), None),
            (json!("18446744073709551616"), None),
            (json!(1.5), None),
        ] {
            assert_eq!(u64_number(old, "partid", &token).ok(), read, "{token}");
        }
        assert!(u32_number(old, "timeout", &json!(-1)).is_err());
        assert!(u64_number(DEV, "partid", &json!(-1)).is_err());
    }

    #[test]
    fn booleans_are_json_literals() {
        assert!(boolean(DEV, "reverse", &json!(true)).unwrap());
        assert!(!boolean(DEV, "reverse", &json!(false)).unwrap());
        assert_eq!(
            msg(boolean(DEV, "reverse", &json!("true"))),
            "reverse: should be 'true' or 'false': invalid token '\"true\"'"
        );
        assert!(boolean(DEV, "reverse", &json!(1)).is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(
            deletable_status(DEV, "status", &json!("failed")).unwrap(),
            Status::Failed
        );
        assert_eq!(
            msg(deletable_status(DEV, "status", &json!("pending"))),
            "status: Cannot delete pending status: invalid token '\"pending\"'"
        );
        assert_eq!(
            msg(deletable_status(DEV, "status", &json!("invalid_status"))),
            "status: should be an invoice status: invalid token '\"invalid_status\"'"
        );
        assert!(status(DEV, "status", &json!(3)).is_err());
    }
}
