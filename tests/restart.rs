//! Restarts and crashes: the ledger comes back from the datastore, parts
//! resolved while paystate was down are caught up, deleted parts stay
//! deleted, and SIGKILL at any moment loses nothing and resurrects nothing.

mod common;
use common::*;
use lightningd_standin::table::Status;
use lightningd_standin::{Fault, Lightningd};
use serde_json::{json, Value};
use std::time::Duration;

type Key = (String, u64, u64);

/// After catch-up, the ledger (its records in the datastore) holds exactly
/// the node's terminal parts, and answers for each what the node's own
/// waitsendpay would.
async fn assert_level_with_node(ld: &Lightningd) {
    until_caught_up(ld).await;
    // Notifications are handled asynchronously, records written behind.
    until_datastore_matches_node(ld).await;
    assert_eq!(ledger_keys(ld).await, node_terminal_keys(ld));
    for p in ld.parts().iter().filter(|p| p.status != Status::Pending) {
        let got = ld
            .call("paystate-waitsendpay", json!({"payment_hash": p.payment_hash, "groupid": p.groupid, "partid": p.partid, "timeout": 0}))
            .await
            .unwrap();
        match p.status {
            Status::Complete => assert_eq!(got.unwrap(), p.listing()),
            _ => {
                let mut e = got.unwrap_err();
                e.as_object_mut().unwrap().retain(|_, v| !v.is_null());
                assert_eq!(e, p.stored_error());
            }
        }
    }
}

async fn restart(ld: &Lightningd) {
    ld.stop_plugin().await;
    ld.start_plugin(false).await.unwrap();
}

/// Hash 1's part completed, hash 2's failed on the route; their keys.
async fn one_complete_one_failed(ld: &Lightningd) -> (Key, Key) {
    let (a, b) = (pending(ld, &hash(1), 1, 0), pending(ld, &hash(2), 1, 0));
    ld.succeed(&a, &preimage(1)).await;
    ld.fail(&b, Some(route_failure())).await;
    (a, b)
}

#[tokio::test]
async fn ledger_is_reloaded_and_follows_deletes_made_while_down() {
    let ld = start().await;
    let (_, b) = one_complete_one_failed(&ld).await;
    until_ledger_has(&ld, 2).await;
    until_datastore_matches_node(&ld).await;
    let failed = ld
        .call("paystate-waitsendpay", json!([hash(2)]))
        .await
        .unwrap()
        .unwrap_err();
    ld.stop_plugin().await;
    // Deleted from the node while paystate was down: the ledger follows
    // the node (reconciled at start-up), as it holds the node's parts.
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    ld.start_plugin(false).await.unwrap();
    // Reconciled before anything asks (an answer that asks the node about
    // the hash would learn it first: tests/delpay.rs).
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["dropped"], 1);
    assert_level_with_node(&ld).await;
    assert_eq!(datastore_keys(&ld), [b.clone()].into());
    assert_eq!(
        code(
            &ld.call("waitsendpay", json!([hash(1)]))
                .await
                .unwrap()
                .unwrap_err()
        ),
        208,
        "never answered from the record the node no longer backs"
    );
    // The other comes back from the datastore, failure and all.
    assert_eq!(
        ld.call("paystate-waitsendpay", json!([hash(2)]))
            .await
            .unwrap()
            .unwrap_err(),
        failed
    );
}

#[tokio::test]
async fn parts_resolved_while_down_are_caught_up_with_failure_details() {
    let ld = start().await;
    let (a, b, c) = (
        pending(&ld, &hash(1), 1, 0),
        pending(&ld, &hash(2), 1, 0),
        pending(&ld, &hash(3), 1, 0),
    );
    ld.stop_plugin().await;
    ld.succeed(&a, &preimage(1)).await;
    ld.fail(&b, Some(destination_failure())).await;
    ld.fail(&c, Some(lightningd_standin::PartFailure::malformed("00ff")))
        .await;
    ld.start_plugin(false).await.unwrap();
    assert_level_with_node(&ld).await;
    let st = ld
        .call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st["catchup"]["imported"], 3);
    // The pass read the node's table, and its imports were written: both
    // are counted (the writes' once their answers are read); the deletes
    // feed's `wait`s are waits, not work.
    let st = until_status(&ld, "the imports' writes counted", |st| {
        st["calls"]["datastore"]["count"].as_u64() >= Some(1)
    })
    .await;
    let calls = &st["calls"];
    assert!(
        calls["listsendpays"]["count"].as_u64() >= Some(1),
        "{calls}"
    );
    assert!(calls["listsendpays"]["ms"].as_f64().is_some(), "{calls}");
    assert!(calls.get("wait").is_none(), "{calls}");
    ld.assert_no_violations();
}

