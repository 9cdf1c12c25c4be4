//! Bad input and faults: malformed notifications, duplicates, unknown
//! fields, and a datastore that fails or hangs up.

mod common;
use common::*;
use lightningd_standin::{Fault, Lightningd};
use serde_json::{json, Value};
use std::time::Duration;

async fn status(ld: &Lightningd) -> Value {
    ld.call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn malformed_notifications_are_logged_and_skipped() {
    let ld = start().await;
    let good = json!({"created_index": 1, "id": 1, "payment_hash": hash(1), "groupid": 1,
        "amount_sent_msat": 1000, "created_at": 1, "status": "complete", "payment_preimage": preimage(1)});
    let mut bad: Vec<(&str, Value)> = vec![];
    for field in [
        "payment_hash",
        "groupid",
        "created_index",
        "payment_preimage",
    ] {
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove(field);
        bad.push(("sendpay_success", json!({"sendpay_success": v})));
    }
    for (field, value) in [
        ("payment_hash", json!("xyz")),
        ("groupid", json!(-1)),
        ("amount_sent_msat", json!("lots")),
        ("partid", json!(1.5)),
    ] {
        let mut v = good.clone();
        v[field] = value;
        bad.push(("sendpay_success", json!({"sendpay_success": v})));
    }
    bad.push(("sendpay_success", json!("not an object")));
    bad.push((
        "sendpay_failure",
        json!({"sendpay_failure": {"code": "x", "message": "m", "data": good}}),
    ));
    bad.push((
        "sendpay_failure",
        json!({"sendpay_failure": {"code": 204, "message": "m"}}),
    ));
    bad.push((
        "sendpay_failure",
        json!({"sendpay_failure": {"code": 204, "message": "m", "data": {"payment_hash": 5}}}),
    ));
    for (topic, payload) in &bad {
        ld.notify_raw(topic, payload.clone()).await;
    }
    // Notifications are answered in order: once a good one after them is
    // recorded, every bad one has been seen.
    until_writes_landed(&ld, 99).await;
    let st = status(&ld).await;
    assert_eq!(
        st["parts"],
        json!({"complete": 1, "failed": 0, "deleting": 0}),
        "ledger unchanged but for the marker"
    );
    let warnings = ld
        .logs()
        .into_iter()
        .filter(|l| l.level == "warn" && l.message.starts_with("Skipping malformed"))
        .count();
    assert_eq!(
        warnings,
        bad.len(),
        "each logged with its reason: {:?}",
        ld.logs()
    );
}

#[tokio::test]
async fn unknown_fields_are_kept_and_duplicates_are_idempotent() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    let mut payload = ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    payload["new_in_v27"] = json!({"x": [1, 2]});
    // A duplicate (with a field lightningd may add one day): no change.
    ld.notify_raw(
        "sendpay_success",
        json!({"sendpay_success": payload.clone()}),
    )
    .await;
    ld.notify_raw(
        "sendpay_success",
        json!({"sendpay_success": payload.clone()}),
    )
    .await;
    // Records are written behind (within 200 ms): until it is there, and a
    // while longer for a second write that must not come.
    let records = || {
        ld.datastore()
            .entries
            .iter()
            .filter(|(k, _)| paystate::store::page_of_key(k).is_some())
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while records() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ds = ld.datastore();
    let entries: Vec<_> = ds
        .entries
        .iter()
        .filter(|(k, _)| paystate::store::page_of_key(k).is_some())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.generation, 0, "never rewritten");
    // A part first seen with an extra field keeps it.
    let k2 = pending(&ld, &hash(2), 1, 0);
    let mut p2 = ld.part(&k2).unwrap().listing();
    p2["status"] = json!("complete");
    p2["payment_preimage"] = json!(preimage(2));
    p2["new_in_v27"] = json!("kept");
    ld.notify_raw("sendpay_success", json!({"sendpay_success": p2}))
        .await;
    until_ledger_has(&ld, 2).await;
    let r = ld
        .call("paystate-waitsendpay", json!([hash(2)]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["new_in_v27"], "kept");
}

#[tokio::test]
async fn bare_notification_payloads_of_older_lightningd_are_read() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    let mut p = ld.part(&k).unwrap().listing();
    p["status"] = json!("complete");
    p["payment_preimage"] = json!(preimage(1));
    ld.notify_raw("sendpay_success", p).await;
    until_ledger_has(&ld, 1).await;
}

