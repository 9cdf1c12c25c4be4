//! paystate's own cost, measured end to end: the release binary under the
//! lightningd stand-in. Prints one table. Run: `cargo bench --bench paystate`
//! (`PAYSTATE_BENCH_QUICK=1` for a smaller run).

use lightningd_standin::client::Client;
use lightningd_standin::{Lightningd, Options, PartSpec};
use paystate::domain::Part;
use paystate::store;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DEST: &str = "033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a";

fn quick() -> bool {
    std::env::var_os("PAYSTATE_BENCH_QUICK").is_some()
}

fn scale(n: usize) -> usize {
    if quick() {
        (n / 10).max(1)
    } else {
        n
    }
}

/// `BENCH_ONLY=startup,memory` runs only those sections (for profiling).
fn wanted(section: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |v| v.split(',').any(|s| s == section))
}

/// Spreads bits like a real payment hash (a SHA-256 output): the ledger's
/// datastore shards by the first byte, so sequential hashes would all land
/// in one shard and measure a layout no node has.
fn mix(mut z: u64) -> u64 {
    // splitmix64's finalizer
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash(n: u64) -> String {
    format!("{:016x}{:016x}{:032x}", mix(n), mix(n ^ 0xbe00), n)
}

fn preimage(n: u64) -> String {
    format!("{:064x}", 0x5eed_0000_0000u64 + n)
}

fn spec(n: u64) -> PartSpec {
    PartSpec {
        payment_hash: hash(n),
        groupid: 1,
        partid: 0,
        amount_msat: Some(100_000),
        amount_sent_msat: 101_000,
        destination: Some(DEST.into()),
        label: Some(format!("bench-{n}")),
        bolt11: Some(format!("lnbcrt1u1p{}", "q".repeat(280))),
        ..Default::default()
    }
}

fn key(n: u64) -> (String, u64, u64) {
    (hash(n), 1, 0)
}

fn options() -> Options {
    // BENCH_PLUGIN runs another binary (e.g. a script wrapping it in a profiler).
    let plugin =
        std::env::var("BENCH_PLUGIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_paystate").into());
    let mut o = Options::new(plugin);
    o.check_schemas = false;
    // The node's tables in SQLite, a commit per call, as lightningd keeps
    // them: what a write or a subtree read costs shows. BENCH_MEMORY=1
    // measures paystate alone.
    o.sqlite = std::env::var_os("BENCH_MEMORY").is_none();
    if let Ok(v) = std::env::var("BENCH_PLUGIN_ENV") {
        if let Some((k, v)) = v.split_once('=') {
            o.env.push((k.into(), v.into()));
        }
    }
    o
}

async fn start() -> Lightningd {
    let ld = Lightningd::start(options()).await.unwrap();
    until_caught_up(&ld).await;
    ld
}

async fn status(ld: &Lightningd) -> Value {
    ld.call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap()
}

async fn until_caught_up(ld: &Lightningd) {
    while status(ld).await["catchup"]["state"] != "done" {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn until(ld: &Lightningd, f: impl Fn(&Value) -> bool) {
    while !f(&status(ld).await) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.5), p(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn timed_calls(c: &mut Client, n: usize, method: &str, params: Value) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let _ = c.call(method, params.clone()).await.unwrap();
        out.push(t.elapsed());
    }
    out
}

/// User plus system CPU time the process has used, in ms.
fn cpu_ms(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = s
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks * 10
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Registers one waiter per part on pipelined connections, then resolves
/// the parts one by one, each after the previous answer, and returns each
/// wake-up latency (emitting `sendpay_success` to the caller's answer).
async fn wake(ld: &Lightningd, first: u64, n: usize) -> Vec<Duration> {
    let conns = n.clamp(1, 50);
    let mut clients = Vec::new();
    for _ in 0..conns {
        clients.push(ld.client().await.unwrap());
    }
    for i in 0..n as u64 {
        ld.create_part(spec(first + i));
        let c = &mut clients[i as usize % conns];
        c.send(
            json!(format!("w{}", first + i)),
            "waitsendpay",
            json!({"payment_hash": hash(first + i), "timeout": 120}),
        )
        .await
        .unwrap();
    }
    until(ld, |s| s["waiters"].as_u64() == Some(n as u64)).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for mut c in clients {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(v) = c.recv().await {
                let _ = tx.send((v["id"].as_str().unwrap_or("").to_string(), Instant::now()));
            }
        });
    }
    drop(tx);
    // One at a time: each latency is one wake-up with the others waiting.
    let mut out = Vec::new();
    for i in 0..n as u64 {
        let t = Instant::now();
        ld.succeed(&key(first + i), &preimage(first + i)).await;
        let (id, at) = rx.recv().await.expect("every waiter answered");
        assert_eq!(id, format!("w{}", first + i));
        out.push(at - t);
    }
    out
}

