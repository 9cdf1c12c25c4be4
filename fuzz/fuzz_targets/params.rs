//! Any JSON in any slot of either command's parameters, named or
//! positional: an answer or a -32602 with a message; never a panic, a hang
//! or another code. Input that is not JSON goes in as one string (huge,
//! odd, non-hex).

#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::commands::{delpay, waitsendpay};
use paystate::error::RpcError;
use paystate::params::Mode;
use serde_json::{json, Map, Value};

const WAIT: [&str; 4] = ["payment_hash", "timeout", "partid", "groupid"];
const DEL: [&str; 4] = ["payment_hash", "status", "partid", "groupid"];

fn check<T>(r: Result<T, RpcError>) {
    if let Err(e) = r {
        assert_eq!(e.code, -32602, "{e:?}");
        assert!(!e.message.is_empty());
        assert!(e.data.is_none());
    }
}

fn shapes(v: &Value, names: &[&str; 4]) -> Vec<Value> {
    let mut out = vec![v.clone()];
    // The value in each slot, positionally and by name, beside a valid hash.
    let hash = json!("ab".repeat(32));
    for (i, name) in names.iter().enumerate() {
        let mut arr = vec![hash.clone(), json!("complete"), json!(0), json!(1)];
        arr[i] = v.clone();
        out.push(Value::Array(arr[..=i.max(1)].to_vec()));
        let mut obj = Map::new();
        obj.insert("payment_hash".into(), hash.clone());
        obj.insert((*name).into(), v.clone());
        out.push(Value::Object(obj));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let v = serde_json::from_slice::<Value>(data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()));
    for mode in [Mode::DEVELOPER, Mode::PRODUCTION] {
        for p in shapes(&v, &WAIT) {
            let r = waitsendpay::parse(&p, mode);
            if let (Ok(req), Some(h)) = (&r, p.get("payment_hash").and_then(Value::as_str)) {
                assert_eq!(req.payment_hash.to_string(), h.to_ascii_lowercase());
            }
            check(r);
        }
        for p in shapes(&v, &DEL) {
            check(delpay::parse(&p, mode));
        }
    }
});
