//! Model-based test: random sequences of {start a part, resolve it as
//! success or failure, waitsendpay, delpay, restart, SIGKILL} run against
//! the real plugin under the stand-in, every answer compared with what the
//! documented contract says given the node's table; at the end the
//! datastore must hold a record of every terminal part of the node and of
//! no other part (but those a whole-hash delete left to be learned).
//!
//! `PAYSTATE_MODEL_SEQUENCES=5000 cargo test --release --test model` runs
//! more (default 300); `PAYSTATE_MODEL_SEED=N` replays one sequence.

mod common;
use common::*;
use lightningd_standin::table::{Part, Status};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

type Key = (String, u64, u64);

/// What the contract says `waitsendpay` (timeout 0) answers, given the
/// node's table (the ledger holds exactly its terminal parts).
fn expected_wait(
    node: &[Part],
    h: &str,
    partid: u64,
    groupid: Option<u64>,
) -> Result<Value, Value> {
    let g = groupid
        .or_else(|| {
            node.iter()
                .filter(|p| p.payment_hash == h)
                .map(|p| p.groupid)
                .max()
        })
        .unwrap_or(0);
    match node.iter().find(|p| p.key() == (h.to_string(), g, partid)) {
        None => Err(
            json!({"code": 208, "message": format!("Never attempted payment part {partid} for '{h}'")}),
        ),
        Some(p) => match p.status {
            Status::Pending => Err(json!({"code": 200, "message": "Timed out while waiting"})),
            Status::Complete => Ok(p.listing()),
            Status::Failed => Err(p.stored_error()),
        },
    }
}

/// What the contract says `delpay` answers, and which parts it deletes.
fn expected_delpay(
    node: &[Part],
    h: &str,
    status: Status,
    part: Option<(u64, u64)>,
) -> (Result<Value, Value>, Vec<Key>) {
    let mut parts: Vec<&Part> = node.iter().filter(|p| p.payment_hash == h).collect();
    if parts.is_empty() {
        return (
            Err(json!({"code": 208, "message": format!("Unknown payment with payment_hash: {h}")})),
            vec![],
        );
    }
    if let Some((partid, groupid)) = part {
        parts.retain(|p| p.partid == partid && p.groupid == groupid);
        if parts.is_empty() {
            return (
                Err(
                    json!({"code": 208, "message": "No payment for that payment_hash with that partid and groupid"}),
                ),
                vec![],
            );
        }
    }
    parts.sort_by_key(|p| p.created_index);
    // lightningd names the status of the last part it passed over.
    let other = parts
        .iter()
        .rev()
        .map(|p| p.status)
        .find(|s| *s != status)
        .unwrap_or(parts[0].status)
        .as_str();
    let doomed: Vec<&Part> = parts.into_iter().filter(|p| p.status == status).collect();
    if doomed.is_empty() {
        let message = format!(
            "Payment with hash {h} has {other} status but it different from the one provided {}",
            status.as_str()
        );
        return (Err(json!({"code": 208, "message": message})), vec![]);
    }
    let listed: Vec<Value> = doomed.iter().map(|p| p.listing()).collect();
    (
        Ok(json!({ "payments": listed })),
        doomed.iter().map(|p| p.key()).collect(),
    )
}