#[tokio::main]
async fn main() {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |a: &str, b: String, c: String| {
        println!("{a:<44} {b:<28} {c}");
        rows.push((a.into(), b, c));
    };
    println!(
        "paystate benchmark ({} run)\n",
        if quick() { "quick" } else { "full" }
    );

    if wanted("calls") {
        let ld = start().await;
        let mut c = ld.client().await.unwrap();
        let rounds = scale(3000);
        ld.create_part(spec(1));
        ld.succeed(&key(1), &preimage(1)).await;
        until(&ld, |s| s["parts"]["complete"] == 1).await;
        let calls = [
            ("paystate-status", json!({})),
            (
                "waitsendpay",
                json!({"payment_hash": hash(1), "timeout": 0}),
            ),
            (
                "waitsendpay",
                json!({"payment_hash": hash(1), "timeout": 0, "groupid": 1}),
            ),
            (
                "paystate-waitsendpay",
                json!({"payment_hash": hash(1), "timeout": 0}),
            ),
            (
                "paystate-waitsendpay",
                json!({"payment_hash": hash(1), "timeout": 0, "groupid": 1}),
            ),
        ];
        // Interleaved, one of each per round: the machine's drift over the
        // run weighs on the floor and the polls alike, so their ratio holds.
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); calls.len()];
        for _ in 0..rounds {
            for (i, (method, params)) in calls.iter().enumerate() {
                times[i].extend(timed_calls(&mut c, 1, method, params.clone()).await);
            }
        }
        // The plugin's own CPU per call, each call alone: what paystate
        // spends, apart from the round trip through lightningd.
        let pid = ld.plugin_pid().unwrap();
        let mut cpu = Vec::new();
        for (method, params) in &calls {
            let before = cpu_ms(pid);
            timed_calls(&mut c, rounds, method, params.clone()).await;
            cpu.push((cpu_ms(pid) - before) as f64 * 1000.0 / rounds as f64);
        }
        let mut times = times.into_iter().map(stats);
        let floor = times.next().expect("the floor");
        row(
            "floor: paystate-status round trip",
            format!("median {}", us(floor.0)),
            format!("p99 {}; plugin CPU {:.0} µs/call", us(floor.1), cpu[0]),
        );
        for ((label, s), cpu) in [
            "poll: waitsendpay (hook), no groupid",
            "poll: waitsendpay (hook), with groupid",
            "poll: paystate-waitsendpay, no groupid",
            "poll: paystate-waitsendpay, with groupid",
        ]
        .into_iter()
        .zip(times)
        .zip(&cpu[1..])
        {
            row(
                label,
                format!("median {}", us(s.0)),
                format!(
                    "{:.2}× floor; plugin CPU {cpu:.0} µs/call",
                    s.0.as_secs_f64() / floor.0.as_secs_f64()
                ),
            );
        }

        let mut next = 1000u64;
        for n in [1usize, 100, scale(10_000)] {
            let mut lat = Vec::new();
            let reps = if n == 1 { scale(200) } else { 1 };
            for _ in 0..reps {
                lat.extend(wake(&ld, next, n).await);
                next += n as u64;
            }
            let s = stats(lat);
            row(
                &format!("wake: {n} waiter(s), success to answer"),
                format!("median {}", us(s.0)),
                format!(
                    "p99 {} (+{} over floor)",
                    us(s.1),
                    us(s.0.saturating_sub(floor.0))
                ),
            );
        }
    }

    for waiters in [0usize, 1000].into_iter().filter(|_| wanted("notify")) {
        let ld = start().await;
        let mut held = Vec::new();
        if waiters > 0 {
            let mut w = ld.client().await.unwrap();
            for i in 0..waiters as u64 {
                ld.create_part(spec(900_000 + i));
                w.send(
                    json!(format!("h{i}")),
                    "waitsendpay",
                    json!({"payment_hash": hash(900_000 + i), "timeout": 600}),
                )
                .await
                .unwrap();
            }
            held.push(w);
            until(&ld, |s| s["waiters"].as_u64() == Some(waiters as u64)).await;
        }
        let n = scale(5000) as u64;
        for i in 0..n {
            ld.create_part(spec(i));
        }
        let pid = ld.plugin_pid().unwrap();
        let cpu_before = cpu_ms(pid);
        let t = Instant::now();
        for i in 0..n {
            ld.succeed(&key(i), &preimage(i)).await;
        }
        until(&ld, |s| s["parts"]["complete"].as_u64() == Some(n)).await;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        let cpu_per = (cpu_ms(pid) - cpu_before) as f64 * 1000.0 / n as f64;
        row(
            &format!("notify throughput, {waiters} waiters"),
            format!("{rate:.0} notifications/s"),
            format!("{n} recorded; plugin CPU {cpu_per:.0} µs each"),
        );
        ld.stop_plugin().await;
    }

    if wanted("autoclean") {
        // autoclean's way: a batching connection, a hundred one-part
        // deletes per write. With paystate loaded and without, the same
        // table; the commits as lightningd would make them.
        let n = scale(2000) as u64;
        let mut figures = Vec::new();
        for with_paystate in [false, true] {
            let ld = match with_paystate {
                true => start().await,
                false => Lightningd::new(options()).await.unwrap(),
            };
            for i in 0..n {
                ld.create_part(spec(i));
                ld.succeed(&key(i), &preimage(i)).await;
            }
            if with_paystate {
                until(&ld, |s| s["parts"]["complete"].as_u64() == Some(n)).await;
            }
            let mut c = ld.client().await.unwrap();
            c.call("batching", json!({"enable": true}))
                .await
                .unwrap()
                .unwrap();
            let (commits, t) = (ld.commits(), Instant::now());
            for page in (0..n).collect::<Vec<_>>().chunks(100) {
                let calls: Vec<(&str, Value)> = page
                    .iter()
                    .map(|i| ("delpay", json!([hash(*i), "complete", 0, 1])))
                    .collect();
                for a in c.call_many(&calls).await.unwrap() {
                    a.unwrap();
                }
            }
            let took = t.elapsed();
            if with_paystate {
                until(&ld, |s| s["parts"]["complete"].as_u64() == Some(0)).await;
            }
            figures.push((took, ld.commits() - commits));
        }
        let ((plain, plain_commits), (with, with_commits)) = (figures[0], figures[1]);
        row(
            &format!("autoclean-like batched deletes of {n} parts"),
            format!("{:.2}× without paystate", with.as_secs_f64() / plain.as_secs_f64()),
            format!("commits {plain_commits} without, {with_commits} with (the ledger's batches included)"),
        );
    }

    if wanted("delpay") {
        let ld = start().await;
        let mut c = ld.client().await.unwrap();
        let mut one = Vec::new();
        for i in 0..scale(200) as u64 {
            ld.create_part(spec(i));
            ld.succeed(&key(i), &preimage(i)).await;
        }
        until(&ld, |s| {
            s["parts"]["complete"].as_u64() == Some(scale(200) as u64)
        })
        .await;
        for i in 0..scale(200) as u64 {
            let t = Instant::now();
            c.call("delpay", json!([hash(i), "complete"]))
                .await
                .unwrap()
                .unwrap();
            one.push(t.elapsed());
        }
        // The same on a node without paystate, and a datastore write of a
        // record's size there: the built-in and the floor beside it.
        let plain = Lightningd::new(options()).await.unwrap();
        let mut pc = plain.client().await.unwrap();
        let (mut builtin, mut write) = (Vec::new(), Vec::new());
        for i in 0..scale(200) as u64 {
            plain.create_part(spec(i));
            plain.succeed(&key(i), &preimage(i)).await;
            let t = Instant::now();
            pc.call("delpay", json!([hash(i), "complete"]))
                .await
                .unwrap()
                .unwrap();
            builtin.push(t.elapsed());
            let t = Instant::now();
            pc.call(
                "datastore",
                json!({"key": ["bench", i.to_string()], "string": "r".repeat(900)}),
            )
            .await
            .unwrap()
            .unwrap();
            write.push(t.elapsed());
        }
        let (one, builtin, write) = (stats(one).0, stats(builtin).0, stats(write).0);
        row(
            "delpay: one part",
            format!("median {}", us(one)),
            format!(
                "{:.2}× the built-in ({}); a datastore write {}",
                one.as_secs_f64() / builtin.as_secs_f64(),
                us(builtin),
                us(write)
            ),
        );
        let mut hundred = Vec::new();
        for r in 0..5u64 {
            let h = hash(50_000 + r);
            for p in 0..100u64 {
                ld.create_part(PartSpec {
                    partid: p,
                    ..spec(50_000 + r)
                });
                ld.succeed(&(h.clone(), 1, p), &preimage(r)).await;
            }
            until(&ld, |s| s["parts"]["complete"].as_u64() == Some(100)).await;
            let t = Instant::now();
            let r = c
                .call("delpay", json!([h, "complete"]))
                .await
                .unwrap()
                .unwrap();
            hundred.push(t.elapsed());
            assert_eq!(r["payments"].as_array().unwrap().len(), 100);
        }
        row(
            "delpay: a hash with 100 parts",
            format!("median {:.2} ms", stats(hundred).0.as_secs_f64() * 1e3),
            String::new(),
        );
    }

    for n in [0usize, scale(10_000), scale(100_000)]
        .into_iter()
        .filter(|_| wanted("startup"))
    {
        let ld = Lightningd::new(options()).await.unwrap();
        let listings = ld.create_parts((0..n as u64).map(spec));
        let mut pages = std::collections::BTreeMap::<u64, Vec<u8>>::new();
        for (i, mut v) in listings.into_iter().enumerate() {
            v["status"] = json!("complete");
            v["payment_preimage"] = json!(preimage(i as u64));
            v["updated_index"] = json!(i + 1);
            v["completed_at"] = v["created_at"].clone();
            let part = Part::from_success_notification(&json!({ "sendpay_success": v })).unwrap();
            let (page, slot) = store::page_of(part.payment.created_index);
            let record = paystate::ledger::record::Record::of(&part);
            let item = paystate::ledger::page::record_item(slot, &record);
            pages.entry(page).or_default().extend(item);
        }
        ld.seed_datastore_many(pages.into_iter().map(|(p, v)| (store::page_key(p), v)));
        // Nothing to catch up: the node's table is empty.
        let t = Instant::now();
        ld.start_plugin(true).await.unwrap();
        let init = t.elapsed();
        until(&ld, |s| s["parts"]["complete"].as_u64() == Some(n as u64)).await;
        let loaded = t.elapsed();
        let pid = ld.plugin_pid().unwrap();
        row(
            &format!("start-up with {n} parts"),
            format!("{:.0} ms to loaded", loaded.as_secs_f64() * 1e3),
            format!(
                "init at {:.0} ms; plugin CPU {} ms; peak RSS {} MiB, now {} MiB",
                init.as_secs_f64() * 1e3,
                cpu_ms(pid),
                rss_kib(pid, "VmHWM:") / 1024,
                rss_kib(pid, "VmRSS:") / 1024
            ),
        );
        ld.stop_plugin().await;
    }

    if wanted("memory") {
        let ld = start().await;
        let n = scale(10_000);
        let mut clients = Vec::new();
        for _ in 0..50 {
            clients.push(ld.client().await.unwrap());
        }
        for i in 0..n as u64 {
            ld.create_part(spec(i));
            clients[i as usize % 50]
                .send(
                    json!(format!("m{i}")),
                    "waitsendpay",
                    json!({"payment_hash": hash(i), "timeout": 600}),
                )
                .await
                .unwrap();
        }
        until(&ld, |s| s["waiters"].as_u64() == Some(n as u64)).await;
        let pid = ld.plugin_pid().unwrap();
        row(
            &format!("memory: {n} waiters"),
            format!("peak RSS {} MiB", rss_kib(pid, "VmHWM:") / 1024),
            String::new(),
        );
    }
    let _ = rows;
}
