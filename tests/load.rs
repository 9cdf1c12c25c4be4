//! Load: many concurrent waiters over a large ledger, each answered exactly
//! once, no memory growth per poll, other commands not held up. CI runs a
//! bounded size; `PAYSTATE_LOAD_WAITERS=10000 PAYSTATE_LOAD_PARTS=100000
//! PAYSTATE_LOAD_POLLS=1000000 cargo test --release --test load --
//! --nocapture` runs the full one.

mod common;
use common::*;
use lightningd_standin::Lightningd;
use paystate::domain::Part;
use paystate::ledger::page;
use paystate::ledger::record::Record;
use paystate::store;
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

/// Seeded parts' hashes start here, clear of the waiters'.
const SEEDED: u64 = 1 << 32;

/// The plugin started over `parts` complete parts the node has and the
/// ledger holds (as notifications would have recorded them); they are
/// returned in order.
async fn start_over_ledger(parts: u64) -> (Lightningd, Vec<Part>) {
    let ld = Lightningd::new(options()).await.unwrap();
    let keys: Vec<_> = (0..parts).map(|i| key(&hash(SEEDED + i), 1, 0)).collect();
    ld.create_parts(keys.iter().map(|k| spec(&k.0, k.1, k.2)));
    let listings = ld.settle_quietly(&keys, |k| preimage(k.0.len() as u64));
    let seeded: Vec<Part> = listings
        .into_iter()
        .map(|v| Part::from_success_notification(&json!({ "sendpay_success": v })).unwrap())
        .collect();
    let mut pages = std::collections::BTreeMap::<u64, Vec<u8>>::new();
    for p in &seeded {
        let (page, slot) = store::page_of(p.payment.created_index);
        pages
            .entry(page)
            .or_default()
            .extend(page::record_item(slot, &Record::of(p)));
    }
    ld.seed_datastore_many(pages.into_iter().map(|(p, v)| (store::page_key(p), v)));
    ld.start_plugin(true).await.unwrap();
    until_ledger_has(&ld, parts as usize).await;
    (ld, seeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_is_answered_exactly_once() {
    let n = env("PAYSTATE_LOAD_WAITERS", 2000);
    let parts = env("PAYSTATE_LOAD_PARTS", 20_000) as u64;
    let (ld, seeded) = start_over_ledger(parts).await;
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
    // Other commands are answered while thousands wait: a poll of a
    // recorded part (read back from the datastore: none is cached after
    // start-up) and a listing of one hash. The bound only catches a hang;
    // timings are the benchmark's.
    let t = Instant::now();
    for i in [0, parts / 2, parts - 1] {
        let r = ld
            .call(
                "waitsendpay",
                json!({"payment_hash": hash(SEEDED + i), "timeout": 0}),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r, seeded[i as usize].listing());
    }
    let r = ld
        .call("paystate-listsendpays", json!([hash(SEEDED + 1)]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["payments"], json!([seeded[1].listing()]));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "other commands took {:?}",
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
    let st = until_ledger_has(&ld, parts as usize + n).await;
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
