//! waitsendpay end to end: the real plugin under the lightningd stand-in,
//! called by its built-in name (through the rpc_command hook).

mod common;
use common::*;
use lightningd_standin::PartFailure;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn wait(ld: &lightningd_standin::Lightningd, params: Value) -> Result<Value, Value> {
    ld.call("waitsendpay", params).await.unwrap()
}

#[tokio::test]
async fn complete_part_answers_its_listsendpays_fields() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    let success = ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let r = wait(&ld, json!({"payment_hash": h})).await.unwrap();
    assert_eq!(r, success);
    // Field for field what the node's own table says.
    let listed = ld
        .call("listsendpays", json!({"payment_hash": h}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r, listed["payments"][0]);
    assert_eq!(
        wait(&ld, json!([h, 0])).await.unwrap(),
        r,
        "positional poll"
    );
    assert_eq!(
        wait(&ld, json!({"payment_hash": h.to_uppercase()}))
            .await
            .unwrap(),
        r
    );
    ld.assert_no_violations();
}

#[tokio::test]
async fn failed_parts_answer_their_stored_error() {
    let ld = start().await;
    let cases: [(u64, PartFailure); 3] = [
        (1, PartFailure::malformed("deadbeef")),
        (2, destination_failure()),
        (3, route_failure()),
    ];
    for (n, f) in &cases {
        let k = pending(&ld, &hash(*n), 1, 0);
        ld.fail(&k, Some(f.clone())).await;
    }
    until_ledger_has(&ld, 3).await;
    for (n, f) in cases {
        let e = wait(&ld, json!({"payment_hash": hash(n), "timeout": 0}))
            .await
            .unwrap_err();
        assert_eq!(code(&e), f.code);
        assert_eq!(e["message"], f.message);
        let data = &e["data"];
        assert_eq!(
            data["status"], "failed",
            "a failed part shows as failed: {e}"
        );
        assert_eq!(data["payment_hash"], hash(n));
        for (k, v) in &f.details {
            assert_eq!(&data[k], v, "failure field {k}");
        }
        // What lightningd's own waitsendpay answers for the stored failure.
        let node = ld.part(&key(&hash(n), 1, 0)).unwrap().stored_error();
        assert_eq!(e, node);
    }
    let e = wait(&ld, json!({"payment_hash": hash(1)}))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e), e["message"].as_str().unwrap()),
        (202, "Malformed error reply")
    );
    assert_eq!(e["data"]["onionreply"], "deadbeef");
    ld.assert_no_violations();
}

#[tokio::test]
async fn never_attempted_is_208() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    for (params, partid, hh) in [
        (json!({"payment_hash": hash(99)}), 0, hash(99)),
        (json!({"payment_hash": h, "partid": 1}), 1, h.clone()),
        (
            json!({"payment_hash": h, "partid": 0, "groupid": 7}),
            0,
            h.clone(),
        ),
    ] {
        let e = wait(&ld, params).await.unwrap_err();
        assert_eq!(
            e,
            json!({"code": 208, "message": format!("Never attempted payment part {partid} for '{hh}'")})
        );
    }
}

#[tokio::test]
async fn failure_reason_unknown_is_209() {
    let ld = lightningd_standin::Lightningd::new(options())
        .await
        .unwrap();
    let k = pending(&ld, &hash(5), 1, 0);
    // Failed with no stored reason (an old database), before paystate ran.
    ld.fail(&k, None).await;
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    let e = wait(&ld, json!({"payment_hash": hash(5)}))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        json!({"code": 209, "message": "Payment failure reason unknown"})
    );
}

#[tokio::test]
async fn default_groupid_is_the_latest_group() {
    let ld = start().await;
    let h = hash(1);
    let g1 = pending(&ld, &h, 1, 0);
    ld.fail(&g1, Some(destination_failure())).await;
    let g2 = pending(&ld, &h, 2, 0);
    ld.succeed(&g2, &preimage(1)).await;
    until_ledger_has(&ld, 2).await;
    assert_eq!(
        wait(&ld, json!({"payment_hash": h})).await.unwrap()["groupid"],
        2
    );
    assert_eq!(
        code(
            &wait(&ld, json!({"payment_hash": h, "groupid": 1}))
                .await
                .unwrap_err()
        ),
        203
    );
    // A newer group still pending in the node is the default, not the
    // ledger's newest terminal one.
    pending(&ld, &h, 3, 0);
    assert_eq!(
        code(
            &wait(&ld, json!({"payment_hash": h, "timeout": 0}))
                .await
                .unwrap_err()
        ),
        200
    );
}

#[tokio::test]
async fn pending_part_polls_and_times_out_with_200() {
    let ld = start().await;
    let h = hash(1);
    pending(&ld, &h, 1, 0);
    let e = wait(&ld, json!({"payment_hash": h, "timeout": 0}))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        json!({"code": 200, "message": "Timed out while waiting"})
    );
    let t = Instant::now();
    let e = wait(&ld, json!({"payment_hash": h, "timeout": 1}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 200);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "answered after {:?}",
        t.elapsed()
    );
    let st = ld
        .call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st["waiters"], 0, "a timed-out waiter is unregistered");
}

