//! Helpers shared by the end-to-end tests: start the real plugin binary
//! under the lightningd stand-in, make payment parts, compare answers.
#![allow(dead_code)]

use lightningd_standin::{table::Key, Lightningd, Options, PartFailure, PartSpec};
use serde_json::{json, Value};

pub const DEST: &str = "033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a";
pub const HOP: &str = "03cecbfdc68544cc596223b68ce0710c9e5d2c9cb317ee07822d95079acc703d31";

pub fn options() -> Options {
    let mut o = Options::new(env!("CARGO_BIN_EXE_paystate"));
    // Debug logs on, so tests can check what is (not) logged above debug.
    o.env.push(("CLN_PLUGIN_LOG".into(), "debug".into()));
    o
}

pub async fn start() -> Lightningd {
    Lightningd::start(options()).await.expect("plugin starts")
}

pub async fn start_with(takeover: bool) -> Lightningd {
    let mut o = options();
    o.plugin_options
        .insert("paystate-takeover".into(), json!(takeover));
    Lightningd::start(o).await.expect("plugin starts")
}

/// A distinct, valid payment hash per `n`.
pub fn hash(n: u64) -> String {
    format!("{:064x}", 0xabcd_0000_0000u64 + n)
}

pub fn preimage(n: u64) -> String {
    format!("{:064x}", 0x5eed_0000_0000u64 + n)
}

pub fn key(h: &str, groupid: u64, partid: u64) -> Key {
    (h.to_string(), groupid, partid)
}

pub fn spec(h: &str, groupid: u64, partid: u64) -> PartSpec {
    PartSpec {
        payment_hash: h.to_string(),
        groupid,
        partid,
        amount_msat: Some(100_000),
        amount_sent_msat: 101_000,
        destination: Some(DEST.into()),
        label: Some(format!("label-{partid}")),
        ..Default::default()
    }
}

/// A pending part (sendpay), returning its key.
pub fn pending(ld: &Lightningd, h: &str, groupid: u64, partid: u64) -> Key {
    ld.create_part(spec(h, groupid, partid));
    key(h, groupid, partid)
}

pub fn route_failure() -> PartFailure {
    PartFailure::routing(
        204,
        "WIRE_UNKNOWN_NEXT_PEER",
        16394,
        "reply from remote",
        1,
        DEST,
        Some("1x1x1"),
        Some(0),
        Some("400a"),
    )
}

pub fn destination_failure() -> PartFailure {
    PartFailure::routing(
        203,
        "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS",
        16399,
        "reply from remote",
        1,
        HOP,
        Some("103x1x0"),
        Some(1),
        Some("400f00000000000186a00000006c"),
    )
}

