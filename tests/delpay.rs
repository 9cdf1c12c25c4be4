//! delpay end to end, by its built-in name: lightningd's own (paystate
//! takes it not over), the ledger following every delete.

mod common;
use common::*;
use lightningd_standin::Lightningd;
use serde_json::{json, Value};

#[tokio::test]
async fn parameter_errors() {
    let ld = start().await;
    let h = hash(1);
    let cases = [
        (json!({}), "missing required parameter: payment_hash"),
        (json!({"payment_hash": h}), "missing required parameter: status"),
        (json!({"payment_hash": "xyz", "status": "complete"}), "payment_hash: should be a 32 byte hex value: invalid token '\"xyz\"'"),
        (json!({"payment_hash": h, "status": "pending"}), "status: Cannot delete pending status: invalid token '\"pending\"'"),
        (json!({"payment_hash": h, "status": "invalid_status"}), "status: should be an invoice status: invalid token '\"invalid_status\"'"),
        (json!({"payment_hash": h, "status": "complete", "partid": 0}), "Must set both partid and groupid, or neither"),
        (json!({"payment_hash": h, "status": "complete", "groupid": 1}), "Must set both partid and groupid, or neither"),
        (json!({"payment_hash": h, "status": "complete", "partid": -1, "groupid": 1}), "partid: should be an unsigned 64 bit integer: invalid token '-1'"),
        (json!([h, "complete", 0, 1, 9]), "too many parameters: got 5, expected 4"),
        (json!({"payment_hash": h, "status": "complete", "bogus": 1}), "unknown parameter: bogus, this may be caused by a failure to autodetect key=value-style parameters. Please try using the -k flag and explicit key=value pairs of parameters."),
    ];
    for (params, message) in cases {
        assert_eq!(
            delpay(&ld, params.clone()).await.unwrap_err(),
            json!({"code": -32602, "message": message}),
            "{params}"
        );
    }
}

#[tokio::test]
async fn unknown_hash_and_unknown_part_are_208() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let e = delpay(&ld, json!({"payment_hash": hash(9), "status": "complete"}))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        json!({"code": 208, "message": format!("Unknown payment with payment_hash: {}", hash(9))})
    );
    let e = delpay(
        &ld,
        json!({"payment_hash": h, "status": "complete", "partid": 3, "groupid": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        json!({"code": 208, "message": "No payment for that payment_hash with that partid and groupid"})
    );
}

#[tokio::test]
async fn status_mismatch_is_208_and_deletes_nothing() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    ld.fail(&k, Some(route_failure())).await;
    until_ledger_has(&ld, 1).await;
    let e = delpay(&ld, json!({"payment_hash": h, "status": "complete"}))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        json!({"code": 208, "message": format!("Payment with hash {h} has failed status but it different from the one provided complete")})
    );
    until_records_of(&ld, &h, &[(k.clone(), "failed")]).await;
    assert!(ld.part(&k).is_some());
    // lightningd itself answers 208 with the same message (takeover off).
    ld.stop_plugin().await;
    let builtin = delpay(&ld, json!({"payment_hash": h, "status": "complete"}))
        .await
        .unwrap_err();
    assert_eq!((code(&builtin), &builtin["message"]), (208, &e["message"]));
}