#[tokio::test]
async fn blocking_wait_is_released_by_success_and_by_failure() {
    let ld = start().await;
    let (ok, bad) = (pending(&ld, &hash(1), 1, 0), pending(&ld, &hash(2), 1, 0));
    let mut c1 = ld.client().await.unwrap();
    let mut c2 = ld.client().await.unwrap();
    let w1 = tokio::spawn(async move {
        c1.call("waitsendpay", json!({"payment_hash": hash(1)}))
            .await
            .unwrap()
    });
    let w2 =
        tokio::spawn(async move { c2.call("waitsendpay", json!([hash(2), 60])).await.unwrap() });
    until_waiters(&ld, 2).await;
    let success = ld.succeed(&ok, &preimage(1)).await;
    ld.fail(&bad, Some(route_failure())).await;
    assert_eq!(w1.await.unwrap().unwrap(), success);
    let e = w2.await.unwrap().unwrap_err();
    assert_eq!(code(&e), 204);
    // As lightningd's own waiters get it: the part as it was before failing.
    assert_eq!(e["data"]["status"], "pending");
    assert!(e["data"].get("updated_index").is_none());
    assert_eq!(e["data"]["erring_channel"], "1x1x1");
    // Polled afterwards: failed, with its updated_index.
    let e = ld
        .call("waitsendpay", json!([hash(2), 0]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e["data"]["status"], "failed");
    assert!(e["data"]["updated_index"].is_u64());
    ld.assert_no_violations();
}

#[tokio::test]
async fn a_hundred_waiters_on_one_part_are_all_answered() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let mut c = ld.client().await.unwrap();
        tasks.push(tokio::spawn(async move {
            c.call(
                "waitsendpay",
                json!({"payment_hash": hash(1), "timeout": 60}),
            )
            .await
            .unwrap()
        }));
    }
    until_waiters(&ld, 100).await;
    let success = ld.succeed(&k, &preimage(1)).await;
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), success);
    }
    until_waiters(&ld, 0).await;
}

#[tokio::test]
async fn mpp_parts_are_waited_on_separately() {
    let ld = start().await;
    let h = hash(1);
    let (p1, p2) = (pending(&ld, &h, 1, 1), pending(&ld, &h, 1, 2));
    let mut c = ld.client().await.unwrap();
    let w2 = tokio::spawn(async move {
        c.call(
            "waitsendpay",
            json!({"payment_hash": hash(1), "partid": 2, "groupid": 1}),
        )
        .await
        .unwrap()
    });
    until_waiters(&ld, 1).await;
    let s1 = ld.succeed(&p1, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    assert!(!w2.is_finished(), "part 2 waits for part 2");
    assert_eq!(
        wait(&ld, json!({"payment_hash": h, "partid": 1, "timeout": 0}))
            .await
            .unwrap(),
        s1
    );
    let e = wait(&ld, json!({"payment_hash": h, "timeout": 0}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 208, "no part 0 in an MPP payment");
    let s2 = ld.succeed(&p2, &preimage(1)).await;
    assert_eq!(w2.await.unwrap().unwrap(), s2);
    assert_eq!(s2["partid"], 2);
}

#[tokio::test]
async fn a_notification_racing_the_wait_is_not_missed() {
    let ld = start().await;
    // Resolve each part at the moment a waiter arrives: whatever the
    // interleaving, every waiter gets the outcome, none hangs.
    for n in 0..30u64 {
        let k = pending(&ld, &hash(n), 1, 0);
        let mut c = ld.client().await.unwrap();
        let w = tokio::spawn(async move {
            c.call(
                "waitsendpay",
                json!({"payment_hash": hash(n), "timeout": 10}),
            )
            .await
            .unwrap()
        });
        if n % 3 == 1 {
            tokio::task::yield_now().await;
        }
        if n % 3 == 2 {
            tokio::time::sleep(Duration::from_micros(200 * n)).await;
        }
        let s = ld.succeed(&k, &preimage(n)).await;
        assert_eq!(w.await.unwrap().unwrap(), s, "waiter {n}");
    }
}

#[tokio::test]
async fn parameter_errors_are_lightningds() {
    let ld = start().await;
    let h = hash(1);
    let cases = [
        (
            json!({"payment_hash": "zz"}),
            "payment_hash: should be a 32 byte hex value: invalid token '\"zz\"'",
        ),
        (json!({}), "missing required parameter: payment_hash"),
        (
            json!({"payment_hash": h, "timeout": -1}),
            "timeout: should be an integer: invalid token '-1'",
        ),
        (
            json!({"payment_hash": h, "timeout": 1.5}),
            "timeout: should be an integer: invalid token '1.5'",
        ),
        (
            json!({"payment_hash": h, "partid": "x"}),
            "partid: should be an unsigned 64 bit integer: invalid token '\"x\"'",
        ),
        (
            json!([h, 1, 0, 1, 5]),
            "too many parameters: got 5, expected 4",
        ),
        (
            json!({"payment_hash": 12}),
            "payment_hash: should be a 32 byte hex value: invalid token '12'",
        ),
    ];
    for (params, message) in cases {
        let e = wait(&ld, params.clone()).await.unwrap_err();
        assert_eq!(e, json!({"code": -32602, "message": message}), "{params}");
        // The node's own parser says the same.
        ld.stop_plugin().await;
        let builtin = wait(&ld, params.clone()).await.unwrap_err();
        assert_eq!(builtin, e, "stand-in built-in for {params}");
        ld.start_plugin(false).await.unwrap();
    }
}
