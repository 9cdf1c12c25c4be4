//! Parameter parsing in lightningd's style (`common/json_param.c`): one
//! walk for named (object) and positional (array) params, checking in
//! lightningd's order and answering with its -32602 messages, in developer
//! and in production mode.
//!
//! The order matters because lightningd reports the first problem it meets:
//! - named: members in the order the request gives them; an unknown name
//!   fails when it is reached, a known one is parsed when it is reached (a
//!   `null` value too: it is a bad token, not an absent one);
//! - positional: elements in order, `null` skipped (absent); `too many
//!   parameters` only when the element past the last parameter is reached;
//! - then the first missing required parameter, in documented order;
//! - the command's own checks come after (in the commands).

use crate::domain::Status;
use crate::error::RpcError;
use crate::node::Index;
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::fmt::Write;

/// How the lightningd paystate runs in checks parameters, where releases
/// differ: whether a bad token is shown (`developer`), and how unsigned
/// integers are read (`numbers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// lightningd started with `--developer` quotes a bad parameter's token
    /// in the error; without it (as operators run it) the error says
    /// `invalid token (see logs for details)` and the token goes to the log
    /// only, because clients have echoed secrets back to users.
    pub developer: bool,
    pub numbers: Numbers,
}

/// How a release reads an unsigned integer (`json_to_u64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Numbers {
    /// `str_to_u64`: decimal digits only (master after v26.06).
    #[default]
    Digits,
    /// `strtoull(s, &end, 0)`, the whole token read, only an overflow
    /// refused (v26.06.x and every release before): leading spaces, a sign
    /// (`-1` wraps to 2^64-1), `0x` hex and leading-zero octal are taken.
    Strtoull,
}

impl Default for Mode {
    fn default() -> Self {
        Mode::PRODUCTION
    }
}

impl Mode {
    pub const DEVELOPER: Mode = Mode {
        developer: true,
        numbers: Numbers::Digits,
    };
    pub const PRODUCTION: Mode = Mode {
        developer: false,
        numbers: Numbers::Digits,
    };

    /// lightningd starts a plugin with `--developer` on its command line
    /// when it runs in developer mode (`plugin_send_getmanifest`).
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Mode {
        match args.into_iter().any(|a| a == "--developer") {
            true => Mode::DEVELOPER,
            false => Mode::PRODUCTION,
        }
    }

    pub fn with_numbers(self, numbers: Numbers) -> Mode {
        Mode { numbers, ..self }
    }
}

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

/// Walks `params` as lightningd's `param()` does, handing each given value
/// to `take(index into spec, value)` in request order; the first error,
/// whether `take`'s or the walk's own, ends the walk. After a successful
/// walk every required parameter has been taken.
pub fn walk(
    params: &Value,
    spec: &[Param],
    mut take: impl FnMut(usize, &Value) -> Result<(), RpcError>,
) -> Result<(), RpcError> {
    let mut given = vec![false; spec.len()];
    match params {
        Value::Object(members) => {
            for (name, value) in members {
                let Some(i) = spec.iter().position(|p| p.name == name) else {
                    return Err(RpcError::invalid_params(format!(
                        "unknown parameter: {name}, this may be caused by a failure to autodetect \
                         key=value-style parameters. Please try using the -k flag and explicit \
                         key=value pairs of parameters."
                    )));
                };
                // Unreachable through serde's map (it keeps one of each
                // name), kept for lightningd's word should that change.
                if given[i] {
                    return Err(RpcError::invalid_params(format!(
                        "duplicate json names: {name}"
                    )));
                }
                given[i] = true;
                take(i, value)?;
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                if i == spec.len() {
                    return Err(RpcError::invalid_params(format!(
                        "too many parameters: got {}, expected {}",
                        items.len(),
                        spec.len()
                    )));
                }
                if !value.is_null() {
                    given[i] = true;
                    take(i, value)?;
                }
            }
        }
        _ => {
            return Err(RpcError::invalid_params(
                "Expected array or object for params",
            ))
        }
    }
    match spec.iter().zip(&given).find(|(p, g)| p.required && !**g) {
        Some((p, _)) => Err(RpcError::invalid_params(format!(
            "missing required parameter: {}",
            p.name
        ))),
        None => Ok(()),
    }
}

/// lightningd's `command_fail_badparam`.
fn invalid(mode: Mode, name: &str, what: &str, v: &Value) -> RpcError {
    if mode.developer {
        RpcError::invalid_params(format!("{name}: {what}: invalid token '{}'", token(v)))
    } else {
        log::info!("Invalid parameter {name} ({what}): token '{}'", token(v));
        RpcError::invalid_params(format!(
            "{name}: {what}: invalid token (see logs for details)"
        ))
    }
}

/// The token as lightningd quotes it. lightningd quotes the client's own
/// text; paystate sees the parsed value, with numbers as written, so it
/// writes strings, arrays and objects back as pyln-client writes them
/// (Python's `json.dumps` with `ensure_ascii=False`: `", "` and `": "`
/// between items): exact for those clients, the same value in other
/// spelling for others (README, "Differences").
pub fn token(v: &Value) -> String {
    let mut out = String::new();
    write_token(&mut out, v);
    out
}

