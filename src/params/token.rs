//! A bad parameter's token, quoted as lightningd quotes it.

use serde_json::Value;
use std::fmt::Write;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
