//! Replays `../shared/cln-fixtures/params-precedence.json`: hundreds of
//! parameter sets answered by a real lightningd's built-in `waitsendpay`
//! and `delpay`, with `--developer` and without. Each set is sent as the
//! recording client (pyln-client) sent it, to the stand-in's built-ins and
//! to paystate (built-in names with takeover on, `paystate-*` names with
//! takeover off), in both modes; every code, message and result must
//! match, bad tokens quoted as written (numbers beyond 64 bits and floats
//! included: paystate keeps a number's text).

mod common;
use lightningd_standin::client::pyln_text;
use lightningd_standin::{shared_dir, Lightningd, PartFailure, PartSpec};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

#[derive(Deserialize)]
struct Fixture {
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    method: String,
    params: Box<RawValue>,
    developer: Value,
    production: Value,
}

/// The recording; every test that reads it is ignored where `../shared`
/// is absent (build.rs).
fn load() -> Fixture {
    let dir = shared_dir().expect("../shared/cln-fixtures");
    let text = std::fs::read_to_string(dir.join("cln-fixtures/params-precedence.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The answers that are not parameter errors carry the node's two parts:
/// the complete one (a result) and the failed one (a 203 with its data).
fn parts_of(f: &Fixture) -> (Map<String, Value>, Value) {
    let mut complete = None;
    let mut failed = None;
    for r in &f.rows {
        if let Some(res) = r.developer.get("result") {
            complete = Some(res.as_object().unwrap().clone());
        }
        if r.developer["error"]["code"] == 203 {
            failed = Some(r.developer["error"].clone());
        }
    }
    (complete.unwrap(), failed.unwrap())
}

fn spec_of(p: &Map<String, Value>) -> PartSpec {
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    PartSpec {
        payment_hash: s("payment_hash").unwrap(),
        groupid: p["groupid"].as_u64().unwrap(),
        partid: p.get("partid").and_then(Value::as_u64).unwrap_or(0),
        amount_msat: p["amount_msat"].as_u64(),
        amount_sent_msat: p["amount_sent_msat"].as_u64().unwrap(),
        destination: s("destination"),
        label: s("label"),
        bolt11: s("bolt11"),
        created_at: p["created_at"].as_u64(),
        ..Default::default()
    }
}

/// A node with the recording's two parts, resolved as they were.
async fn node(f: &Fixture, developer: bool, plugin: Option<bool>) -> Lightningd {
    let mut opts = common::options();
    opts.developer = developer;
    let ld = match plugin {
        Some(takeover) => {
            opts.plugin_options
                .insert("paystate-takeover".into(), json!(takeover));
            Lightningd::start(opts).await.unwrap()
        }
        None => Lightningd::new(opts).await.unwrap(),
    };
    let (complete, failed) = parts_of(f);
    let c = spec_of(&complete);
    let key = common::key(&c.payment_hash, c.groupid, c.partid);
    ld.create_part(c);
    ld.succeed(&key, complete["payment_preimage"].as_str().unwrap())
        .await;
    let data = failed["data"].as_object().unwrap();
    let fs = spec_of(data);
    let key = common::key(&fs.payment_hash, fs.groupid, fs.partid);
    ld.create_part(fs);
    let details: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| paystate::domain::FAILURE_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let failure = PartFailure {
        code: 203,
        message: failed["message"].as_str().unwrap().into(),
        details,
    };
    ld.fail(&key, Some(failure)).await;
    if plugin.is_some() {
        common::until_ledger_has(&ld, 2).await;
    }
    ld
}

/// What depends on when the stand-in resolved its parts.
fn normalize(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        for k in ["updated_index", "completed_at"] {
            m.shift_remove(k);
        }
        for (_, x) in m.iter_mut() {
            normalize(x);
        }
    }
}

async fn replay(developer: bool, plugin: Option<bool>) -> usize {
    let f = load();
    let ld = node(&f, developer, plugin).await;
    let mut client = ld.client().await.unwrap();
    let mut compared = 0;
    for (n, row) in f.rows.iter().enumerate() {
        let method = match plugin {
            Some(false) => format!("paystate-{}", row.method),
            _ => row.method.clone(),
        };
        let text = pyln_text(row.params.get());
        let mut got = match client.call_text(&method, &text).await.unwrap() {
            Ok(r) => json!({ "result": r }),
            Err(e) => json!({ "error": e }),
        };
        let mut want = if developer {
            row.developer.clone()
        } else {
            row.production.clone()
        };
        normalize(&mut got);
        normalize(&mut want);
        compared += 1;
        assert_eq!(got, want, "row {n}: {method} {text}");
    }
    ld.assert_no_violations();
    compared
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_builtins_answer_as_lightningd_developer() {
    eprintln!("{} rows", replay(true, None).await);
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn standin_builtins_answer_as_lightningd_production() {
    replay(false, None).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_takeover_answers_as_lightningd_developer() {
    eprintln!("{} rows", replay(true, Some(true)).await);
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_takeover_answers_as_lightningd_production() {
    replay(false, Some(true)).await;
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_names_answer_as_lightningd_developer() {
    eprintln!("{} rows", replay(true, Some(false)).await);
}

#[tokio::test]
#[cfg_attr(
    no_shared_fixtures,
    ignore = "../shared/cln-fixtures is absent (a user's clone has none)"
)]
async fn paystate_names_answer_as_lightningd_production() {
    replay(false, Some(false)).await;
}
