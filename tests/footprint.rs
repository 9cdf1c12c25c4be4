//! What paystate's records cost the node, per part of history: datastore
//! rows and bytes (sqlite's `dbstat`, the stand-in keeping its datastore
//! as lightningd does), so a layout that grows fails here before any
//! real node sees it. The real node's figures are the benchmark's
//! (`tests/real/bench_real.py`, footprint).

mod common;
use common::*;
use lightningd_standin::Lightningd;

/// Parts made: one in three failed, each with a bolt11 of a real
/// regtest invoice's length.
const PARTS: u64 = 300;

/// Layout v4 (records of a few bytes, 64 `created_index` values to a
/// page): 68 bytes a part here, a row for every 64 parts. A quarter of
/// what the node's own `payments` table takes a part on a real node (573
/// bytes) is the most paystate is to cost; a layout that grows past it, or
/// back to a row a part or so, fails. (v3, a row of the part's whole
/// listing a part: 1,161 bytes; a row per v4 record: 109.)
const MAX_BYTES_PER_PART: f64 = 143.0;
const MAX_RECORDS_PER_PART: f64 = 0.05;

fn bolt11(n: u64) -> String {
    // lnbcrt, an amount, and a data part as long as a real one's (~300).
    let data: String = (0..300)
        .map(|i| b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"[((n + i) % 32) as usize] as char)
        .collect();
    format!("lnbcrt100n1{data}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_bytes_per_part_stay_within_the_layout() {
    let mut o = options();
    o.sqlite = true;
    let ld = Lightningd::start(o).await.unwrap();
    until_caught_up(&ld).await;
    let before = ld.datastore_bytes().expect("sqlite");
    for i in 0..PARTS {
        let h = hash(i);
        let mut s = spec(&h, 1, 0);
        s.bolt11 = Some(bolt11(i));
        ld.create_part(s);
        let k = key(&h, 1, 0);
        match i % 3 {
            0 => drop(ld.fail(&k, Some(route_failure())).await),
            _ => drop(ld.succeed(&k, &preimage(i)).await),
        }
    }
    until_datastore_matches_node(&ld).await;
    let entries = ld.datastore().entries;
    let ours: Vec<_> = entries
        .iter()
        .filter(|(k, _)| k.first().is_some_and(|f| f == "paystate"))
        .collect();
    let records = ours.len() as f64 / PARTS as f64;
    // What the rows hold: the key twice (the row, and the primary key's
    // index), and the data.
    let logical = ours
        .iter()
        .map(|(k, r)| 2 * (k.join("\0").len() + 1) + r.data.len())
        .sum::<usize>() as f64
        / PARTS as f64;
    let bytes = (ld.datastore_bytes().unwrap() - before) as f64 / PARTS as f64;
    eprintln!(
        "footprint: {records:.2} datastore rows a part, {logical:.0} bytes of keys \
         and data, {bytes:.0} bytes of pages (dbstat)"
    );
    assert!(records <= MAX_RECORDS_PER_PART, "{records:.2} rows a part");
    assert!(bytes <= MAX_BYTES_PER_PART, "{bytes:.0} bytes a part");
    ld.assert_no_violations();
}
