//! Unit tests of the ledger and the commands over the fakes.

use crate::app::App;
use crate::commands::delpay;
use crate::domain::{Part, Status};
use crate::error::RpcError;
use crate::fakes::{payment, FakeDatastore, FakeNode};
use crate::ledger::marks::{mark_key, Name};
use crate::ledger::recent_failures;
use crate::ledger::record::Record;
use crate::ledger::{Ledger, Lookup, Recorded};
use crate::params::Mode;
use crate::store;
use serde_json::json;
use std::sync::Arc;

/// The durable `deleting` mark paystate wrote before a delete until this
/// version; start-up still finishes deletes it finds so marked.
fn mark_as_earlier_versions_did(ds: &FakeDatastore, part: &Part) {
    ds.entries
        .lock()
        .unwrap()
        .insert(mark_key(&Name::of(part)), (0, b"deleting".to_vec()));
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

/// What the datastore holds for the part of this `created_index`.
fn stored(ds: &FakeDatastore, created_index: u64) -> Option<Record> {
    let (page, slot) = store::page_of(created_index);
    let e = ds.entries.lock().unwrap();
    let read = crate::ledger::page::read(&e.get(&store::page_key(page))?.1);
    assert_eq!(read.damage, None);
    read.records.get(&slot).cloned()
}

/// A fresh ledger over the same datastore, its index loaded.
async fn reloaded(ds: &Arc<FakeDatastore>) -> Ledger<Arc<FakeDatastore>> {
    let (again, _) = Ledger::load(ds.clone()).await.unwrap();
    again.load_all(1 << 20).await.unwrap();
    again
}

#[tokio::test]
async fn record_is_durable_idempotent_and_wakes_waiters() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let part = complete(1);
    let Lookup::Absent(waiter) = ledger.lookup_or_wait(part.key()) else {
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
    assert_eq!(ds.entries.lock().unwrap().len(), 1, "one page");
    assert_eq!(stored(&ds, 1), Some(Record::of(&part)));
    // A fresh load sees it.
    let again = reloaded(&ds).await;
    assert!(again.holds_attempt(&part.payment));
    assert_eq!(again.counts().complete, 1);
}

#[tokio::test]
async fn a_dropped_waiter_unregisters() {
    let ds = FakeDatastore::default();
    let (ledger, _) = Ledger::load(ds).await.unwrap();
    let Lookup::Absent(w) = ledger.lookup_or_wait(complete(1).key()) else {
        panic!()
    };
    drop(w);
    assert_eq!(ledger.waiter_count(), 0);
}

#[tokio::test]
async fn a_record_written_twice_is_one() {
    let ds = Arc::new(FakeDatastore::default());
    let (first, _) = Ledger::load(ds.clone()).await.unwrap();
    let (second, _) = Ledger::load(ds.clone()).await.unwrap();
    first.record(complete(1)).await.unwrap();
    first.flush().await;
    // `second` never loaded it (a crash lost what said it was written).
    assert_eq!(second.record(complete(1)).await.unwrap(), Recorded::New);
    second.flush().await;
    let again = reloaded(&ds).await;
    assert_eq!(again.counts().complete, 1);
    assert_eq!(stored(&ds, 1), Some(Record::of(&complete(1))));
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
    assert!(!ledger.holds(&complete(1).key()));
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
    assert_eq!(stored(&ds, 1), None);
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
    reloaded.load_all(1).await.unwrap();
    assert!(reloaded.attempt(&complete(1).key()).is_none());
    assert!(matches!(
        reloaded.lookup_or_wait(complete(1).key()),
        Lookup::Deleting
    ));
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
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let app = App::new(ledger, Arc::new(node), true, Mode::DEVELOPER);
    crate::catchup::once(&app, vec![], None).await;
    let report = app.catchup_report();
    assert_eq!(
        (report.state, report.imported, report.checked),
        ("done", 2, 2)
    );
    // A failed part's error is the node's to answer: imported without it.
    let failed = stored(&ds, 2).unwrap();
    assert_eq!(
        (failed.status, failed.failure),
        (Status::Failed, Default::default())
    );
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
async fn a_bad_record_is_skipped_and_the_rest_load() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    for i in 0..3 {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    // Damage after the first record of the page (created_index 1000-1002
    // share page 15): what came before it loads.
    let bad = store::page_key(15);
    let first = crate::ledger::page::record_item(40, &Record::of(&numbered(0)));
    ds.entries.lock().unwrap().get_mut(&bad).unwrap().1 =
        [first, b"{not a record".to_vec()].concat();
    let again = reloaded(&ds).await;
    assert_eq!(again.counts().complete, 1);
    assert!(again.holds_attempt(&numbered(0).payment));
    assert!(!again.holds(&numbered(1).key()));
    again.flush().await;
    assert!(
        ds.entries.lock().unwrap().contains_key(&bad),
        "left for a reader to see"
    );
}

#[tokio::test]
async fn a_part_deleted_before_its_record_loaded_goes_when_found() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    for i in 0..3 {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    let (again, _) = Ledger::load(ds.clone()).await.unwrap();
    assert!(!again.loaded());
    // The node's delete comes before the load reached the record.
    assert!(!again.forget(&numbered(1).key(), Some(Status::Complete), None));
    again.load_all(1 << 20).await.unwrap();
    assert!(again.loaded());
    assert!(!again.holds(&numbered(1).key()));
    again.flush().await;
    assert!(stored(&ds, 1001).is_none(), "its record went");
    assert_eq!(again.counts().complete, 2);
}

#[tokio::test]
async fn many_parts_load_in_steps_of_groups() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    let n = 3 * store::PAGE as u32;
    for i in 0..n {
        ledger.record(numbered(i)).await.unwrap();
    }
    ledger.flush().await;
    let (again, _) = Ledger::load(ds.clone()).await.unwrap();
    let end = (1000 + u64::from(n)) / store::PAGE + 1;
    let mut steps = Vec::new();
    while let Some(rows) = again.load_step(end, 2).await.unwrap() {
        steps.push(rows);
    }
    assert!(
        steps.iter().all(|r| *r <= 2 * store::PAGE as usize),
        "{steps:?}"
    );
    assert_eq!(steps.iter().sum::<usize>(), n as usize);
    assert_eq!(again.counts().complete, n as usize);
    let Lookup::Ready {
        created_index,
        part,
    } = again.lookup_or_wait(numbered(7).key())
    else {
        panic!("recorded")
    };
    assert_eq!((created_index, part), (1007, None), "loaded, not whole");
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
    ds.entries.lock().unwrap().remove(&store::page_key(0));
    let (reloaded, interrupted) = Ledger::load(ds.clone()).await.unwrap();
    assert_eq!(interrupted, vec![part.key()]);
    assert_eq!(reloaded.counts().deleting, 1);
    reloaded.forget(&part.key(), None, None);
    reloaded.load_all(1).await.unwrap();
    reloaded.flush().await;
    assert!(ds.entries.lock().unwrap().is_empty(), "nothing left behind");
    assert!(!reloaded.holds(&part.key()));
    assert_eq!(reloaded.counts().deleting, 0);
}

#[tokio::test]
async fn entries_that_are_not_paystates_are_skipped_at_load() {
    let ds = Arc::new(FakeDatastore::default());
    let mut page = store::page_key(0);
    {
        let mut e = ds.entries.lock().unwrap();
        let item = crate::ledger::page::record_item(1, &Record::of(&complete(1)));
        let mut foreign = page.clone();
        foreign[2] = "zz".into();
        e.insert(foreign, (0, item.clone()));
        page.push("deeper".into());
        e.insert(page, (0, item));
    }
    let (ledger, interrupted) = Ledger::load(ds.clone()).await.unwrap();
    assert!(interrupted.is_empty());
    ledger.load_all(1).await.unwrap();
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
        let Lookup::Absent(w) = app.ledger.lookup_or_wait(p.key()) else {
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
    let Lookup::Ready {
        part: Some(whole), ..
    } = app.ledger.lookup_or_wait(parts[0].key())
    else {
        panic!("recorded, and whole among the newest")
    };
    assert_eq!(*whole, parts[0]);
    assert!(ds.batches.lock().unwrap().is_empty(), "nothing written yet");
    tokio::time::sleep(crate::ledger::FLUSH_AFTER * 2).await;
    assert_eq!(
        *ds.batches.lock().unwrap(),
        vec![1],
        "one write for all three (one page)"
    );
}

/// A failed part, as a `sendpay_failure` gives it, seen at `at`.
fn failed_at(n: u8, created_index: u64, at: u64) -> Part {
    let mut payment = payment(n, Status::Failed);
    payment.created_index = created_index;
    Part {
        payment,
        failure: Some(crate::domain::Failure {
            code: 204,
            message: "failed".into(),
            details: json!({"failcode": 4103, "erring_channel": "103x1x0"})
                .as_object()
                .unwrap()
                .clone(),
            seen_at: Some(at),
        }),
    }
}

#[tokio::test]
async fn failures_of_a_window_are_counted_from_memory_or_from_the_pages_that_span_it() {
    for cap in [recent_failures::CAP, 1] {
        failures_of_a_window(cap).await;
    }
}

/// With `cap` 1 the newest failure alone is in memory: older windows are
/// read from the pages, and must give the same.
async fn failures_of_a_window(cap: usize) {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    ledger.state().index.failures.cap_at(cap);
    let parts = [
        failed_at(1, 1, 100),
        failed_at(2, 2, 200),
        failed_at(3, 300, 300),
        failed_at(4, 301, 400),
    ];
    for p in &parts {
        ledger.record(p.clone()).await.unwrap();
    }
    ledger.record(complete(5)).await.unwrap();
    ledger.forget(&parts[3].key(), None, Some(301));
    async fn window(l: &Ledger<Arc<FakeDatastore>>) -> Vec<u64> {
        let got = l.failed_between(150, 401).await.unwrap();
        got.iter().map(|f| f.created_index).collect()
    }
    assert_eq!(
        window(&ledger).await,
        [2, 300],
        "recorded in memory, written first"
    );
    let r = &ledger.failed_between(0, 101).await.unwrap()[0];
    assert_eq!(r.at, 100, "the time paystate saw it");
    assert_eq!(r.failcode, Some(4103));
    let (again, _) = Ledger::load(ds.clone()).await.unwrap();
    again.state().index.failures.cap_at(cap);
    again.load_all(1 << 20).await.unwrap();
    assert_eq!(
        window(&again).await,
        [2, 300],
        "rebuilt at load (cap {cap})"
    );
    assert!(again.failed_between(401, 500).await.unwrap().is_empty());
    let memory = again.state().index.failures.covers(150);
    assert_eq!(memory, cap > 3, "cap {cap}");
}
