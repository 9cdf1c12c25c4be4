//! `check` of paystate's commands under the stand-in, which passes it on
//! as lightningd does to a plugin whose manifest says `cancheck`: each
//! answered as the built-in's own check answers (`check waitsendpay`,
//! `check delpay`), nothing run.

mod common;
use common::*;
use serde_json::{json, Value};

fn named(command: &str, params: &Value) -> Value {
    match params {
        Value::Object(m) => {
            let mut m = m.clone();
            m.insert("command_to_check".into(), json!(command));
            Value::Object(m)
        }
        Value::Array(items) => {
            let mut all = vec![json!(command)];
            all.extend(items.iter().cloned());
            Value::Array(all)
        }
        _ => unreachable!(),
    }
}

/// A check's answer, the command's name in a result left out.
async fn checked(ld: &lightningd_standin::Lightningd, command: &str, params: &Value) -> Value {
    match ld.call("check", named(command, params)).await.unwrap() {
        Ok(r) => {
            assert_eq!(r, json!({ "command_to_check": command }));
            json!("ok")
        }
        Err(e) => e,
    }
}

#[tokio::test]
async fn paystates_check_is_the_builtins() {
    let ld = start_with(false).await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    let f = pending(&ld, &hash(2), 1, 0);
    ld.fail(&f, Some(route_failure())).await;
    until_ledger_has(&ld, 2).await;
    until_datastore_matches_node(&ld).await;
    let (h, bad) = (hash(1), hash(2));
    let sets = [
        json!([h]),
        json!([h, "x"]),
        json!({"payment_hash": h, "timeout": 0, "partid": 0, "groupid": 1}),
        json!({"payment_hash": "zz"}),
        json!([]),
        json!([h, 1, 2, 3, 4]),
        json!({"payment_hash": h, "bogus": 1}),
    ];
    for p in &sets {
        let want = checked(&ld, "waitsendpay", p).await;
        assert_eq!(checked(&ld, "paystate-waitsendpay", p).await, want, "{p}");
    }
    let sets = [
        json!([h, "complete"]),
        json!([h, "failed"]),
        json!([bad, "failed", 0, 1]),
        json!([bad, "failed", 0, 2]),
        json!([h, "pending"]),
        json!([h, "complete", 0]),
        json!({"payment_hash": hash(9), "status": "complete"}),
        json!({"status": "complete"}),
    ];
    let mut kinds = (0, 0);
    for p in &sets {
        let want = checked(&ld, "delpay", p).await;
        assert_eq!(checked(&ld, "paystate-delpay", p).await, want, "{p}");
        if want == json!("ok") {
            kinds.0 += 1
        } else {
            kinds.1 += 1
        }
    }
    assert!(kinds.0 >= 2 && kinds.1 >= 4, "{kinds:?}");
    assert_eq!(ld.parts().len(), 2, "nothing deleted");
    until_datastore_matches_node(&ld).await;
    assert_eq!(datastore_keys(&ld).len(), 2, "no record deleted");
    assert!(!ld
        .logs()
        .iter()
        .any(|l| l.message.contains("does not support check")));
    ld.assert_no_violations();
}
