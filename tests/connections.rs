//! paystate's sockets to lightningd under load: a full listen queue is
//! back-pressure, never a caller's error, and however many callers wait,
//! the sockets paystate holds stay bounded (one shared watch of the
//! `created` index for every `paystate-waitpay` caller).

mod common;
use common::*;
use lightningd_standin::Lightningd;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

const CLIENTS: usize = 10;

async fn clients(ld: &Lightningd) -> Vec<lightningd_standin::client::Client> {
    let mut out = Vec::new();
    for _ in 0..CLIENTS {
        out.push(ld.client().await.unwrap());
    }
    out
}

/// Every answer to the calls sent as `w{i}` (i < n), by i, within a bound.
async fn answers(clients: Vec<lightningd_standin::client::Client>, n: usize) -> Vec<Value> {
    let mut out = vec![Value::Null; n];
    let mut seen = HashSet::new();
    for mut c in clients {
        for _ in 0..n / CLIENTS {
            let v = tokio::time::timeout(Duration::from_secs(60), c.recv())
                .await
                .expect("an answer within 60 s")
                .unwrap();
            let i: usize = v["id"].as_str().unwrap()[1..].parse().unwrap();
            assert!(seen.insert(i), "answered twice: {v}");
            out[i] = v;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listen_queue_holds_callers_back_without_failing_them() {
    let n = 300;
    let mut o = options();
    // A short queue: the burst below overflows it at once.
    o.listen_backlog = 2;
    o.check_schemas = false;
    let ld = Lightningd::start(o).await.unwrap();
    for i in 0..n as u64 {
        let k = pending(&ld, &hash(i), 1, 0);
        ld.succeed(&k, &preimage(i)).await;
    }
    until_ledger_has(&ld, n).await;
    let mut cs = clients(&ld).await;
    // lightningd busy: nothing accepted while every caller asks paystate,
    // whose calls to the node need more sockets than it keeps pooled.
    ld.accept_connections(false);
    for i in 0..n {
        cs[i % CLIENTS]
            .send(
                json!(format!("w{i}")),
                "paystate-waitpay",
                json!({"payment_hash": hash(i as u64), "timeout": 30}),
            )
            .await
            .unwrap();
    }
    // The node stays busy for a while (the fault), then frees up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ld.accept_connections(true);
    for (i, v) in answers(cs, n).await.into_iter().enumerate() {
        let r = &v["result"];
        assert_eq!(r["status"], "complete", "{v}");
        assert_eq!(r["payment_hash"], hash(i as u64), "{v}");
        assert_eq!(r["preimage"], preimage(i as u64), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_share_one_watch_of_the_node() {
    let n = 300;
    let mut o = options();
    o.check_schemas = false;
    let ld = Lightningd::start(o).await.unwrap();
    let mut cs = clients(&ld).await;
    let keys: Vec<_> = (0..n as u64)
        .map(|i| pending(&ld, &hash(i), 1, 0))
        .collect();
    for i in 0..n {
        cs[i % CLIENTS]
            .send(
                json!(format!("w{i}")),
                "paystate-waitpay",
                json!({"payment_hash": hash(i as u64), "timeout": 60}),
            )
            .await
            .unwrap();
    }
    until_waiters(&ld, n as u64).await;
    // While they wait: the test's clients, paystate's pool (16), its
    // batches' and deletes' sockets, one watch, cln-plugin's: far below a
    // socket per caller.
    // (Each caller reads the node once more after its waiter is counted.)
    let bound = CLIENTS as u64 + 24;
    let mut waiting = ld.connections().0;
    for _ in 0..1000 {
        if waiting <= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        waiting = ld.connections().0;
    }
    assert!(waiting <= bound, "{waiting} sockets open as {n} wait");
    // Parts created meanwhile (another payment each) wake the watch, not
    // a socket per caller.
    for i in 0..20u64 {
        pending(&ld, &hash(10_000 + i), 1, 0);
    }
    for (k, i) in keys.iter().zip(0..) {
        ld.succeed(k, &preimage(i)).await;
    }
    for (i, v) in answers(cs, n).await.into_iter().enumerate() {
        assert_eq!(v["result"]["status"], "complete", "{v}");
        assert_eq!(v["result"]["payment_hash"], hash(i as u64), "{v}");
    }
    // At the busiest: paystate's calls in flight (64), its pool (16), the
    // sockets it has just closed that the node has yet to reap (at most
    // a burst's 64), the rest above: still well below one per caller.
    let (_, most) = ld.connections();
    let busiest = CLIENTS as u64 + 64 + 16 + 64 + 10;
    eprintln!("sockets: {waiting} as {n} wait, {most} at the busiest");
    assert!(most <= busiest, "{most} sockets open at once");
}
