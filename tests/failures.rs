//! `paystate-failures`: failed parts counted by channel, node or failcode,
//! from the ledger (a recent window from memory, without a read).

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn failures_are_counted_from_the_records_by_channel_node_and_code() {
    let ld = start().await;
    let (a, b) = (hash(1), hash(2));
    let parts = [
        pending(&ld, &a, 1, 0),
        pending(&ld, &a, 1, 1),
        pending(&ld, &b, 1, 0),
        pending(&ld, &b, 1, 1),
    ];
    ld.fail(&parts[0], Some(route_failure())).await;
    ld.fail(&parts[1], Some(route_failure())).await;
    ld.fail(&parts[2], Some(destination_failure())).await;
    ld.succeed(&parts[3], &preimage(2)).await;
    until_ledger_has(&ld, 4).await;
    let by = |by: &str| {
        let ld = &ld;
        let by = by.to_string();
        async move {
            ld.call("paystate-failures", json!({"by": by}))
                .await
                .unwrap()
                .unwrap()
        }
    };
    until_caught_up(&ld).await;
    let before = ld.plugin_calls().len();
    let r = by("channel").await;
    let reads: Vec<String> = ld.plugin_calls()[before..]
        .iter()
        .map(|(method, _)| method.clone())
        .collect();
    assert!(
        !reads.iter().any(|m| m == "listdatastore"),
        "the last day's failures are counted from memory: {reads:?}"
    );
    assert_eq!(r["failed_parts"], 3);
    let rows = r["failures"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["erring_channel"], "1x1x1");
    assert_eq!(rows[0]["erring_direction"], 0);
    assert_eq!(rows[0]["count"], 2);
    assert_eq!(rows[0]["payments"], 1, "two parts of one payment");
    assert_eq!(
        rows[0]["failcodes"],
        json!([{"failcode": 16394, "failcodename": "WIRE_UNKNOWN_NEXT_PEER", "count": 2}])
    );
    assert_eq!(rows[1]["erring_channel"], "103x1x0");
    let nodes = by("node").await;
    assert_eq!(nodes["failures"][0]["erring_node"], DEST);
    assert_eq!(nodes["failures"][1]["erring_node"], HOP);
    let codes = by("failcode").await;
    assert_eq!(codes["failures"][0]["failcode"], 16394);
    assert_eq!(
        codes["failures"][1]["failcodename"],
        "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"
    );
    // A window that ends before them holds none.
    let first = rows[0]["first_at"].as_u64().unwrap();
    let none = ld
        .call("paystate-failures", json!({"since": 1, "until": first}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none["failed_parts"], 0);
    // A deleted failure is no longer counted (a delete of one part, as
    // autoclean's, moves the node's deleted index, which paystate follows).
    delpay(
        &ld,
        json!({"payment_hash": b, "status": "failed", "partid": 0, "groupid": 1}),
    )
    .await
    .unwrap();
    until_ledger_has(&ld, 3).await;
    assert_eq!(by("channel").await["failed_parts"], 2);
}