fn write_token(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // As the client wrote it (serde_json's `arbitrary_precision`).
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_token(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_string(out, k);
                out.push_str(": ");
                write_token(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `json.dumps` of a string (`ensure_ascii=False`).
fn write_python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

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

/// lightningd's `param_number` (a u32).
pub fn u32_number(mode: Mode, name: &str, v: &Value) -> Result<u32, RpcError> {
    unsigned(mode.numbers, v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(mode, name, "should be an integer", v))
}

/// lightningd's `param_u32`.
pub fn u32_value(mode: Mode, name: &str, v: &Value) -> Result<u32, RpcError> {
    unsigned(mode.numbers, v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(mode, name, "should be an unsigned 32 bit integer", v))
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
    use serde_json::json;

    const SPEC: [Param; 3] = [
        required("payment_hash"),
        optional("timeout"),
        optional("partid"),
    ];
    const DEV: Mode = Mode::DEVELOPER;

    fn msg(r: Result<impl std::fmt::Debug, RpcError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, -32602);
        assert_eq!(e.data, None);
        e.message
    }

    /// Walks with number checks on slots 1 and 2, recording the order.
    fn walked(params: Value) -> Result<Vec<usize>, RpcError> {
        let mut seen = vec![];
        walk(&params, &SPEC, |i, v| {
            seen.push(i);
            if i > 0 {
                u64_number(DEV, SPEC[i].name, v)?;
            }
            Ok(())
        })
        .map(|_| seen)
    }

    #[test]
    fn named_members_are_taken_in_request_order() {
        assert_eq!(
            walked(json!({"partid": 1, "payment_hash": "x"})).unwrap(),
            [2, 0]
        );
        // The bad value is reported before the unknown name behind it ...
        assert!(msg(walked(json!({"partid": true, "bogus": 1}))).starts_with("partid: "));
        // ... and the unknown name before the bad value behind it.
        assert!(msg(walked(json!({"bogus": 1, "partid": true})))
            .starts_with("unknown parameter: bogus"));
        // Missing required only once every given member passed.
        assert!(msg(walked(json!({"timeout": "x"}))).starts_with("timeout: "));
        assert_eq!(
            msg(walked(json!({"timeout": 1}))),
            "missing required parameter: payment_hash"
        );
    }

    #[test]
    fn a_named_null_is_a_bad_token_not_an_absent_one() {
        assert_eq!(
            msg(walked(json!({"payment_hash": "x", "timeout": null}))),
            "timeout: should be an unsigned 64 bit integer: invalid token 'null'"
        );
    }

    #[test]
    fn positional_surplus_is_reported_only_when_reached() {
        assert!(msg(walked(json!(["h", true, 1, 2, 3]))).starts_with("timeout: "));
        assert_eq!(
            msg(walked(json!(["h", 1, 2, 3]))),
            "too many parameters: got 4, expected 3"
        );
        assert_eq!(walked(json!(["h", null, 3])).unwrap(), [0, 2]);
        assert_eq!(
            msg(walked(json!([null, 1]))),
            "missing required parameter: payment_hash"
        );
        assert_eq!(
            msg(walked(json!("x"))),
            "Expected array or object for params"
        );
        assert_eq!(
            msg(walked(json!(null))),
            "Expected array or object for params"
        );
    }

    #[test]
    fn production_mode_hides_the_token() {
        assert_eq!(
            msg(u64_number(Mode::PRODUCTION, "partid", &json!("secret"))),
            "partid: should be an unsigned 64 bit integer: invalid token (see logs for details)"
        );
        assert_eq!(
            Mode::from_args(["paystate".into(), "--developer".into()]),
            DEV
        );
        assert_eq!(Mode::from_args(["paystate".into()]), Mode::PRODUCTION);
    }

    #[test]
    fn tokens_are_quoted_as_clients_write_them() {
        for (v, t) in [
            (json!({"x": 1, "y": [1, "a"]}), r#"{"x": 1, "y": [1, "a"]}"#),
            (json!([]), "[]"),
            (json!("é\"\n\u{1}\u{1F600}"), "\"é\\\"\\n\\u0001\u{1F600}\""),
            (json!(-12), "-12"),
            (json!(true), "true"),
        ] {
            assert_eq!(token(&v), t, "{v}");
        }
        // Numbers as the client wrote them, whatever the client.
        for t in [
            "7.294452894392176",
            "1.2e-05",
            "123456.0",
            "18446744073709551616",
            "-1034180727726164116201",
            "2.50",
            "[1e+16, {\"a\": 0.1000}]",
        ] {
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(token(&v), t);
        }
        // serde_json spells an exponent `e` with its sign.
        let v: Value = serde_json::from_str("1E16").unwrap();
        assert_eq!(token(&v), "1e+16");
    }

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
