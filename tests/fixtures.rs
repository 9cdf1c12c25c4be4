//! Replays the exchanges recorded from a real lightningd
//! (`../shared/cln-fixtures`) against the stand-in's built-in commands and
//! against paystate, comparing every answer field for field. Allowed
//! differences: fields that depend on time or update order (`updated_index`,
//! `completed_at`).

mod common;
use lightningd_standin::{shared_dir, Lightningd, PartFailure, PartSpec};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// A recording; every test that reads one is ignored where `../shared`
/// is absent (build.rs).
fn load(name: &str) -> Value {
    let dir = shared_dir().expect("../shared/cln-fixtures");
    let text = std::fs::read_to_string(dir.join("cln-fixtures").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

type PartId = (String, u64, u64);

fn part_id(p: &Value) -> PartId {
    (
        p["payment_hash"].as_str().unwrap().to_string(),
        p["groupid"].as_u64().unwrap_or(1),
        p["partid"].as_u64().unwrap_or(0),
    )
}

/// The outcome of each part, from the notifications in a protocol recording.
fn outcomes(protocol: &Value) -> HashMap<PartId, (String, Value)> {
    let mut out = HashMap::new();
    for m in protocol.as_array().unwrap() {
        let msg = &m["msg"];
        for topic in ["sendpay_success", "sendpay_failure"] {
            if msg["method"] == topic {
                let payload = msg["params"][topic].clone();
                let body = if topic == "sendpay_failure" {
                    &payload["data"]
                } else {
                    &payload
                };
                out.insert(part_id(body), (topic.to_string(), payload.clone()));
            }
        }
    }
    out
}

fn failure_of(payload: &Value) -> PartFailure {
    let details: Map<String, Value> = payload["data"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| paystate::domain::FAILURE_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    PartFailure {
        code: payload["code"].as_i64().unwrap(),
        message: payload["message"].as_str().unwrap().to_string(),
        details,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The stand-in's built-ins answer (no plugin): must equal lightningd.
    Builtin,
    /// paystate answers through the hook.
    Paystate,
}

/// Removes what depends on time or update order.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.shift_remove("updated_index");
            m.shift_remove("completed_at");
            m.values_mut().for_each(normalize);
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

struct Replay {
    ld: Lightningd,
    mode: Mode,
    outcomes: HashMap<PartId, (String, Value)>,
    compared: usize,
}

impl Replay {
    async fn resolve(&self, id: &PartId) {
        let (topic, payload) = self
            .outcomes
            .get(id)
            .unwrap_or_else(|| panic!("no recorded outcome for {id:?}"));
        if topic == "sendpay_success" {
            self.ld
                .succeed(id, payload["payment_preimage"].as_str().unwrap())
                .await;
        } else {
            self.ld.fail(id, Some(failure_of(payload))).await;
        }
    }

    fn is_pending(&self, id: &PartId) -> bool {
        self.ld
            .part(id)
            .is_some_and(|p| p.status == lightningd_standin::table::Status::Pending)
    }

    /// Notifications are handled asynchronously: wait until the ledger
    /// holds every part the node shows terminal.
    async fn ledger_settled(&self) {
        if self.mode != Mode::Paystate {
            return;
        }
        let want: Vec<PartId> = self
            .ld
            .parts()
            .iter()
            .filter(|p| p.status != lightningd_standin::table::Status::Pending)
            .map(|p| p.key())
            .collect();
        for _ in 0..500 {
            let r = self
                .ld
                .call("paystate-listsendpays", json!({}))
                .await
                .unwrap()
                .unwrap();
            let have: Vec<PartId> = r["payments"]
                .as_array()
                .unwrap()
                .iter()
                .map(part_id)
                .collect();
            if want.iter().all(|k| have.contains(k)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the ledger never caught up with the node");
    }

    async fn call(&self, id: Value, method: &str, params: Value) -> Value {
        let mut c = self.ld.client().await.unwrap();
        match c.call_with_id(id, method, params).await.unwrap() {
            Ok(r) => json!({ "result": r }),
            Err(e) => json!({ "error": e }),
        }
    }

    async fn entry(&mut self, n: usize, e: &Value) {
        let note = e["note"].as_str().unwrap();
        let method = e["request"]["method"].as_str().unwrap();
        let params = e["request"]["params"].clone();
        let expected = e["response"].clone();
        match method {
            "sendpay" => {
                let body = expected.get("result").unwrap_or(&expected["error"]["data"]);
                let id = part_id(body);
                self.ld.create_part(PartSpec {
                    payment_hash: id.0.clone(),
                    groupid: id.1,
                    partid: id.2,
                    amount_msat: body["amount_msat"].as_u64(),
                    amount_sent_msat: body["amount_sent_msat"].as_u64().unwrap(),
                    destination: body["destination"].as_str().map(str::to_owned),
                    label: body["label"].as_str().map(str::to_owned),
                    bolt11: body["bolt11"].as_str().map(str::to_owned),
                    created_at: body["created_at"].as_u64(),
                    ..Default::default()
                });
                // A self-payment resolves within sendpay.
                if body["status"] == "complete" || expected.get("error").is_some() {
                    self.resolve(&id).await;
                    self.ledger_settled().await;
                }
                return;
            }
            // Content-dependent (sizes of other keys), or lightningd-only.
            "datastoreusage" | "wait" | "getinfo" => return,
            "listsendpays" if params.get("bolt11").is_some() => return, // needs bolt11 decoding
            _ => {}
        }
        // The recording plugin's own call: made with its id on the socket.
        let (id, method, params, expected) = if method == "recorder-selfcall" {
            let inner = &expected["result"]["inner"];
            let resp = if inner.get("result").is_some() {
                json!({"result": inner["result"]})
            } else {
                json!({"error": inner["error"]})
            };
            (
                inner["id"].clone(),
                params["method"].as_str().unwrap().to_string(),
                params["params"].clone(),
                resp,
            )
        } else {
            (
                json!(format!("replay:{method}#{n}")),
                method.to_string(),
                params,
                expected,
            )
        };
        if method == "listsendpays" {
            // Parts the recording shows terminal by now have been resolved.
            for p in expected["result"]["payments"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let id = part_id(p);
                if p["status"] != "pending" && self.is_pending(&id) {
                    self.resolve(&id).await;
                }
            }
            self.ledger_settled().await;
        }
        // A blocking waitsendpay on a pending part: resolve it while it waits.
        let mut release = None;
        let timed_out = expected["error"]["code"] == 200;
        if method == "waitsendpay"
            && params.get("timeout").and_then(Value::as_u64) != Some(0)
            && !timed_out
        {
            let ids: Vec<PartId> = self
                .outcomes
                .keys()
                .filter(|k| k.0 == params["payment_hash"])
                .cloned()
                .collect();
            let wanted = params.get("partid").and_then(Value::as_u64).unwrap_or(0);
            if let Some(id) = ids
                .into_iter()
                .find(|k| k.2 == wanted && self.is_pending(k))
            {
                release = Some(id);
            }
        }
        let actual = match release {
            None => self.call(id, &method, params).await,
            Some(part) => {
                let mut c = self.ld.client().await.unwrap();
                let m = method.clone();
                let waiting =
                    tokio::spawn(async move { c.call_with_id(id, &m, params).await.unwrap() });
                tokio::time::sleep(Duration::from_millis(150)).await;
                assert!(
                    !waiting.is_finished(),
                    "{note}: answered before the part resolved"
                );
                self.resolve(&part).await;
                match waiting.await.unwrap() {
                    Ok(r) => json!({ "result": r }),
                    Err(e) => json!({ "error": e }),
                }
            }
        };
        let mut want = expected;
        let mut got = actual;
        normalize(&mut want);
        normalize(&mut got);
        assert_eq!(got, want, "entry {n} ({note})");
        self.compared += 1;
    }
}

async fn replay(rpc: &str, protocol: &str, mode: Mode) {
    let (entries, proto) = (load(rpc), load(protocol));
    let mut opts = common::options();
    opts.plugin_options
        .insert("paystate-takeover".into(), json!(true));
    let ld = match mode {
        Mode::Builtin => Lightningd::new(opts).await.unwrap(),
        Mode::Paystate => Lightningd::start(opts).await.unwrap(),
    };
    let mut r = Replay {
        ld,
        mode,
        outcomes: outcomes(&proto),
        compared: 0,
    };
    for (n, e) in entries.as_array().unwrap().iter().enumerate() {
        r.entry(n, e).await;
    }
    assert!(r.compared >= 5, "compared only {} answers", r.compared);
    r.ld.assert_no_violations();
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_builtins_reproduce_selfpay() {
    replay("rpc-selfpay.json", "protocol-selfpay.json", Mode::Builtin).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_builtins_reproduce_remote() {
    replay("rpc-remote.json", "protocol-remote.json", Mode::Builtin).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_builtins_reproduce_selfcall() {
    replay("rpc-selfcall.json", "protocol-selfcall.json", Mode::Builtin).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_matches_selfpay() {
    replay("rpc-selfpay.json", "protocol-selfpay.json", Mode::Paystate).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_matches_remote() {
    replay("rpc-remote.json", "protocol-remote.json", Mode::Paystate).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_matches_selfcall() {
    replay(
        "rpc-selfcall.json",
        "protocol-selfcall.json",
        Mode::Paystate,
    )
    .await;
}

/// What the stand-in sends the plugin has the shapes a real lightningd
/// sends: getmanifest and init (ids, params, configuration keys), wrapped
/// notifications (a failure shows `status: "pending"`), and hook calls
/// whose id extends the caller's.
#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_speaks_the_recorded_protocol() {
    let proto = load("protocol-selfpay.json");
    let recorded: Vec<&Value> = proto
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["dir"] == "in")
        .map(|m| &m["msg"])
        .collect();
    let ld = common::start().await;
    let k = common::pending(&ld, &common::hash(1), 1, 0);
    ld.fail(&k, Some(common::destination_failure())).await;
    common::until_ledger_has(&ld, 1).await;
    let mut c = ld.client().await.unwrap();
    c.call_with_id(
        json!("__main__:waitsendpay#8"),
        "waitsendpay",
        json!({"payment_hash": common::hash(1)}),
    )
    .await
    .unwrap()
    .unwrap_err();
    let sent = ld.sent_to_plugin();
    let by_method = |msgs: &[&Value], m: &str| {
        msgs.iter()
            .find(|x| x["method"] == m)
            .map(|x| (*x).clone())
            .unwrap()
    };
    let sent_refs: Vec<&Value> = sent.iter().collect();

    let keys = |v: &Value| {
        let mut k = v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        k.sort();
        k
    };
    for m in ["getmanifest", "init"] {
        let (a, b) = (by_method(&sent_refs, m), by_method(&recorded, m));
        assert_eq!(keys(&a), keys(&b), "{m} message keys");
        let id = a["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("cln:{m}#")), "{m} id {id}");
    }
    let (a, b) = (by_method(&sent_refs, "init"), by_method(&recorded, "init"));
    assert_eq!(
        keys(&a["params"]["configuration"]),
        keys(&b["params"]["configuration"])
    );
    assert_eq!(
        keys(&a["params"]["configuration"]["feature_set"]),
        keys(&b["params"]["configuration"]["feature_set"])
    );
    assert_eq!(
        by_method(&sent_refs, "getmanifest")["params"],
        by_method(&recorded, "getmanifest")["params"]
    );

    let (a, b) = (
        by_method(&sent_refs, "sendpay_failure"),
        by_method(&recorded, "sendpay_failure"),
    );
    assert_eq!(
        keys(&a["params"]),
        keys(&b["params"]),
        "wrapped in an object named after the topic"
    );
    assert_eq!(
        keys(&a["params"]["sendpay_failure"]),
        keys(&b["params"]["sendpay_failure"])
    );
    assert_eq!(a["params"]["sendpay_failure"]["data"]["status"], "pending");
    assert!(a["params"]["sendpay_failure"]["data"]
        .get("updated_index")
        .is_none());

    let a = sent_refs
        .iter()
        .find(|x| {
            x["method"] == "rpc_command"
                && x["params"]["rpc_command"]["id"] == "__main__:waitsendpay#8"
        })
        .map(|x| (*x).clone())
        .expect("the client's call went through the hook");
    let b = by_method(&recorded, "rpc_command");
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(
        keys(&a["params"]["rpc_command"]),
        keys(&b["params"]["rpc_command"])
    );
    assert!(a["id"]
        .as_str()
        .unwrap()
        .starts_with("__main__:waitsendpay#8/cln:rpc_command#"));
    assert_eq!(a["params"]["rpc_command"]["id"], "__main__:waitsendpay#8");
}

/// A plugin that answers the hook with `return` gets exactly that to the
/// caller (rpc-hookreturn.json): code, message and data intact.
#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn hook_return_reaches_the_caller_intact() {
    let rec = load("rpc-hookreturn.json");
    let ld = common::start().await;
    for e in rec.as_array().unwrap() {
        // paystate answers these made-up hashes itself, with its own words:
        // what matters is that its `return` arrives as it sent it.
        let got = ld
            .call(
                e["request"]["method"].as_str().unwrap(),
                e["request"]["params"].clone(),
            )
            .await
            .unwrap();
        let err = got.expect_err("unknown hashes are errors");
        assert_eq!(common::code(&err), 208, "{err}");
        assert!(err.get("data").is_none());
    }
    ld.assert_no_violations();
}
