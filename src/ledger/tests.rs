//! Unit tests of the ledger and the commands over the fakes.

use crate::app::App;
use crate::commands::delpay;
use crate::domain::{Part, Status};
use crate::error::RpcError;
use crate::fakes::{payment, FakeDatastore, FakeNode};
use crate::ledger::{Ledger, Lookup, Recorded};
use crate::params::Mode;
use crate::store::Summary;
use serde_json::json;
use std::sync::Arc;

/// The durable `deleting` mark paystate wrote before a delete until this
/// version; start-up still finishes deletes it finds so marked.
fn mark_as_earlier_versions_did(ds: &FakeDatastore, part: &Part) {
    ds.entries
        .lock()
        .unwrap()
        .insert(Summary::of(part).deleting_key(), (0, "deleting".into()));
}

fn complete(n: u8) -> Part {
    Part {
        payment: payment(n, Status::Complete),
        failure: None,
    }
}

async fn app_with(parts: &[Part], node: FakeNode) -> App<Arc<FakeDatastore>, Arc<FakeNode>> {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    for p in parts {
        ledger.record(p.clone()).await.unwrap();
    }
    App::new(ledger, Arc::new(node), true, Mode::DEVELOPER)
}

#[tokio::test]
async fn record_is_durable_idempotent_and_wakes_waiters() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let part = complete(1);
    let Lookup::Absent(waiter) = ledger.lookup_or_wait(part.key()).await.unwrap() else {
        panic!("not yet recorded")
    };
    assert_eq!(ledger.waiter_count(), 1);
    assert_eq!(ledger.record(part.clone()).await.unwrap(), Recorded::New);
    assert_eq!(*waiter.wait().await, part.waitsendpay_answer());
    assert_eq!(ledger.waiter_count(), 0);
    assert_eq!(
        ledger.record(part.clone()).await.unwrap(),
        Recorded::Duplicate
    );
    assert!(ds.entries.lock().unwrap().is_empty(), "written behind");
    ledger.flush().await;
    let stored = ds
        .entries
        .lock()
        .unwrap()
        .get(&Summary::of(&part).record_key())
        .cloned()
        .unwrap();
    assert_eq!(stored.0, 0, "written once");
    // A fresh load sees it.
    let (again, interrupted) = Ledger::load(ds).await.unwrap();
    assert!(interrupted.is_empty());
    assert_eq!(*again.get(&part.key()).await.unwrap().unwrap(), part);
}

#[tokio::test]
async fn a_dropped_waiter_unregisters() {
    let ds = FakeDatastore::default();
    let (ledger, _) = Ledger::load(ds).await.unwrap();
    let Lookup::Absent(w) = ledger.lookup_or_wait(complete(1).key()).await.unwrap() else {
        panic!()
    };
    drop(w);
    assert_eq!(ledger.waiter_count(), 0);
}

