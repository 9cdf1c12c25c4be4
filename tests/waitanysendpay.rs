//! `paystate-waitanysendpay`: every outcome followed by `updated_index`,
//! once each and in order, failures as `waitsendpay` gives them, across a
//! plugin restart.

mod common;
use common::*;
use lightningd_standin::Lightningd;
use serde_json::{json, Value};

async fn next(ld: &Lightningd, last: u64) -> Value {
    ld.call("paystate-waitanysendpay", json!([last, 10]))
        .await
        .unwrap()
        .unwrap()
}

/// What the built-in `waitsendpay` answers for a failed part.
async fn builtin_failure(ld: &Lightningd, p: &Value) -> Value {
    let params = json!([
        p["payment_hash"],
        0,
        p.get("partid").unwrap_or(&json!(0)),
        p["groupid"]
    ]);
    ld.call("waitsendpay", params).await.unwrap().unwrap_err()
}

#[tokio::test]
async fn every_outcome_once_in_order_across_a_restart() {
    let ld = start_with(false).await;
    let keys: Vec<_> = (0..8).map(|n| pending(&ld, &hash(n), 1, 0)).collect();
    // Resolved out of creation order, a third failed.
    for (n, k) in keys.iter().enumerate().rev().take(4) {
        if n % 3 == 0 {
            ld.fail(k, Some(route_failure())).await;
        } else {
            ld.succeed(k, &preimage(n as u64)).await;
        }
    }
    let (mut last, mut seen) = (0, Vec::new());
    for _ in 0..4 {
        let got = next(&ld, last).await;
        let p = &got["payment"];
        let u = p["updated_index"].as_u64().unwrap();
        assert!(u > last, "in updated_index order");
        last = u;
        match p["status"].as_str() {
            Some("failed") => assert_eq!(got["failure"], builtin_failure(&ld, p).await),
            _ => assert!(got.get("failure").is_none()),
        }
        seen.push(p["payment_hash"].clone());
    }
    // The follower's side of a restart: paystate away, parts resolved
    // meanwhile, then picked up from the last index seen.
    ld.stop_plugin().await;
    for (n, k) in keys.iter().enumerate().take(4) {
        if n % 3 == 0 {
            ld.fail(k, Some(route_failure())).await;
        } else {
            ld.succeed(k, &preimage(n as u64)).await;
        }
    }
    ld.start_plugin(false).await.unwrap();
    for _ in 0..4 {
        let got = next(&ld, last).await;
        let u = got["payment"]["updated_index"].as_u64().unwrap();
        assert!(u > last);
        last = u;
        seen.push(got["payment"]["payment_hash"].clone());
    }
    seen.sort_by_key(|h| h.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 8, "every part once");
    let e = ld
        .call("paystate-waitanysendpay", json!([last, 0]))
        .await
        .unwrap()
        .unwrap_err();
    assert_timed_out(&e);
}

#[tokio::test]
async fn a_waiting_follower_is_released_by_the_next_outcome() {
    let ld = start().await;
    let done = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&done, &preimage(1)).await;
    let k = pending(&ld, &hash(2), 1, 0);
    // Without lastpay_index: outcomes from now on, not the one before.
    let mut c = ld.client().await.unwrap();
    let reads = updated_index_reads(&ld);
    let w =
        tokio::spawn(async move { c.call("paystate-waitanysendpay", json!({})).await.unwrap() });
    // The caller has read where the node's index stands (subscribed to
    // outcomes before): from then on, every outcome is its.
    for _ in 0..1000 {
        if updated_index_reads(&ld) > reads {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        updated_index_reads(&ld) > reads,
        "the caller never read the index"
    );
    assert!(!w.is_finished());
    ld.fail(&k, Some(destination_failure())).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), w)
        .await
        .expect("answered within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(got["payment"]["payment_hash"], hash(2).as_str());
    assert_eq!(got["failure"], builtin_failure(&ld, &got["payment"]).await);
    let e = ld
        .call("paystate-waitanysendpay", json!({"timeout": "x"}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e["message"],
        "timeout: should be an integer: invalid token '\"x\"'"
    );
}

/// How often paystate has read the node's `updated_index` (a `wait` for 0).
fn updated_index_reads(ld: &Lightningd) -> usize {
    ld.plugin_calls()
        .iter()
        .filter(|(m, p)| m == "wait" && p["indexname"] == "updated" && p["nextvalue"] == 0)
        .count()
}