#[tokio::test]
async fn catch_up_finds_what_resolved_meanwhile_in_one_pass_by_created_index() {
    let ld = start().await;
    for n in 0..5 {
        let k = pending(&ld, &hash(n), 1, 0);
        ld.succeed(&k, &preimage(n)).await;
    }
    until_ledger_has(&ld, 5).await;
    ld.stop_plugin().await;
    let k = pending(&ld, &hash(9), 1, 0);
    ld.succeed(&k, &preimage(9)).await;
    ld.start_plugin(false).await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["imported"], 1, "{st}");
    assert_eq!(st["catchup"]["checked"], 6, "one pass over the table: {st}");
    let scans: Vec<Value> = ld
        .plugin_calls()
        .into_iter()
        .filter(|(m, p)| {
            m == "listsendpays" && p["index"] != "created" && p["payment_hash"].is_null()
        })
        .map(|(_, p)| p)
        .collect();
    // `index=updated` is a scan of the whole table in lightningd.
    assert_eq!(scans, Vec::<Value>::new());
    assert_level_with_node(&ld).await;
}

#[tokio::test]
async fn deleted_parts_stay_deleted_across_restarts() {
    let ld = start().await;
    let h = hash(1);
    let (a, b) = (pending(&ld, &h, 1, 1), pending(&ld, &h, 1, 2));
    ld.succeed(&a, &preimage(1)).await;
    ld.succeed(&b, &preimage(1)).await;
    until_ledger_has(&ld, 2).await;
    delpay(&ld, json!([h, "complete", 1, 1])).await.unwrap();
    for _ in 0..2 {
        restart(&ld).await;
        until_caught_up(&ld).await;
        assert_eq!(
            ledger_keys(&ld).await,
            [key(&h, 1, 2)].into_iter().collect()
        );
        let e = ld
            .call(
                "waitsendpay",
                json!({"payment_hash": h, "partid": 1, "groupid": 1}),
            )
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(code(&e), 208);
    }
}

#[tokio::test]
async fn a_delete_interrupted_by_sigkill_loses_nothing() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    until_datastore_matches_node(&ld).await;
    // The node never answers paystate's delpay: the ledger keeps the
    // record until the node's answer, and the plugin is killed meanwhile.
    ld.inject("delpay", Fault::Stall, 1);
    let mut c = ld.client().await.unwrap();
    let call = tokio::spawn(async move {
        c.call("paystate-delpay", json!([hash(1), "complete"]))
            .await
            .unwrap()
    });
    for _ in 0..500 {
        if ld.plugin_calls().iter().any(|(m, _)| m == "delpay") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        datastore_keys(&ld).len(),
        1,
        "the record waits for the node"
    );
    ld.kill_plugin().await;
    assert_eq!(
        code(&call.await.unwrap().unwrap_err()),
        -4,
        "not answered as done"
    );
    assert!(ld.part(&k).is_some(), "the node still has it");
    ld.clear_faults();
    ld.start_plugin(false).await.unwrap();
    // The delete did not happen: the ledger holds the part, and answers it
    // as the node does.
    assert_level_with_node(&ld).await;
    assert_eq!(ledger_keys(&ld).await.len(), 1);
    // A delete now goes through.
    let r = ld
        .call("paystate-delpay", json!([hash(1), "complete"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["payments"].as_array().unwrap().len(), 1);
    assert!(ld.part(&k).is_none());
    until_datastore_matches_node(&ld).await;
    assert!(datastore_keys(&ld).is_empty());
}

/// A small deterministic generator: test runs are repeatable.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn sigkill_during_notifications_loses_nothing() {
    let ld = start().await;
    let mut rng = Lcg(7);
    let mut n = 0;
    for round in 0..6 {
        let keys: Vec<Key> = (0..15)
            .map(|_| {
                n += 1;
                pending(&ld, &hash(n), 1, 0)
            })
            .collect();
        let delay = Duration::from_micros(rng.next(4000));
        let resolve = async {
            for (i, k) in keys.iter().enumerate() {
                if i % 3 == 0 {
                    ld.fail(k, Some(route_failure())).await;
                } else {
                    ld.succeed(k, &preimage(i as u64)).await;
                }
            }
        };
        let kill = async {
            tokio::time::sleep(delay).await;
            ld.kill_plugin().await;
        };
        tokio::join!(resolve, kill);
        ld.start_plugin(false).await.unwrap();
        assert_level_with_node(&ld).await;
        let _ = round;
    }
    ld.assert_no_violations();
}