#[tokio::test]
async fn an_entry_written_by_an_earlier_run_is_adopted() {
    let ds = Arc::new(FakeDatastore::default());
    let (first, _) = Ledger::load(ds.clone()).await.unwrap();
    let (second, _) = Ledger::load(ds.clone()).await.unwrap();
    first.record(complete(1)).await.unwrap();
    first.flush().await;
    // `second` never saw it: its shard's listing shows it.
    assert_eq!(
        second.record(complete(1)).await.unwrap(),
        Recorded::Duplicate
    );
    second.flush().await;
    assert!(second.get(&complete(1).key()).await.unwrap().is_some());
    assert_eq!(ds.entries.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_write_changes_nothing() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    *ds.fail_next.lock().unwrap() = Some(RpcError::new(-1, "disk full"));
    // In memory at once (answers need it); dropped when its write fails,
    // to be imported from the node when asked for.
    assert_eq!(ledger.record(complete(1)).await.unwrap(), Recorded::New);
    assert!(ledger.holds(&complete(1).key()));
    ledger.flush().await;
    assert!(ledger.get(&complete(1).key()).await.unwrap().is_none());
    assert!(ds.entries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn delpay_answers_the_nodes_delete_and_the_ledger_forgets() {
    let node = FakeNode::default();
    node.parts
        .lock()
        .unwrap()
        .push(payment(1, Status::Complete));
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    ledger.record(complete(1)).await.unwrap();
    ledger.flush().await;
    let app = App::new(ledger, Arc::new(node), true, Mode::DEVELOPER);
    let hash = complete(1).payment.payment_hash.to_string();
    let r = delpay::run(&app, json!([hash, "complete"])).await.unwrap();
    assert_eq!(r["payments"][0], complete(1).listing());
    assert_eq!(*app.node.deletes.lock().unwrap(), vec![complete(1).key()]);
    assert!(!app.ledger.holds(&complete(1).key()));
    app.ledger.flush().await;
    assert!(ds.entries.lock().unwrap().is_empty());
    // Late news of it changes nothing.
    assert_eq!(
        app.ledger.record(complete(1)).await.unwrap(),
        Recorded::Deleting
    );
}

#[tokio::test]
async fn a_delete_marked_by_an_earlier_version_is_interrupted_at_load() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    ledger.record(complete(1)).await.unwrap();
    ledger.flush().await;
    mark_as_earlier_versions_did(&ds, &complete(1));
    // "Crash": a new ledger from the same datastore.
    let (reloaded, interrupted) = Ledger::load(ds).await.unwrap();
    assert_eq!(interrupted, vec![complete(1).key()]);
    assert!(reloaded.get(&complete(1).key()).await.unwrap().is_none());
    assert_eq!(reloaded.counts().deleting, 1);
    assert_eq!(
        reloaded.record(complete(1)).await.unwrap(),
        Recorded::Deleting,
        "not brought back"
    );
}

#[tokio::test]
async fn delpay_status_mismatch_is_208_and_pending_is_never_deleted() {
    let node = FakeNode::default();
    node.parts.lock().unwrap().push(payment(2, Status::Pending));
    let app = app_with(&[], node).await;
    let hash = payment(2, Status::Pending).payment_hash.to_string();
    let e = delpay::run(&app, json!([hash, "complete"]))
        .await
        .unwrap_err();
    assert_eq!(e.code, 208);
    assert!(app.node.deletes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn catch_up_imports_parts_resolved_meanwhile_without_their_failure() {
    let node = FakeNode::default();
    node.parts
        .lock()
        .unwrap()
        .extend([payment(1, Status::Complete), payment(2, Status::Failed)]);
    let app = app_with(&[], node).await;
    crate::catchup::once(&app, vec![]).await;
    let report = app.catchup_report();
    assert_eq!(
        (report.state, report.imported, report.checked),
        ("done", 2, 2)
    );
    // A failed part's error is the node's to answer: imported without it.
    let failed = app
        .ledger
        .get(&payment(2, Status::Failed).key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((failed.status(), &failed.failure), (Status::Failed, &None));
    let e = crate::commands::waitsendpay::run(
        &app,
        json!([payment(2, Status::Failed).payment_hash.to_string()]),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code, e.data.unwrap()["failcode"].as_u64()),
        (204, Some(4103))
    );
}

/// Thousands of callers may wait at once: what each holds while waiting
/// must stay small (the node calls are boxed, not inlined).
#[tokio::test]
async fn a_waiting_call_is_small() {
    let app = app_with(&[], FakeNode::default()).await;
    let payload = json!({});
    let wait = crate::commands::waitsendpay::run(&app, json!([]));
    let hook = crate::hook::handle(&app, &payload);
    assert!(
        std::mem::size_of_val(&wait) <= 1536,
        "{}",
        std::mem::size_of_val(&wait)
    );
    assert!(
        std::mem::size_of_val(&hook) <= 1536,
        "{}",
        std::mem::size_of_val(&hook)
    );
}

/// A distinct complete part per `i`, beyond `payment`'s 256.
fn numbered(i: u32) -> Part {
    let mut part = complete(1);
    part.payment.payment_hash = format!("{i:08x}").repeat(8).parse().unwrap();
    part.payment.created_index = u64::from(i) + 1000;
    part
}

#[tokio::test]
async fn load_reads_names_only_and_a_bad_record_fails_only_its_own_reads() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    for i in 0..3 {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    let bad = Summary::of(&numbered(1)).record_key();
    ds.entries.lock().unwrap().get_mut(&bad).unwrap().1 = "{not json".into();
    let (again, _) = Ledger::load(ds).await.unwrap();
    again.load_all().await.unwrap();
    assert_eq!(again.counts().complete, 3, "indexed from the names");
    let e = again.get(&numbered(1).key()).await.unwrap_err();
    assert_eq!(e.code, -1);
    assert!(
        e.message.starts_with("Unreadable datastore record of "),
        "{}",
        e.message
    );
    assert_eq!(
        *again.get(&numbered(2).key()).await.unwrap().unwrap(),
        numbered(2)
    );
}

#[tokio::test]
async fn an_answer_loads_only_its_own_shard_of_the_index() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    // Three hashes in three shards (their first bytes differ).
    let ids = [0u32, 0x1000_0000, 0x2000_0000];
    for i in ids {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    let (again, _) = Ledger::load(ds).await.unwrap();
    assert_eq!(again.shards_loaded(), 0, "nothing listed at open");
    assert_eq!(
        *again.get(&numbered(ids[2]).key()).await.unwrap().unwrap(),
        numbered(ids[2])
    );
    assert_eq!(again.shards_loaded(), 1);
    assert_eq!(again.counts().complete, 1, "only that shard's parts");
    again.load_all().await.unwrap();
    assert_eq!(again.shards_loaded(), crate::ledger::SHARDS);
    assert_eq!(again.counts().complete, 3);
}

#[tokio::test]
async fn parts_beyond_the_cache_are_read_back_from_the_datastore() {
    use crate::ledger::CACHED_PARTS;
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let n = CACHED_PARTS as u32 + 50;
    for i in 0..n {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    // The first parts were evicted; removing their records from under the
    // ledger shows that a read goes to the datastore.
    let first = Summary::of(&numbered(0)).record_key();
    let stored = ds.entries.lock().unwrap().remove(&first).unwrap();
    assert!(ledger.get(&numbered(0).key()).await.unwrap().is_none());
    ds.entries.lock().unwrap().insert(first, stored);
    assert_eq!(
        *ledger.get(&numbered(0).key()).await.unwrap().unwrap(),
        numbered(0)
    );
    let Lookup::Ready(p) = ledger.lookup_or_wait(numbered(1).key()).await.unwrap() else {
        panic!("recorded")
    };
    assert_eq!(*p, numbered(1));
    let all = ledger.read_all(ledger.summaries()).await.unwrap();
    assert_eq!(all.len(), n as usize);
}

#[tokio::test]
async fn a_delete_interrupted_after_its_record_went_is_finished_from_its_mark() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let part = complete(3);
    ledger.record(part.clone()).await.unwrap();
    ledger.flush().await;
    mark_as_earlier_versions_did(&ds, &part);
    // "Crash" between the record's delete and the mark's.
    ds.entries
        .lock()
        .unwrap()
        .remove(&Summary::of(&part).record_key());
    let (reloaded, interrupted) = Ledger::load(ds.clone()).await.unwrap();
    assert_eq!(interrupted, vec![part.key()]);
    assert_eq!(reloaded.counts().deleting, 1);
    reloaded.forget(&part.key(), None, None).await.unwrap();
    reloaded.flush().await;
    assert!(ds.entries.lock().unwrap().is_empty(), "nothing left behind");
    assert!(!reloaded.holds(&part.key()));
}

#[tokio::test]
async fn entries_that_are_not_paystates_are_skipped_at_load() {
    let ds = Arc::new(FakeDatastore::default());
    let mut parts = crate::store::parts_prefix();
    parts.push("ab".into());
    let mut foreign = parts.clone();
    foreign.extend(["not-a-part".to_string(), "record".to_string()]);
    let mut value = parts.clone();
    value.push("a-value".into());
    {
        let mut e = ds.entries.lock().unwrap();
        e.insert(foreign, (0, "x".into()));
        e.insert(value, (0, "x".into()));
    }
    let (ledger, interrupted) = Ledger::load(ds).await.unwrap();
    assert!(interrupted.is_empty());
    assert_eq!(ledger.counts(), Default::default());
}

#[tokio::test(start_paused = true)]
async fn a_notification_answers_at_once_and_writes_with_the_next_batch() {
    use crate::notifications::{self, Topic};
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let app = App::new(ledger, Arc::new(FakeNode::default()), true, Mode::DEVELOPER);
    let parts: Vec<Part> = (1..=3).map(complete).collect();
    let mut waiters = Vec::new();
    for p in &parts {
        let Lookup::Absent(w) = app.ledger.lookup_or_wait(p.key()).await.unwrap() else {
            panic!("not yet recorded")
        };
        waiters.push(w);
    }
    for p in &parts {
        let payload = json!({ "sendpay_success": p.payment });
        notifications::handle(&app, Topic::Success, &payload).await;
    }
    for (w, p) in waiters.into_iter().zip(&parts) {
        assert_eq!(*w.wait().await, p.waitsendpay_answer());
    }
    assert!(ds.batches.lock().unwrap().is_empty(), "nothing written yet");
    tokio::time::sleep(crate::ledger::FLUSH_AFTER * 2).await;
    assert_eq!(
        *ds.batches.lock().unwrap(),
        vec![3],
        "one batch for all three"
    );
}
