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

/// `param_u32`.
pub fn u32(name: &str, v: &Value) -> Result<u32, Fail> {
    digits(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(name, "should be an unsigned 32 bit integer", v))
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

/// One parameter token as lightningd's parsers see it: the client's own
/// text (jsmn tokens point into the request), never a re-serialization.
#[derive(Debug, Clone, Copy)]
pub struct Tok<'a>(&'a str);

impl<'a> Tok<'a> {
    pub fn is_null(&self) -> bool {
        self.0 == "null"
    }

    /// What the parsers read: a string's contents (undecoded, as jsmn
    /// leaves them), any other token's text.
    pub fn text(&self) -> &'a str {
        match self.0.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(inner) => inner,
            None => self.0,
        }
    }
}

/// `command_fail_badparam`: the token quoted in developer mode only.
pub fn badparam(developer: bool, name: &str, what: &str, tok: Tok) -> Fail {
    match developer {
        true => invalid(format!("{name}: {what}: invalid token '{}'", tok.0)),
        false => invalid(format!(
            "{name}: {what}: invalid token (see logs for details)"
        )),
    }
}

/// An object's members in the order written, each as its raw text.
pub struct Members<'a>(pub Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    out.push(kv);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `param()` of `common/json_param.c` over the raw `params` text: named
/// members in request order (unknown and duplicate names failing when
/// reached, a null handed to the parser), positional elements in order
/// (null skipped, surplus failing when reached), then missing required.
pub fn walk<'a>(
    raw: &'a str,
    spec: &[(&str, bool)],
    mut take: impl FnMut(usize, Tok<'a>) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let mut given = vec![false; spec.len()];
    if let Ok(Members(members)) = serde_json::from_str::<Members>(raw) {
        for (name, v) in members {
            let i = spec.iter().position(|(n, _)| *n == name).ok_or_else(|| {
                invalid(format!(
                    "unknown parameter: {name}, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters."
                ))
            })?;
            if given[i] {
                return Err(invalid(format!("duplicate json names: {name}")));
            }
            given[i] = true;
            take(i, Tok(v.get()))?;
        }
    } else if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(raw) {
        for (i, v) in items.iter().enumerate() {
            if i == spec.len() {
                return Err(invalid(format!(
                    "too many parameters: got {}, expected {}",
                    items.len(),
                    spec.len()
                )));
            }
            let tok = Tok(v.get());
            if !tok.is_null() {
                given[i] = true;
                take(i, tok)?;
            }
        }
    } else {
        return Err(invalid("Expected array or object for params"));
    }
    match spec.iter().zip(&given).find(|((_, req), g)| *req && !**g) {
        Some(((name, _), _)) => Err(invalid(format!("missing required parameter: {name}"))),
        None => Ok(()),
    }
}

/// `str_to_u64` over a token's text.
fn tok_u64(tok: Tok) -> Option<u64> {
    let s = tok.text();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `param_sha256`: the text hex-decodes to 32 bytes; returned lowercase.
pub fn param_sha256(developer: bool, name: &str, tok: Tok) -> Result<String, Fail> {
    let s = tok.text();
    match s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => Ok(s.to_ascii_lowercase()),
        false => Err(badparam(
            developer,
            name,
            "should be a 32 byte hex value",
            tok,
        )),
    }
}

/// `param_number`: a u32.
pub fn param_number(developer: bool, name: &str, tok: Tok) -> Result<u32, Fail> {
    tok_u64(tok)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| badparam(developer, name, "should be an integer", tok))
}

/// `param_u64`.
pub fn param_u64(developer: bool, name: &str, tok: Tok) -> Result<u64, Fail> {
    tok_u64(tok)
        .ok_or_else(|| badparam(developer, name, "should be an unsigned 64 bit integer", tok))
}
