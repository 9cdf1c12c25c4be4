//! Load: many concurrent waiters each answered exactly once, no memory
//! growth per poll, other commands not held up. CI runs a bounded size;
//! `PAYSTATE_LOAD_WAITERS=10000 PAYSTATE_LOAD_POLLS=1000000 cargo test
//! --release --test load -- --nocapture` runs the full one.

mod common;
use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_is_answered_exactly_once() {
    let n = env("PAYSTATE_LOAD_WAITERS", 2000);
    let ld = start().await;
    let conns = 20;
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(ld.client().await.unwrap());
    }
    for i in 0..n as u64 {
        pending(&ld, &hash(i), 1, 0);
        clients[i as usize % conns]
            .send(
                json!(format!("w{i}")),
                "waitsendpay",
                json!({"payment_hash": hash(i), "timeout": 300}),
            )
            .await
            .unwrap();
        if i % 500 == 0 {
            eprintln!("sent {i}");
        }
    }
    eprintln!("all sent");
    for round in 0.. {
        let st = ld
            .call("paystate-status", json!({}))
            .await
            .unwrap()
            .unwrap();
        if st["waiters"].as_u64() == Some(n as u64) {
            break;
        }
        assert!(
            round < 6000,
            "only {} of {n} waiters registered",
            st["waiters"]
        );
        if round % 100 == 99 {
            eprintln!("waiters {}", st["waiters"]);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Other commands are not held up by thousands of waiters.
    let t = Instant::now();
    let r = ld
        .call("paystate-listsendpays", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert!(r["payments"].as_array().unwrap().is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        t.elapsed()
    );
    for i in 0..n as u64 {
        ld.succeed(&key(&hash(i), 1, 0), &preimage(i)).await;
    }
    let mut seen = HashSet::new();
    for (ci, mut c) in clients.into_iter().enumerate() {
        for got in 0..n / conns {
            let v = match tokio::time::timeout(Duration::from_secs(20), c.recv()).await {
                Ok(v) => v.unwrap(),
                Err(_) => {
                    let st = ld
                        .call("paystate-status", json!({}))
                        .await
                        .unwrap()
                        .unwrap();
                    let hooks = ld
                        .sent_to_plugin()
                        .iter()
                        .filter(|m| m["method"] == "rpc_command")
                        .count();
                    let notes = ld
                        .sent_to_plugin()
                        .iter()
                        .filter(|m| m["method"] == "sendpay_success")
                        .count();
                    panic!("client {ci} got only {got} answers; total seen {}; status {st}; hooks {hooks}; notifications {notes}", seen.len())
                }
            };
            let id = v["id"].as_str().unwrap().to_string();
            let i: u64 = id[1..].parse().unwrap();
            assert_eq!(v["result"]["payment_preimage"], preimage(i), "{v}");
            assert!(seen.insert(id), "answered twice");
        }
    }
    assert_eq!(seen.len(), n);
    let st = ld
        .call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st["waiters"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_does_not_grow_memory() {
    let polls = env("PAYSTATE_LOAD_POLLS", 20_000);
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let pid = ld.plugin_pid().unwrap();
    let mut c = ld.client().await.unwrap();
    let params = json!({"payment_hash": hash(1), "timeout": 0, "groupid": 1});
    // Warm up allocator pools, then measure.
    for _ in 0..polls / 10 {
        c.call("waitsendpay", params.clone())
            .await
            .unwrap()
            .unwrap();
    }
    let before = rss_kib(pid);
    for _ in 0..polls {
        c.call("waitsendpay", params.clone())
            .await
            .unwrap()
            .unwrap();
    }
    let after = rss_kib(pid);
    eprintln!("RSS before {before} KiB, after {polls} polls {after} KiB");
    assert!(
        after <= before + 2048,
        "RSS grew from {before} KiB to {after} KiB over {polls} polls"
    );
}
