//! A node that misbehaves: paystate answers correctly or with an error
//! naming what went wrong, and keeps its ledger (read from the datastore
//! itself, never through a command that repairs it).

mod common;
use common::*;
use lightningd_standin::{Fault, Lightningd};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn an_unreadable_row_is_an_error_never_a_delete() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    let success = ld.succeed(&k, &preimage(1)).await;
    until_datastore_matches_node(&ld).await;
    // A row as a later release might write it: a field paystate needs
    // is gone.
    let mut row = ld
        .call("listsendpays", json!({"payment_hash": hash(1)}))
        .await
        .unwrap()
        .unwrap();
    row["payments"][0]
        .as_object_mut()
        .unwrap()
        .remove("created_index");
    for method in [
        "paystate-waitsendpay",
        "waitsendpay",
        "paystate-listsendpays",
    ] {
        ld.inject("listsendpays", Fault::Answer(row.clone()), 1);
        let e = ld
            .call(method, json!([hash(1)]))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(code(&e), -1, "{method}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("cannot read lightningd's payment row") && message.contains(&hash(1)),
            "{method}: {message}"
        );
        assert_eq!(
            datastore_keys(&ld),
            [key(&hash(1), 1, 0)].into(),
            "{method}: the record stays"
        );
    }
    assert_eq!(
        ld.call("paystate-waitsendpay", json!([hash(1), 0]))
            .await
            .unwrap()
            .unwrap(),
        success
    );
}

#[tokio::test]
async fn a_stalled_node_slows_paystate_and_fresh_sockets_carry_on() {
    let mut o = options();
    o.env
        .push(("PAYSTATE_ANSWER_TIMEOUT_MS".into(), "300".into()));
    let ld = Lightningd::start(o).await.unwrap();
    until_caught_up(&ld).await;
    // A record's write never answered: its batch gives up, the socket is
    // dropped, and the next write goes on a new one.
    ld.inject("datastore", Fault::Stall, 1);
    let k2 = pending(&ld, &hash(2), 1, 0);
    let s2 = ld.succeed(&k2, &preimage(2)).await;
    until_logged(&ld, "no answer to a batch of").await;
    let k3 = pending(&ld, &hash(3), 1, 0);
    let s3 = ld.succeed(&k3, &preimage(3)).await;
    until_datastore_has(&ld, &key(&hash(3), 1, 0)).await;
    // A read never answered: that caller is told, the next one answered.
    ld.inject("listsendpays", Fault::Stall, 1);
    let e = ld
        .call("paystate-waitsendpay", json!([hash(3), 0]))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), -1, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no answer to listsendpays"),
        "{e}"
    );
    for (h, want) in [(hash(3), s3), (hash(2), s2)] {
        let got = ld
            .call("paystate-waitsendpay", json!([h, 0]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, want);
    }
    // The part whose write was lost is imported when asked for.
    until_datastore_matches_node(&ld).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_while_the_ledger_loads_are_queued_within_a_bound() {
    // Past the queue's bound (10,000): the rest are left to a
    // reconciliation, and the ledger still ends with every part.
    let n = 10_100u64;
    let ld = Lightningd::new(options()).await.unwrap();
    // The ledger's load waits on a busy node while payments resolve.
    let busy = Arc::new(tokio::sync::Semaphore::new(0));
    ld.inject("listdatastore", Fault::Gate(busy.clone()), 1);
    ld.start_plugin(true).await.unwrap();
    for i in 0..n {
        let k = pending(&ld, &hash(i), 1, 0);
        ld.succeed(&k, &preimage(i)).await;
    }
    until_logged(&ld, "notifications queued while the ledger loads").await;
    busy.add_permits(1);
    until_logged(&ld, "notifications were left out of a full queue").await;
    for _ in 0..6000 {
        if datastore_keys(&ld).len() as u64 == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(datastore_keys(&ld).len() as u64, n, "every part recorded");
    let e = ld
        .call("paystate-waitsendpay", json!([hash(n - 1), 0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e["payment_preimage"], preimage(n - 1));
}
