//! `paystate-listsendpays`: the node's terminal parts, page by page as
//! `listsendpays` pages them, and lightningd's parameter checks.

mod common;
use common::*;
use serde_json::{json, Value};

/// The node's own listing, pending parts left out.
async fn node_terminal(ld: &lightningd_standin::Lightningd, params: Value) -> Vec<Value> {
    let all = ld.call("listsendpays", params).await.unwrap().unwrap();
    all["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] != "pending")
        .cloned()
        .collect()
}

#[tokio::test]
async fn pages_are_the_nodes_terminal_parts_in_index_order() {
    let ld = start().await;
    // 30 parts: a third failed, every fifth left pending; resolved out of
    // creation order, so the two indexes differ.
    let keys: Vec<_> = (0..30).map(|n| pending(&ld, &hash(n), 1, 0)).collect();
    for (n, k) in keys.iter().enumerate().rev() {
        match n % 5 {
            0 => {}
            1 | 3 => {
                ld.fail(k, Some(route_failure())).await;
            }
            _ => {
                ld.succeed(k, &preimage(n as u64)).await;
            }
        }
    }
    until_ledger_has(&ld, 24).await;
    for index in ["created", "updated"] {
        let whole = node_terminal(&ld, json!({"index": index})).await;
        assert_eq!(whole.len(), 24);
        assert_eq!(listed(&ld, json!({"index": index})).await, whole, "{index}");
        // Walked 7 at a time, each page starting past the last one's index.
        let field = format!("{index}_index");
        let (mut walked, mut start) = (Vec::new(), 0);
        loop {
            let page = listed(&ld, json!({"index": index, "start": start, "limit": 7})).await;
            assert!(page.len() <= 7);
            walked.extend(page.iter().cloned());
            match page.last() {
                Some(last) if page.len() == 7 => start = last[&field].as_u64().unwrap() + 1,
                _ => break,
            }
        }
        assert_eq!(walked, whole, "{index} walked a page at a time");
        let failed = node_terminal(&ld, json!({"index": index, "status": "failed"})).await;
        let got = listed(
            &ld,
            json!({"index": index, "status": "failed", "limit": 100}),
        )
        .await;
        assert_eq!(got, failed);
        assert_eq!(got.len(), 12);
    }
    // Positional, as `help` shows it.
    let page = listed(&ld, json!([null, "complete", "created", 0, 3])).await;
    assert_eq!(page.len(), 3);
    assert!(page.iter().all(|p| p["status"] == "complete"));
}

#[tokio::test]
async fn paging_checks_its_parameters_as_lightningd_does() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    for params in [
        json!({"start": 1}),
        json!({"limit": 1}),
        json!({"index": "created", "start": 1, "payment_hash": hash(1)}),
        json!({"index": "sideways"}),
        json!({"index": "created", "limit": -1}),
        json!({"index": "created", "limit": 4294967296u64}),
        json!({"index": "created", "start": "x"}),
    ] {
        let want = ld.call("listsendpays", params.clone()).await.unwrap();
        let got = ld
            .call("paystate-listsendpays", params.clone())
            .await
            .unwrap();
        assert_eq!(got, want, "{params}");
        assert!(want.is_err(), "{params}");
    }
    // A hash lists its parts whatever the index and limit, as lightningd.
    let params = json!({"payment_hash": hash(1), "index": "updated", "limit": 0});
    assert_eq!(
        listed(&ld, params.clone()).await,
        node_terminal(&ld, params).await
    );
}
