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

use crate::error::RpcError;
use serde_json::Value;

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

/// One parameter of a command and where its value goes: the spec entry
/// that names a parameter also reads it into the command's struct, so no
/// value can land in another's field whatever the order of the spec.
pub struct Field<R> {
    pub param: Param,
    /// Reads the value (its name given, for lightningd's messages) into
    /// the command's struct.
    pub read: fn(&mut R, Mode, &'static str, &Value) -> Result<(), RpcError>,
}

impl<R> Field<R> {
    pub const fn required(
        name: &'static str,
        read: fn(&mut R, Mode, &'static str, &Value) -> Result<(), RpcError>,
    ) -> Self {
        Field {
            param: required(name),
            read,
        }
    }

    pub const fn optional(
        name: &'static str,
        read: fn(&mut R, Mode, &'static str, &Value) -> Result<(), RpcError>,
    ) -> Self {
        Field {
            param: optional(name),
            read,
        }
    }
}

/// A [`Field`] that reads parameter `$name` with `$read` (a values
/// reader: `(mode, name, value) -> Result<T>`) into `Some` of the
/// struct's `$field`: `field!(required "payment_hash" => payment_hash:
/// params::hash)`.
#[macro_export]
macro_rules! field {
    ($kind:ident $name:literal => $field:ident : $read:path) => {
        $crate::params::Field::$kind($name, |r, m, n, v| {
            r.$field = Some($read(m, n, v)?);
            Ok(())
        })
    };
}

/// A spec entry: a bare parameter, or a [`Field`].
pub trait Spec {
    fn param(&self) -> Param;
}

impl Spec for Param {
    fn param(&self) -> Param {
        *self
    }
}

impl<R> Spec for Field<R> {
    fn param(&self) -> Param {
        self.param
    }
}

/// The command's parameters, read into `R` by the walk: each given value by
/// its own field's reader, in lightningd's order. After it, every required
/// parameter has been read.
pub fn fill<R: Default>(params: &Value, mode: Mode, spec: &[Field<R>]) -> Result<R, RpcError> {
    let mut r = R::default();
    walk(params, spec, |i, v| {
        (spec[i].read)(&mut r, mode, spec[i].param.name, v)
    })?;
    Ok(r)
}

/// Walks `params` as lightningd's `param()` does, handing each given value
/// to `take(index into spec, value)` in request order; the first error,
/// whether `take`'s or the walk's own, ends the walk. After a successful
/// walk every required parameter has been taken.
pub fn walk<S: Spec>(
    params: &Value,
    spec: &[S],
    mut take: impl FnMut(usize, &Value) -> Result<(), RpcError>,
) -> Result<(), RpcError> {
    let mut given = vec![false; spec.len()];
    match params {
        Value::Object(members) => {
            for (name, value) in members {
                let Some(i) = spec.iter().position(|p| p.param().name == name) else {
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
    match spec
        .iter()
        .zip(&given)
        .find(|(p, g)| p.param().required && !**g)
    {
        Some((p, _)) => Err(RpcError::invalid_params(format!(
            "missing required parameter: {}",
            p.param().name
        ))),
        None => Ok(()),
    }
}

mod token;
mod values;

pub use token::token;
pub use values::{
    boolean, deletable_status, hash, index, parse_hash, status, u32_number, u32_value, u64_number,
};

/// lightningd's `command_fail_badparam`.
pub fn invalid(mode: Mode, name: &str, what: &str, v: &Value) -> RpcError {
    if mode.developer {
        RpcError::invalid_params(format!("{name}: {what}: invalid token '{}'", token(v)))
    } else {
        log::info!("Invalid parameter {name} ({what}): token '{}'", token(v));
        RpcError::invalid_params(format!(
            "{name}: {what}: invalid token (see logs for details)"
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: [Param; 3] = [
        required("payment_hash"),
        optional("timeout"),
        optional("partid"),
    ];
    pub(crate) const DEV: Mode = Mode::DEVELOPER;

    pub(crate) fn msg(r: Result<impl std::fmt::Debug, RpcError>) -> String {
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
}
