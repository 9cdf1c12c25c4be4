//! `paystate-waitpay`: a whole payment (one hash, one group) waited on by
//! several callers, released by the notification that settles it.

mod common;
use common::*;
use lightningd_standin::Lightningd;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

async fn waiter(ld: &Lightningd, params: Value) -> JoinHandle<Result<Value, Value>> {
    let mut c = ld.client().await.unwrap();
    tokio::spawn(async move { c.call("paystate-waitpay", params).await.unwrap() })
}

#[tokio::test]
async fn every_caller_is_released_by_the_part_that_completes_the_payment() {
    let ld = start().await;
    let h = hash(1);
    let parts: Vec<_> = (0..3).map(|partid| pending(&ld, &h, 1, partid)).collect();
    let mut waiters = Vec::new();
    for _ in 0..4 {
        waiters.push(waiter(&ld, json!([h])).await);
    }
    // Each caller waits on each of the three parts.
    until_waiters(&ld, 12).await;
    ld.fail(&parts[2], Some(route_failure())).await;
    until_waiters(&ld, 8).await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "one part failed: still pending"
    );
    // A part sent in the group after the callers read the node: each reads
    // it then, and waits on it too.
    pending(&ld, &h, 1, 3);
    until_waiters(&ld, 12).await;
    let reads = |ld: &Lightningd| {
        ld.plugin_calls()
            .iter()
            .filter(|(m, _)| m == "listsendpays")
            .count()
    };
    let before = reads(&ld);
    ld.succeed(&parts[1], &preimage(1)).await;
    let mut answers = Vec::new();
    for w in waiters {
        answers.push(w.await.unwrap().unwrap());
    }
    // The completing part's notification is its row: no read of the node.
    assert_eq!(reads(&ld), before, "answered without reading the node");
    for e in answers {
        assert_eq!(e["status"], "complete");
        assert_eq!(e["payment_hash"], h.as_str());
        // The pending parts count, the late one included, the failed one
        // not (listpays' rules).
        assert_eq!(e["number_of_parts"], 3);
        assert_eq!(e["preimage"], preimage(1));
    }
    until_waiters(&ld, 0).await;
}

#[tokio::test]
async fn a_failure_just_before_the_completion_counts() {
    // lightningd fails one part and completes another in one go: the
    // waiter must not count the failed part as live, whichever
    // notification's handler the runtime runs first.
    let ld = start().await;
    for round in 0..20 {
        let h = hash(10 + round);
        let parts: Vec<_> = (0..3).map(|partid| pending(&ld, &h, 1, partid)).collect();
        let w = waiter(&ld, json!([h])).await;
        until_waiters(&ld, 3).await;
        ld.fail(&parts[0], Some(route_failure())).await;
        ld.succeed(&parts[1], &preimage(1)).await;
        let e = w.await.unwrap().unwrap();
        assert_eq!(e["status"], "complete");
        assert_eq!(e["number_of_parts"], 2, "round {round}: {e}");
        let listed = ld
            .call("paystate-waitpay", json!([h, 0]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            e.get("amount_sent_msat"),
            listed.get("amount_sent_msat"),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_failed_group_is_answered_when_its_last_part_fails() {
    let ld = start().await;
    let h = hash(2);
    let a = pending(&ld, &h, 1, 0);
    let b = pending(&ld, &h, 1, 1);
    let w = waiter(&ld, json!({"payment_hash": h, "timeout": 60})).await;
    until_waiters(&ld, 2).await;
    ld.fail(&a, Some(route_failure())).await;
    until_waiters(&ld, 1).await;
    assert!(!w.is_finished());
    ld.fail(&b, Some(destination_failure())).await;
    let e = w.await.unwrap().unwrap();
    assert_eq!(e["status"], "failed");
    assert_eq!(e["amount_sent_msat"], 0);
    assert!(e.get("number_of_parts").is_none());
}

#[tokio::test]
async fn a_part_retried_in_the_group_completes_it() {
    let ld = start().await;
    let h = hash(3);
    let first = pending(&ld, &h, 1, 0);
    let w = waiter(&ld, json!([h])).await;
    until_waiters(&ld, 1).await;
    // The failed part is retried in the same group before the failure is
    // seen by the waiter's next read.
    let retry = pending(&ld, &h, 1, 1);
    ld.fail(&first, Some(route_failure())).await;
    until_waiters(&ld, 1).await;
    assert!(!w.is_finished(), "the retry is pending");
    ld.succeed(&retry, &preimage(3)).await;
    let e = w.await.unwrap().unwrap();
    assert_eq!(e["status"], "complete");
    assert!(e.get("number_of_parts").is_none(), "one live part");
}

#[tokio::test]
async fn polls_timeouts_and_unknown_payments() {
    let ld = start().await;
    let h = hash(4);
    let k = pending(&ld, &h, 2, 0);
    let poll = ld.call("paystate-waitpay", json!([h, 0])).await.unwrap();
    assert_eq!(code(&poll.unwrap_err()), 200);
    let t = std::time::Instant::now();
    let e = ld
        .call("paystate-waitpay", json!([h, 1]))
        .await
        .unwrap()
        .unwrap_err();
    assert_timed_out(&e);
    assert!(t.elapsed() >= std::time::Duration::from_secs(1));
    until_waiters(&ld, 0).await;
    let e = ld
        .call("paystate-waitpay", json!([hash(5)]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208);
    let e = ld
        .call("paystate-waitpay", json!([h, 0, 1]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208, "group 1 was never attempted: {e}");
    ld.succeed(&k, &preimage(4)).await;
    let done = ld
        .call("paystate-waitpay", json!([h, 0, 2]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done["status"], "complete");
    // Parameters checked as waitsendpay checks its own.
    for (params, want) in [
        (json!([]), "missing required parameter: payment_hash"),
        (
            json!([h, "x"]),
            "timeout: should be an integer: invalid token '\"x\"'",
        ),
        (
            json!([h, 0, -1]),
            "groupid: should be an unsigned 64 bit integer: invalid token '-1'",
        ),
    ] {
        let e = ld
            .call("paystate-waitpay", params)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((code(&e), e["message"].as_str()), (-32602, Some(want)));
    }
}