async fn sequence(seed: u64, ops: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9e3779b97f4a7c15) | 1);
    let ld = start().await;
    let mut log: Vec<String> = Vec::new();
    let hashes: Vec<String> = (0..4).map(|i| hash(seed * 16 + i)).collect();
    // Parts a delpay of a whole hash deleted: it moves no index, so
    // paystate learns of it when an answer or a reconciliation asks the
    // node, and their records may linger until then.
    let mut silent: BTreeSet<Key> = BTreeSet::new();
    for step in 0..ops {
        let node = ld.parts();
        let h = hashes[rng.below(hashes.len() as u64) as usize].clone();
        let pending: Vec<Key> = node
            .iter()
            .filter(|p| p.status == Status::Pending)
            .map(|p| p.key())
            .collect();
        match rng.below(100) {
            0..=24 => {
                let (g, p) = (1 + rng.below(2), rng.below(3));
                if node.iter().all(|x| x.key() != (h.clone(), g, p)) {
                    log.push(format!("{step}: start {h}/{g}/{p}"));
                    ld.create_part(spec(&h, g, p));
                }
            }
            25..=44 if !pending.is_empty() => {
                let k = &pending[rng.below(pending.len() as u64) as usize];
                if rng.chance(60) {
                    log.push(format!("{step}: succeed {k:?}"));
                    ld.succeed(k, &preimage(seed)).await;
                } else {
                    log.push(format!("{step}: fail {k:?}"));
                    let f = match rng.below(3) {
                        0 => route_failure(),
                        1 => destination_failure(),
                        _ => lightningd_standin::PartFailure::malformed("beef"),
                    };
                    ld.fail(k, Some(f)).await;
                }
            }
            45..=69 => {
                let partid = rng.below(3);
                let groupid = if rng.chance(50) {
                    Some(1 + rng.below(2))
                } else {
                    None
                };
                let mut params = json!({"payment_hash": h, "timeout": 0, "partid": partid});
                if let Some(g) = groupid {
                    params["groupid"] = json!(g);
                }
                log.push(format!("{step}: waitsendpay {params}"));
                let got = ld.call("waitsendpay", params).await.unwrap();
                let want = expected_wait(&ld.parts(), &h, partid, groupid);
                assert_eq!(got, want, "seed {seed}\n{}", log.join("\n"));
            }
            70..=91 => {
                let status = if rng.chance(50) {
                    Status::Complete
                } else {
                    Status::Failed
                };
                let part = rng.chance(40).then(|| (rng.below(3), 1 + rng.below(2)));
                let mut params = json!([h, status.as_str()]);
                if let Some((p, g)) = part {
                    params = json!([h, status.as_str(), p, g]);
                }
                log.push(format!("{step}: delpay {params}"));
                let (want, doomed) = expected_delpay(&ld.parts(), &h, status, part);
                let got = delpay(&ld, params).await;
                assert_eq!(got, want, "seed {seed}\n{}", log.join("\n"));
                if part.is_none() {
                    silent.extend(doomed.iter().cloned());
                }
                for k in doomed {
                    assert!(
                        ld.part(&k).is_none(),
                        "seed {seed}: {k:?} still in the node"
                    );
                }
            }
            92..=95 => {
                log.push(format!("{step}: restart"));
                ld.stop_plugin().await;
                ld.start_plugin(false).await.unwrap();
            }
            96..=99 => {
                log.push(format!("{step}: SIGKILL"));
                ld.kill_plugin().await;
                ld.start_plugin(false).await.unwrap();
            }
            _ => {}
        }
    }
    until_caught_up(&ld).await;
    let want = node_terminal_keys(&ld);
    // Read where the ledger lives: every terminal part of the node has its
    // record, and no other part does but those deleted silently.
    let within = |records: &BTreeSet<Key>| {
        want.is_subset(records) && records.difference(&want).all(|k| silent.contains(k))
    };
    for _ in 0..1000 {
        if within(&datastore_keys(&ld)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records = datastore_keys(&ld);
    assert!(
        within(&records),
        "seed {seed}: the datastore's records {records:?}, the node's terminal parts {want:?}, \
         deleted silently {silent:?}\n{}",
        log.join("\n")
    );
    // The listing answers exactly the node's terminal parts.
    for _ in 0..300 {
        if ledger_keys(&ld).await == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        ledger_keys(&ld).await,
        want,
        "seed {seed}: final listing\n{}",
        log.join("\n")
    );
    // The listing above asked the node about every hash: whatever a
    // delpay without partid and groupid deleted, the records follow.
    until_datastore_matches_node(&ld).await;
    ld.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sequences_agree_with_the_model() {
    if let Ok(seed) = std::env::var("PAYSTATE_MODEL_SEED") {
        sequence(seed.parse().unwrap(), 40).await;
        return;
    }
    // A sequence takes a fraction of a second; one that hangs names itself.
    let bounded = |seed| async move {
        tokio::time::timeout(Duration::from_secs(60), sequence(seed, 40))
            .await
            .unwrap_or_else(|_| panic!("seed {seed} hung (PAYSTATE_MODEL_SEED={seed} replays it)"))
    };
    let n: u64 = std::env::var("PAYSTATE_MODEL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for seed in 0..n {
        bounded(seed).await;
    }
}