/// Polls `paystate-status` until `done` holds (or fails the test).
pub async fn until_status(ld: &Lightningd, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let st = ld
            .call("paystate-status", json!({}))
            .await
            .unwrap()
            .unwrap();
        if done(&st) {
            return st;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never {what}");
}

/// Waits until the plugin's ledger shows `n` parts in total (notifications
/// are handled asynchronously).
pub async fn until_ledger_has(ld: &Lightningd, n: usize) -> Value {
    until_status(ld, &format!("{n} parts in the ledger"), |st| {
        let total =
            st["parts"]["complete"].as_u64().unwrap() + st["parts"]["failed"].as_u64().unwrap();
        total as usize == n
    })
    .await
}

/// Waits until the catch-up reports done.
pub async fn until_caught_up(ld: &Lightningd) -> Value {
    until_status(ld, "caught up", |st| {
        assert_ne!(st["catchup"]["state"], "failed", "{st}");
        st["catchup"]["state"] == "done"
    })
    .await
}

/// `delpay` by its built-in name: the result or the error object.
pub async fn delpay(ld: &Lightningd, params: Value) -> Result<Value, Value> {
    ld.call("delpay", params).await.unwrap()
}

pub fn code(e: &Value) -> i64 {
    e["code"].as_i64().expect("error code")
}

/// The parts paystate's ledger lists, by key.
pub async fn ledger_keys(ld: &Lightningd) -> std::collections::BTreeSet<Key> {
    let r = ld
        .call("paystate-listsendpays", json!({}))
        .await
        .unwrap()
        .unwrap();
    r["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["payment_hash"].as_str().unwrap().to_string(),
                p["groupid"].as_u64().unwrap(),
                p["partid"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The parts whose records are in the datastore, with their status: the
/// ledger itself, read from under the plugin (what a crash leaves is what
/// is there).
pub fn datastore_records(ld: &Lightningd) -> std::collections::BTreeMap<Key, &'static str> {
    ld.datastore()
        .entries
        .iter()
        .filter(|(k, _)| paystate::store::page_of_key(k).is_some())
        .flat_map(|(k, r)| {
            let read = paystate::ledger::page::read(&r.data);
            assert_eq!(read.damage, None, "the page {k:?}");
            read.records.into_values().map(|s| {
                let key = (s.key.payment_hash.to_string(), s.key.groupid, s.key.partid);
                (key, s.status.as_str())
            })
        })
        .collect()
}

/// The parts whose records are in the datastore.
pub fn datastore_keys(ld: &Lightningd) -> std::collections::BTreeSet<Key> {
    datastore_records(ld).into_keys().collect()
}

/// The statuses of hash `h`'s records, read once every write paystate
/// queued so far has landed (see [`until_writes_landed`]; its marker
/// payments have hashes of their own).
pub async fn records_of(ld: &Lightningd, h: &str) -> Vec<(Key, &'static str)> {
    static MARKER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    let marker = MARKER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    until_writes_landed(ld, marker).await;
    records_of_now(ld, h)
}

/// The statuses of hash `h`'s records in the datastore as it is now.
fn records_of_now(ld: &Lightningd, h: &str) -> Vec<(Key, &'static str)> {
    datastore_records(ld)
        .into_iter()
        .filter(|(k, _)| k.0 == h)
        .collect()
}

/// Waits until hash `h`'s records are `want` (records are written and
/// deleted behind, and deletes the node's feed tells come when they come),
/// then checks that they stay so once every write queued since has landed.
pub async fn until_records_of(ld: &Lightningd, h: &str, want: &[(Key, &'static str)]) {
    for _ in 0..1000 {
        if records_of_now(ld, h) == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        records_of_now(ld, h),
        want,
        "the datastore's records of {h}"
    );
    assert_eq!(
        records_of(ld, h).await,
        want,
        "the datastore's records of {h}, later"
    );
}

/// The node's terminal parts, by key.
pub fn node_terminal_keys(ld: &Lightningd) -> std::collections::BTreeSet<Key> {
    ld.parts()
        .into_iter()
        .filter(|p| p.status != lightningd_standin::table::Status::Pending)
        .map(|p| p.key())
        .collect()
}

/// Waits until the datastore holds exactly the node's terminal parts
/// (records are written behind, in batches).
pub async fn until_datastore_matches_node(ld: &Lightningd) {
    for _ in 0..1000 {
        if datastore_keys(ld) == node_terminal_keys(ld) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        datastore_keys(ld),
        node_terminal_keys(ld),
        "the datastore's records never matched the node's terminal parts"
    );
}

/// Until paystate holds `n` waiters.
pub async fn until_waiters(ld: &Lightningd, n: u64) {
    until_status(ld, &format!("{n} waiters"), |st| {
        st["waiters"].as_u64() == Some(n)
    })
    .await;
}

/// The parts `paystate-listsendpays` lists for these params.
pub async fn listed(ld: &Lightningd, params: Value) -> Vec<Value> {
    let got = ld
        .call("paystate-listsendpays", params)
        .await
        .unwrap()
        .unwrap();
    got["payments"].as_array().unwrap().clone()
}

/// A wait's 200, as lightningd words it.
pub fn assert_timed_out(e: &Value) {
    assert_eq!(
        (code(e), e["message"].as_str()),
        (200, Some("Timed out while waiting")),
        "{e}"
    );
}

/// Until every record write paystate queued so far has reached the
/// datastore: a marker payment (hash `marker`) is settled after them, and
/// notifications are answered, and records written, in order. The marker
/// stays (a terminal part of the node, recorded).
pub async fn until_writes_landed(ld: &Lightningd, marker: u64) {
    let k = pending(ld, &hash(marker), 1, 0);
    ld.succeed(&k, &preimage(marker)).await;
    until_datastore_has(ld, &k).await;
}

/// Until `cond` holds, checked every 10 ms for at most 10 s (then the test
/// fails, naming `what`).
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

/// Until the plugin has logged a line containing `what`.
pub async fn until_logged(ld: &Lightningd, what: &str) {
    until(&format!("logged {what:?}"), || {
        ld.logs().iter().any(|l| l.message.contains(what))
    })
    .await
}

/// Until the datastore holds the record of `k`.
pub async fn until_datastore_has(ld: &Lightningd, k: &Key) {
    until(&format!("the record of {k:?} in the datastore"), || {
        datastore_keys(ld).contains(k)
    })
    .await
}