#[tokio::test]
async fn sigkill_during_deletes_resurrects_nothing() {
    let ld = start().await;
    let mut rng = Lcg(11);
    let mut n = 0;
    for _round in 0..6 {
        let keys: Vec<Key> = (0..12)
            .map(|_| {
                n += 1;
                pending(&ld, &hash(n), 1, 0)
            })
            .collect();
        for k in &keys {
            ld.succeed(k, &preimage(1)).await;
        }
        assert_level_with_node(&ld).await;
        let delay = Duration::from_micros(rng.next(6000));
        let deletes = async {
            let mut tasks = Vec::new();
            for k in &keys {
                let mut c = ld.client().await.unwrap();
                let h = k.0.clone();
                tasks.push(tokio::spawn(async move {
                    c.call("paystate-delpay", json!([h, "complete"])).await
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        };
        let kill = async {
            tokio::time::sleep(delay).await;
            ld.kill_plugin().await;
        };
        tokio::join!(deletes, kill);
        ld.start_plugin(false).await.unwrap();
        // Whatever was deleted is gone from both; the rest is in both.
        assert_level_with_node(&ld).await;
        restart(&ld).await;
        assert_level_with_node(&ld).await;
    }
}

/// The ledger's pages in the datastore, every paystate key being under
/// the current layout.
fn only_v4_keys(ld: &Lightningd) -> Vec<Vec<String>> {
    let keys: Vec<Vec<String>> = ld
        .datastore()
        .entries
        .keys()
        .filter(|k| k[0] == "paystate")
        .cloned()
        .collect();
    assert!(keys.iter().all(|k| k[1] == "v4"), "{keys:?}");
    // The pages (beside them, the mark that v3 is moved).
    keys.into_iter()
        .filter(|k| paystate::store::page_of_key(k).is_some())
        .collect()
}

/// A ledger kept in layout v1 by a development version moves to v4 at
/// start-up: every part answers as before, and nothing is left under v1.
#[tokio::test]
async fn a_v1_ledger_is_migrated_at_start_up() {
    let ld = Lightningd::new(options()).await.unwrap();
    // Both resolved while paystate was not running; only `a` was recorded.
    let (a, b) = (pending(&ld, &hash(1), 1, 0), pending(&ld, &hash(2), 1, 0));
    ld.succeed(&a, &preimage(1)).await;
    ld.succeed(&b, &preimage(2)).await;
    let done = ld.parts().iter().find(|p| p.key() == a).unwrap().listing();
    let h = hash(1);
    ld.seed_datastore(
        vec![
            "paystate".into(),
            "v1".into(),
            "parts".into(),
            h[..2].into(),
            format!("{h}-1-0"),
        ],
        json!({ "payment": done }).to_string().as_bytes(),
    );
    ld.seed_datastore(
        vec!["paystate".into(), "v1".into(), "catchup".into()],
        br#"{"updated_index":0}"#,
    );
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    let got = ld
        .call("waitsendpay", json!({"payment_hash": h, "timeout": 0}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, done);
    // v1's watermark is not carried over: catch-up reads by created_index.
    // Both parts' records are in one page.
    assert_eq!(only_v4_keys(&ld).len(), 1);
    // The part resolved in the node is caught up beside the migrated one.
    assert_eq!(until_ledger_has(&ld, 2).await["layout_version"], "v4");
    until_datastore_matches_node(&ld).await;
}

/// A ledger kept in layout v2 (paystate 0.1: 256 shards) moves to v4 at
/// start-up: nothing left under v2.
#[tokio::test]
async fn a_v2_ledger_is_migrated_at_start_up() {
    let ld = Lightningd::new(options()).await.unwrap();
    let a = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&a, &preimage(1)).await;
    let done = ld.parts().iter().find(|p| p.key() == a).unwrap().listing();
    let h = hash(1);
    let name = format!("{h}-1-0-{}-complete", done["created_index"]);
    let record = json!({ "payment": done }).to_string();
    ld.seed_datastore(
        ["paystate", "v2", "parts", &h[..2], &name, "record"]
            .map(String::from)
            .to_vec(),
        record.as_bytes(),
    );
    ld.seed_datastore(
        ["paystate", "v2", "catchup"].map(String::from).to_vec(),
        br#"{"updated_index":1}"#,
    );
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    let ci = done["created_index"].as_u64().unwrap();
    assert_eq!(
        only_v4_keys(&ld),
        [paystate::store::page_key(ci / paystate::store::PAGE)],
        "moved, and nothing else left"
    );
    assert_eq!(
        datastore_records(&ld).into_iter().collect::<Vec<_>>(),
        [(a, "complete")]
    );
    let got = ld
        .call("waitsendpay", json!({"payment_hash": h, "timeout": 0}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, done);
}

/// A ledger kept in layout v3 (paystate 0.2: each part's whole listing)
/// moves to v4's few bytes a part at start-up, a failure's summary
/// included, and a delete v3 marked is finished.
#[tokio::test]
async fn a_v3_ledger_is_migrated_at_start_up() {
    let ld = Lightningd::new(options()).await.unwrap();
    let (a, f, gone) = (
        pending(&ld, &hash(1), 1, 0),
        pending(&ld, &hash(2), 1, 0),
        pending(&ld, &hash(3), 1, 0),
    );
    ld.succeed(&a, &preimage(1)).await;
    ld.fail(&f, Some(route_failure())).await;
    ld.succeed(&gone, &preimage(3)).await;
    let v3_record = |k: &Key, part: Value| {
        let row = ld.parts().into_iter().find(|p| p.key() == *k).unwrap();
        let name = format!(
            "{}-{}-{}-{}-{}",
            k.0,
            k.1,
            k.2,
            row.created_index,
            row.listing()["status"].as_str().unwrap()
        );
        let key = ["paystate", "v3", "parts", &k.0[..3], &name, "record"]
            .map(String::from)
            .to_vec();
        ld.seed_datastore(key, part.to_string().as_bytes());
        name
    };
    let listing = |k: &Key| {
        ld.parts()
            .into_iter()
            .find(|p| p.key() == *k)
            .unwrap()
            .listing()
    };
    v3_record(&a, json!({ "payment": listing(&a) }));
    let failure = json!({"code": 204, "message": "failed: WIRE_TEMPORARY_CHANNEL_FAILURE (reply from remote)",
        "details": {"erring_index": 1, "failcode": 4103, "erring_node": format!("02{}", "11".repeat(32)),
                    "erring_channel": "103x1x0", "erring_direction": 1}});
    v3_record(&f, json!({ "payment": listing(&f), "failure": failure }));
    let name = v3_record(&gone, json!({ "payment": listing(&gone) }));
    ld.seed_datastore(
        ["paystate", "v3", "deleting", &name]
            .map(String::from)
            .to_vec(),
        b"deleting",
    );
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    until_datastore_matches_node(&ld).await;
    assert!(
        !ld.parts().iter().any(|p| p.key() == gone),
        "the marked delete is finished"
    );
    assert_eq!(only_v4_keys(&ld).len(), 1, "one page");
    let ci = ld
        .parts()
        .into_iter()
        .find(|p| p.key() == f)
        .unwrap()
        .created_index;
    let (page, slot) = paystate::store::page_of(ci);
    let stored = &ld.datastore().entries[&paystate::store::page_key(page)];
    let r = paystate::ledger::page::read(&stored.data).records[&slot].clone();
    assert_eq!(
        (
            r.failure.failcode,
            r.failure.erring_index,
            r.failure.erring_direction
        ),
        (Some(4103), Some(1), Some(1))
    );
    assert_eq!(
        r.failure
            .erring_channel
            .map(paystate::ledger::record::scid_string)
            .as_deref(),
        Some("103x1x0")
    );
}

/// A first start finds that no earlier layout is there with one `check`
/// of a write under v3 (one row read), not a walk of v3's 4,096 shards,
/// and leaves the mark; later starts look for no earlier layout (on
/// PostgreSQL each such listing would fetch every row after its key).
#[tokio::test]
async fn earlier_layouts_are_looked_for_once_and_with_one_row_read() {
    let ld = Lightningd::new(options()).await.unwrap();
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    let earlier = |calls: &[(String, Value)]| -> Vec<(String, Value)> {
        calls
            .iter()
            .filter(|(_, p)| {
                let key = p["key"].as_array().cloned().unwrap_or_default();
                key.first() == Some(&json!("paystate"))
                    && matches!(key.get(1).and_then(Value::as_str), Some("v1" | "v2" | "v3"))
            })
            .cloned()
            .collect()
    };
    let first = earlier(&ld.plugin_calls());
    let v3_calls: Vec<&(String, Value)> =
        first.iter().filter(|(_, p)| p["key"][1] == "v3").collect();
    assert_eq!(v3_calls.len(), 1, "{v3_calls:?}");
    assert_eq!(v3_calls[0].0, "check");
    assert_eq!(v3_calls[0].1["command_to_check"], "datastore");
    let mark = ["paystate", "v4", "v3-moved"].map(String::from).to_vec();
    assert!(ld.datastore().entries.contains_key(&mark));
    let before = ld.plugin_calls().len();
    ld.stop_plugin().await;
    ld.start_plugin(false).await.unwrap();
    until_caught_up(&ld).await;
    assert_eq!(earlier(&ld.plugin_calls()[before..]), vec![]);
    assert_level_with_node(&ld).await;
}

#[tokio::test]
async fn over_a_node_keeping_its_tables_in_sqlite() {
    // The stand-in as benchmarks run it: datastore and payments in SQLite,
    // `listdatastore` answered from the rows it reads.
    let mut o = options();
    o.sqlite = true;
    let ld = Lightningd::start(o).await.unwrap();
    for n in 0..6 {
        let k = pending(&ld, &hash(n), 1, 0);
        if n % 3 == 0 {
            ld.fail(&k, Some(route_failure())).await;
        } else {
            ld.succeed(&k, &preimage(n)).await;
        }
    }
    until_ledger_has(&ld, 6).await;
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    delpay(&ld, json!([hash(3), "failed"])).await.unwrap();
    restart(&ld).await;
    assert_level_with_node(&ld).await;
    assert_eq!(ledger_keys(&ld).await.len(), 4);
    let rows = ld.db_rows().unwrap();
    assert_eq!(
        rows,
        (ld.datastore().entries.len() as u64, ld.parts().len() as u64),
        "the database holds what the node answers from"
    );
}

/// The level mark as the datastore holds it (src/level.rs), if any.
fn level_mark(ld: &Lightningd) -> Option<Value> {
    let key = paystate::store::level_key();
    ld.datastore()
        .entries
        .get(&key)
        .map(|r| serde_json::from_slice(&r.data).expect("the mark is JSON"))
}

#[tokio::test]
async fn a_clean_restart_of_lightningd_skips_the_pass_and_a_plugin_stop_does_not() {
    let ld = start().await;
    one_complete_one_failed(&ld).await;
    assert_level_with_node(&ld).await;
    ld.restart().await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["pass_skipped"], true, "{st}");
    assert_eq!(st["catchup"]["checked"], 0, "{st}");
    // Taken at the start: a crash from here leaves none.
    assert_eq!(level_mark(&ld), None);
    assert_level_with_node(&ld).await;

    // A plugin stop leaves none: a delete no index shows, made while
    // paystate is away, is found by the next start's pass.
    ld.stop_plugin().await;
    assert_eq!(level_mark(&ld), None);
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    ld.restart().await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["pass_skipped"], false, "{st}");
    assert_eq!(st["catchup"]["dropped"], 1, "{st}");
    assert_level_with_node(&ld).await;
}

#[tokio::test]
async fn a_node_run_without_paystate_since_the_mark_is_walked() {
    let ld = start().await;
    let (a, b) = (pending(&ld, &hash(1), 1, 0), pending(&ld, &hash(2), 1, 0));
    ld.succeed(&a, &preimage(1)).await;
    ld.succeed(&b, &preimage(2)).await;
    assert_level_with_node(&ld).await;
    ld.shut_down().await;
    assert!(level_mark(&ld).is_some(), "a clean stop leaves the mark");
    // lightningd run once without paystate: a part resolved, one deleted.
    ld.start_up(false).await.unwrap();
    let c = pending(&ld, &hash(3), 1, 0);
    ld.fail(&c, Some(route_failure())).await;
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    ld.shut_down().await;
    ld.start_up(true).await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["pass_skipped"], false, "{st}");
    assert_eq!(st["catchup"]["imported"], 1, "{st}");
    assert_eq!(st["catchup"]["dropped"], 1, "{st}");
    assert_level_with_node(&ld).await;
}

/// lightningd before v25.12 passes every command through xpay's
/// `rpc_command` hook, and one that reaches it as xpay exits on
/// `shutdown` is never answered: paystate asks that call again, and stops
/// level with the node as ever, well before lightningd's 30 s are up.
#[tokio::test]
async fn a_call_dropped_as_lightningd_stops_is_asked_again() {
    let mut o = options();
    o.hook_that_exits_at_shutdown = true;
    let ld = Lightningd::start(o).await.unwrap();
    one_complete_one_failed(&ld).await;
    assert_level_with_node(&ld).await;
    ld.shut_down().await;
    assert!(
        ld.logs().iter().any(|l| l.message.contains("asking again")),
        "the dropped call was asked again"
    );
    assert!(level_mark(&ld).is_some(), "a clean stop leaves the mark");
    ld.start_up(true).await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(st["catchup"]["pass_skipped"], true, "{st}");
    assert_level_with_node(&ld).await;
}
