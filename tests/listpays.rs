//! `paystate-listpays`: whole payments, each the entry `paystate-waitpay`
//! gives for it, paged by payment so that no page cuts one in two.

mod common;
use common::*;
use lightningd_standin::Lightningd;
use serde_json::{json, Value};

/// Payments whose parts interleave: three hashes, two groups of one,
/// parts failed, retried and completed, one payment still pending.
async fn node() -> (Lightningd, Vec<(String, u64)>) {
    let ld = start().await;
    let (a, b, c) = (hash(1), hash(2), hash(3));
    let a1 = [pending(&ld, &a, 1, 0), pending(&ld, &a, 1, 1)];
    let b1 = pending(&ld, &b, 1, 0);
    let c1 = pending(&ld, &c, 1, 0);
    ld.fail(&a1[0], Some(route_failure())).await;
    let a1_retry = pending(&ld, &a, 1, 2);
    ld.fail(&b1, Some(destination_failure())).await;
    ld.succeed(&a1[1], &preimage(1)).await;
    ld.succeed(&a1_retry, &preimage(1)).await;
    let b2 = pending(&ld, &b, 2, 0);
    ld.succeed(&b2, &preimage(2)).await;
    ld.fail(&c1, Some(route_failure())).await;
    pending(&ld, &c, 2, 0);
    until_ledger_has(&ld, 6).await;
    let order = vec![(a, 1), (b.clone(), 1), (hash(3), 1), (b, 2), (hash(3), 2)];
    (ld, order)
}

async fn listpays(ld: &Lightningd, params: Value) -> Vec<Value> {
    let r = ld.call("paystate-listpays", params).await.unwrap().unwrap();
    r["pays"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_payment_is_its_waitpay_entry_in_order_of_its_first_part() {
    let (ld, order) = node().await;
    let all = listpays(&ld, json!({})).await;
    let mut want = Vec::new();
    // The settled ones: a poll of waitpay answers a pending one with 200.
    for (h, g) in &order[..4] {
        let e = ld
            .call("paystate-waitpay", json!([h, 0, g]))
            .await
            .unwrap()
            .or_else(|e| Ok::<_, Value>(e["data"].clone()))
            .unwrap();
        want.push(e);
    }
    assert_eq!(all.len(), 5);
    for (i, (got, want)) in all.iter().zip(&want).enumerate() {
        assert_eq!(got.to_string(), want.to_string(), "payment {i}");
    }
    assert_eq!(
        all[0]["number_of_parts"], 2,
        "the failed part is not counted"
    );
    assert_eq!(all[4]["status"], "pending");
    assert_eq!(all[4]["payment_hash"], hash(3));
    assert_eq!(all[4]["amount_sent_msat"], 101_000);
}

#[tokio::test]
async fn pages_never_cut_a_payment_in_either_order() {
    let (ld, _) = node().await;
    for index in ["created", "updated"] {
        let all = listpays(&ld, json!({"index": index})).await;
        assert_eq!(all.len(), 5);
        for reverse in [false, true] {
            let mut got = Vec::new();
            let mut start: Option<u64> = None;
            loop {
                let mut p = json!({"index": index, "limit": 2, "reverse": reverse});
                if let Some(s) = start {
                    p["start"] = json!(s);
                }
                let page = listpays(&ld, p).await;
                let Some(last) = page.last() else { break };
                let at = last[format!("{index}_index")].as_u64().unwrap_or(0);
                got.extend(page);
                start = match reverse {
                    false => Some(at + 1),
                    true if at == 0 => break,
                    true => Some(at - 1),
                };
            }
            let mut want = all.clone();
            if reverse {
                want.reverse();
            }
            assert_eq!(got, want, "{index} reverse {reverse}");
        }
    }
    let complete = listpays(&ld, json!({"status": "complete"})).await;
    assert_eq!(complete.len(), 2);
    assert!(complete.iter().all(|e| e["status"] == "complete"));
    let of_b = listpays(&ld, json!({"payment_hash": hash(2)})).await;
    assert_eq!(of_b.len(), 2, "both groups of the hash");
}

#[tokio::test]
async fn bad_parameters_are_refused_as_listpays_refuses_them() {
    let ld = start().await;
    for (params, message) in [
        (json!({"limit": 1}), "Can only specify {limit} with {index}"),
        (json!({"start": 1}), "Can only specify {start} with {index}"),
        (
            json!({"index": "sideways"}),
            "index: unknown index: invalid token '\"sideways\"'",
        ),
    ] {
        let e = ld
            .call("paystate-listpays", params.clone())
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(code(&e), -32602, "{params}");
        assert_eq!(e["message"], message, "{params}");
    }
}