#[tokio::test]
async fn a_records_delete_that_fails_is_tried_again() {
    let ld = start().await;
    let keys: Vec<_> = (1..=3).map(|i| pending(&ld, &hash(i), 1, 0)).collect();
    for (i, k) in keys.iter().enumerate() {
        ld.succeed(k, &preimage(i as u64)).await;
    }
    until_ledger_has(&ld, 3).await;
    until_datastore_matches_node(&ld).await;
    // A record's delete is a delete item appended to its page (the page
    // holds other parts): the node's delete is lightningd's; the ledger's
    // append fails.
    ld.inject(
        "datastore",
        Fault::Error(1201, "generation is different".into()),
        1,
    );
    delpay(&ld, json!([hash(1), "complete", 0, 1]))
        .await
        .unwrap();
    let e = ld
        .call("paystate-waitsendpay", json!([hash(1), 0]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208, "never answered from the left-over record");
    until_datastore_matches_node(&ld).await;
    // The socket closing mid-batch: the same.
    ld.inject("datastore", Fault::Hangup, 1);
    delpay(&ld, json!([hash(2), "complete", 0, 1]))
        .await
        .unwrap();
    until_datastore_matches_node(&ld).await;
    assert!(ld
        .logs()
        .iter()
        .any(|l| l.level == "warn" && l.message.contains("generation is different")));
    assert_eq!(datastore_keys(&ld).len(), 1);
}

#[tokio::test]
async fn node_refusing_the_delete_changes_nothing() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    ld.inject("delpay", Fault::Error(-1, "database is locked".into()), 1);
    let e = ld
        .call("paystate-delpay", json!([hash(1), "complete"]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e, json!({"code": -1, "message": "database is locked"}));
    let st = status(&ld).await;
    assert_eq!(
        (
            st["parts"]["complete"].as_u64(),
            st["parts"]["deleting"].as_u64()
        ),
        (Some(1), Some(0))
    );
    ld.stop_plugin().await;
    ld.start_plugin(false).await.unwrap();
    let st = until_caught_up(&ld).await;
    assert_eq!(
        st["catchup"]["deletes_finished"], 0,
        "nothing left half-deleted"
    );
    assert!(ld.part(&k).is_some());
}

#[tokio::test]
async fn datastore_failure_on_a_notification_still_answers_waiters_and_recovers() {
    let ld = start().await;
    until_caught_up(&ld).await;
    let k = pending(&ld, &hash(1), 1, 0);
    let mut c = ld.client().await.unwrap();
    let w = tokio::spawn(async move { c.call("waitsendpay", json!([hash(1), 30])).await.unwrap() });
    for _ in 0..200 {
        if status(&ld).await["waiters"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ld.inject("datastore", Fault::Error(-1, "disk full".into()), 1);
    let success = ld.succeed(&k, &preimage(1)).await;
    assert_eq!(w.await.unwrap().unwrap(), success);
    // In memory until its write failed, then dropped.
    until_status(&ld, "the failed record dropped", |st| {
        st["parts"]["complete"] == 0
    })
    .await;
    assert!(ld
        .logs()
        .iter()
        .any(|l| l.level == "warn" && l.message.contains("disk full")));
    // The next ask imports it from the node.
    assert_eq!(
        ld.call("waitsendpay", json!([hash(1), 0]))
            .await
            .unwrap()
            .unwrap(),
        success
    );
    assert_eq!(status(&ld).await["parts"]["complete"], 1);
}