#[tokio::test]
async fn deletes_every_part_of_a_hash_from_ledger_and_node() {
    let ld = start().await;
    let h = hash(1);
    let keys: Vec<_> = (1..=3).map(|p| pending(&ld, &h, 1, p)).collect();
    for k in &keys {
        ld.succeed(k, &preimage(1)).await;
    }
    until_ledger_has(&ld, 3).await;
    let before = ld
        .call("listsendpays", json!({"payment_hash": h}))
        .await
        .unwrap()
        .unwrap();
    let r = delpay(&ld, json!({"payment_hash": h, "status": "complete"}))
        .await
        .unwrap();
    // In listsendpays format, field for field, in created order.
    assert_eq!(r, before);
    assert!(ld.parts().is_empty(), "the node's table lost them");
    let e = ld
        .call(
            "waitsendpay",
            json!({"payment_hash": h, "partid": 1, "groupid": 1}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208);
    // The answer asked the node, which has none of them: no record is
    // left (a delete of a whole hash moves no index, so the answer is
    // where paystate learns of it).
    until_records_of(&ld, &h, &[]).await;
    ld.assert_no_violations();
}

#[tokio::test]
async fn deletes_one_part_by_partid_and_groupid() {
    let ld = start().await;
    let h = hash(1);
    let (a, b) = (pending(&ld, &h, 1, 1), pending(&ld, &h, 1, 2));
    ld.succeed(&a, &preimage(1)).await;
    ld.succeed(&b, &preimage(1)).await;
    until_ledger_has(&ld, 2).await;
    let r = delpay(&ld, json!([h, "complete", 1, 1])).await.unwrap();
    let listed = r["payments"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["partid"], 1);
    assert!(ld.part(&a).is_none() && ld.part(&b).is_some());
    until_records_of(&ld, &h, &[(b.clone(), "complete")]).await;
}

#[tokio::test]
async fn mixed_hash_loses_only_the_requested_status() {
    let ld = start().await;
    let h = hash(1);
    let g1 = pending(&ld, &h, 1, 0);
    ld.fail(&g1, Some(destination_failure())).await;
    let g2 = pending(&ld, &h, 2, 0);
    ld.succeed(&g2, &preimage(1)).await;
    until_ledger_has(&ld, 2).await;
    let r = delpay(&ld, json!({"payment_hash": h, "status": "failed"}))
        .await
        .unwrap();
    assert_eq!(r["payments"].as_array().unwrap().len(), 1);
    assert_eq!(r["payments"][0]["status"], "failed");
    assert_eq!(r["payments"][0]["groupid"], 1);
    assert!(
        r["payments"][0].get("erring_index").is_none(),
        "listsendpays format, no failure fields"
    );
    assert!(ld.part(&g1).is_none() && ld.part(&g2).is_some());
    // A delete of a whole hash moves no index: the ledger learns of it
    // when a command asks about the hash (or at a reconciliation).
    assert_eq!(listed(&ld, json!([h])).await.len(), 1);
    until_records_of(&ld, &h, &[(g2.clone(), "complete")]).await;
    let e = delpay(&ld, json!({"payment_hash": h, "status": "failed"}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 208);
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("has complete status"));
}

#[tokio::test]
async fn a_pending_part_is_never_deleted() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    for status in ["complete", "failed"] {
        let e = delpay(&ld, json!({"payment_hash": h, "status": status}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), 208, "{e}");
        assert!(e["message"]
            .as_str()
            .unwrap()
            .contains("has pending status"));
    }
    let e = delpay(
        &ld,
        json!({"payment_hash": h, "status": "complete", "partid": 0, "groupid": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), 208);
    assert!(ld.part(&k).is_some());
    // With a complete sibling, deleting complete parts spares the pending one.
    let done = pending(&ld, &h, 1, 1);
    ld.succeed(&done, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let r = delpay(&ld, json!({"payment_hash": h, "status": "complete"}))
        .await
        .unwrap();
    assert_eq!(r["payments"].as_array().unwrap().len(), 1);
    assert_eq!(
        ld.part(&k).unwrap().status,
        lightningd_standin::table::Status::Pending
    );
}

#[tokio::test]
async fn a_terminal_part_the_ledger_missed_is_still_deleted() {
    let ld = Lightningd::new(options()).await.unwrap();
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await; // before the plugin ran
    ld.start_plugin(true).await.unwrap();
    let r = delpay(&ld, json!({"payment_hash": hash(1), "status": "complete"}))
        .await
        .unwrap();
    assert_eq!(r["payments"][0]["payment_preimage"], preimage(1));
    assert!(ld.part(&k).is_none());
    until_caught_up(&ld).await;
    // Catch-up does not bring it back.
    until_records_of(&ld, &hash(1), &[]).await;
}

#[tokio::test]
async fn a_notification_arriving_after_its_delete_does_not_bring_it_back() {
    let ld = start().await;
    // Recorded, deleted, then the same notification again (late delivery).
    let k = pending(&ld, &hash(1), 1, 0);
    let late = ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    ld.notify_raw("sendpay_success", json!({ "sendpay_success": late }))
        .await;
    // Resolved while paystate was down, deleted before catch-up saw it,
    // then its notification arrives.
    ld.stop_plugin().await;
    let k2 = pending(&ld, &hash(2), 1, 0);
    let late2 = ld.succeed(&k2, &preimage(2)).await;
    ld.start_plugin(false).await.unwrap();
    delpay(&ld, json!([hash(2), "complete"])).await.unwrap();
    ld.notify_raw("sendpay_success", json!({ "sendpay_success": late2 }))
        .await;
    until_caught_up(&ld).await;
    // Read where the ledger lives, once anything the late notifications
    // wrote has landed (a listing would repair what it finds).
    until_writes_landed(&ld, 99).await;
    let records = datastore_keys(&ld);
    assert!(!records.contains(&key(&hash(1), 1, 0)), "{records:?}");
    assert!(!records.contains(&key(&hash(2), 1, 0)), "{records:?}");
    // A new attempt with the same identity is a new part, and is recorded.
    let again = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&again, &preimage(1)).await;
    until_ledger_has(&ld, 2).await;
    until_datastore_matches_node(&ld).await;
}

/// Parts `1..=n` of one hash, complete (every third failed), recorded.
async fn settled_parts(ld: &Lightningd, h: &str, n: u64) -> Vec<lightningd_standin::table::Key> {
    let keys: Vec<_> = (1..=n).map(|p| pending(ld, h, 1, p)).collect();
    for (i, k) in keys.iter().enumerate() {
        match i % 3 {
            0 => drop(ld.fail(k, Some(route_failure())).await),
            _ => drop(ld.succeed(k, &preimage(1)).await),
        }
    }
    until_ledger_has(ld, n as usize).await;
    keys
}

/// paystate's answer for a deleted part: 208, whichever way it went.
async fn gone(ld: &Lightningd, k: &lightningd_standin::table::Key) {
    let e = ld
        .call(
            "paystate-waitsendpay",
            json!({"payment_hash": k.0, "partid": k.2, "groupid": k.1, "timeout": 0}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208, "{k:?}: {e}");
}

#[tokio::test]
async fn every_way_of_deleting_is_followed_with_takeover_on_and_off() {
    for takeover in [true, false] {
        let ld = start_with(takeover).await;
        let h = hash(7);
        let keys = settled_parts(&ld, &h, 9).await;
        let status_of =
            |k: &lightningd_standin::table::Key| ld.part(k).unwrap().status.as_str().to_string();
        // The built-in, one part (the index moves: the feed tells).
        let one = &keys[1];
        delpay(&ld, json!([h, status_of(one), one.2, one.1]))
            .await
            .unwrap();
        // paystate-delpay, one part.
        let two = &keys[2];
        ld.call("paystate-delpay", json!([h, status_of(two), two.2, two.1]))
            .await
            .unwrap()
            .unwrap();
        // An autoclean-like batch on a batching connection.
        let mut c = ld.client().await.unwrap();
        c.call("batching", json!({"enable": true}))
            .await
            .unwrap()
            .unwrap();
        let batch: Vec<(&str, Value)> = keys[4..7]
            .iter()
            .map(|k| ("delpay", json!([h, status_of(k), k.2, k.1])))
            .collect();
        for a in c.call_many(&batch).await.unwrap() {
            a.unwrap();
        }
        for k in [one, two].into_iter().chain(&keys[4..7]) {
            gone(&ld, k).await;
        }
        until_datastore_matches_node(&ld).await;
        // The built-in without partid and groupid moves no index: learned
        // when an answer asks the node, never answered from the ledger.
        delpay(&ld, json!([h, "failed"])).await.unwrap();
        for k in keys.iter().step_by(3) {
            gone(&ld, k).await;
        }
        assert!(records_of(&ld, &h)
            .await
            .iter()
            .all(|(_, status)| *status == "complete"));
        until_datastore_matches_node(&ld).await;
        // paystate-delpay without them: the ledger forgets at once.
        ld.call("paystate-delpay", json!([h, "complete"]))
            .await
            .unwrap()
            .unwrap();
        assert!(records_of(&ld, &h).await.is_empty(), "takeover {takeover}");
        until_datastore_matches_node(&ld).await;
        ld.assert_no_violations();
    }
}

/// lightningd commits a batching connection's read once; a hooked delpay
/// would run in a transaction of its own. With paystate loaded, a batch of
/// a hundred deletes keeps its one commit, and the ledger's own deletes
/// go in a few batches of their own.
/// Autoclean deletes the oldest parts, a page's 64 within moments: their
/// delete items wait for the page's last delete, and the page goes whole
/// with no append (on PostgreSQL an append to an old page reads every
/// newer row).
#[tokio::test]
async fn pages_deleted_whole_take_no_delete_items() {
    let ld = start().await;
    let h = hash(9);
    let keys = settled_parts(&ld, &h, 192).await;
    until_datastore_matches_node(&ld).await;
    until_caught_up(&ld).await;
    let pages = ld
        .datastore()
        .entries
        .keys()
        .filter(|k| k.len() == 3 && k[2].bytes().all(|b| b.is_ascii_hexdigit()))
        .count();
    assert_eq!(pages, 4, "192 parts from created_index 1: 4 pages of 64");
    let mut c = ld.client().await.unwrap();
    c.call("batching", json!({"enable": true}))
        .await
        .unwrap()
        .unwrap();
    let before = ld.plugin_calls().len();
    for chunk in keys.chunks(96) {
        let batch: Vec<(&str, Value)> = chunk
            .iter()
            .map(|k| {
                let status = ld.part(k).unwrap().status.as_str().to_string();
                ("delpay", json!([h, status, k.2, k.1]))
            })
            .collect();
        for a in c.call_many(&batch).await.unwrap() {
            a.unwrap();
        }
    }
    until_datastore_matches_node(&ld).await;
    let calls: Vec<String> = ld.plugin_calls()[before..]
        .iter()
        .map(|(m, _)| m.clone())
        .filter(|m| m.contains("datastore"))
        .collect();
    assert_eq!(calls, vec!["deldatastore".to_string(); pages], "{calls:?}");
}

#[tokio::test]
async fn an_autoclean_batch_keeps_its_one_commit() {
    let ld = start().await;
    let h = hash(8);
    let keys = settled_parts(&ld, &h, 100).await;
    until_datastore_matches_node(&ld).await;
    // Start-up's reconciliation done: what is counted is the feed's.
    until_caught_up(&ld).await;
    let mut c = ld.client().await.unwrap();
    c.call("batching", json!({"enable": true}))
        .await
        .unwrap()
        .unwrap();
    let batch: Vec<(&str, Value)> = keys
        .iter()
        .map(|k| {
            let status = ld.part(k).unwrap().status.as_str().to_string();
            ("delpay", json!([h, status, k.2, k.1]))
        })
        .collect();
    let before = ld.commits();
    for a in c.call_many(&batch).await.unwrap() {
        a.unwrap();
    }
    let autoclean = ld.commits() - before;
    until_datastore_matches_node(&ld).await;
    let total = ld.commits() - before;
    assert!(ld.parts().is_empty());
    // One for the batch (reads of 64 KiB may split it in two), and the
    // ledger's hundred record deletes in one or two batches.
    assert!(autoclean <= 2, "the deletes took {autoclean} commits");
    assert!(
        total <= autoclean + 3,
        "the ledger's deletes took {} commits",
        total - autoclean
    );
}
