//! Unit tests of the ledger and the commands over the fakes.

use crate::app::App;
use crate::commands::delpay;
use crate::domain::{Part, Status};
use crate::error::RpcError;
use crate::fakes::{payment, FakeDatastore, FakeNode};
use crate::ledger::{Ledger, Lookup, Recorded};
use crate::store;
use serde_json::json;
use std::sync::Arc;

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
    App::new(ledger, Arc::new(node), true)
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
    assert_eq!(*waiter.wait().await, part);
    assert_eq!(ledger.waiter_count(), 0);
    assert_eq!(
        ledger.record(part.clone()).await.unwrap(),
        Recorded::Duplicate
    );
    let stored = ds
        .entries
        .lock()
        .unwrap()
        .get(&store::part_key(&part.key()))
        .cloned()
        .unwrap();
    assert_eq!(stored.0, 0, "written once");
    // A fresh load sees it.
    let (again, interrupted) = Ledger::load(ds).await.unwrap();
    assert!(interrupted.is_empty());
    assert_eq!(*again.get(&part.key()).unwrap(), part);
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
async fn an_entry_written_by_an_earlier_run_is_adopted() {
    let ds = Arc::new(FakeDatastore::default());
    let (first, _) = Ledger::load(ds.clone()).await.unwrap();
    let (second, _) = Ledger::load(ds.clone()).await.unwrap();
    first.record(complete(1)).await.unwrap();
    // `second` never saw it: must-create refuses, and it adopts the copy.
    assert_eq!(
        second.record(complete(1)).await.unwrap(),
        Recorded::Duplicate
    );
    assert!(second.get(&complete(1).key()).is_some());
}

#[tokio::test]
async fn a_refused_write_changes_nothing() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    *ds.fail_next.lock().unwrap() = Some(RpcError::new(-1, "disk full"));
    assert_eq!(
        ledger.record(complete(1)).await.unwrap_err().message,
        "disk full"
    );
    assert!(ledger.get(&complete(1).key()).is_none());
    assert!(ds.entries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn delete_marks_before_the_node_and_removes_after() {
    let node = FakeNode::default();
    node.parts
        .lock()
        .unwrap()
        .push(payment(1, Status::Complete));
    let app = app_with(&[complete(1)], node).await;
    let hash = complete(1).payment.payment_hash.to_string();
    let r = delpay::run(&app, json!([hash, "complete"])).await.unwrap();
    assert_eq!(r["payments"][0], complete(1).listing());
    assert_eq!(*app.node.deletes.lock().unwrap(), vec![complete(1).key()]);
    assert!(app.ledger.list(None, None).is_empty());
    assert_eq!(app.ledger.counts().deleting, 0);
}

#[tokio::test]
async fn a_marked_delete_survives_a_crash_as_interrupted() {
    let ds = Arc::new(FakeDatastore::default());
    let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
    ledger.record(complete(1)).await.unwrap();
    ledger
        .mark_deleting(&complete(1).key(), true)
        .await
        .unwrap();
    assert!(ledger.get(&complete(1).key()).is_none(), "hidden at once");
    // "Crash": a new ledger from the same datastore.
    let (reloaded, interrupted) = Ledger::load(ds).await.unwrap();
    assert_eq!(interrupted, vec![complete(1).key()]);
    assert!(reloaded.get(&complete(1).key()).is_none());
    assert_eq!(reloaded.counts().deleting, 1);
    assert_eq!(
        reloaded.record(complete(1)).await.unwrap(),
        Recorded::Deleting,
        "not brought back"
    );
}

#[tokio::test]
async fn delpay_status_mismatch_is_211_and_pending_is_never_deleted() {
    let node = FakeNode::default();
    node.parts.lock().unwrap().push(payment(2, Status::Pending));
    let app = app_with(&[], node).await;
    let hash = payment(2, Status::Pending).payment_hash.to_string();
    let e = delpay::run(&app, json!([hash, "complete"]))
        .await
        .unwrap_err();
    assert_eq!(e.code, 211);
    assert!(app.node.deletes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn catch_up_imports_failures_with_details_and_advances_the_watermark() {
    let node = FakeNode::default();
    node.parts
        .lock()
        .unwrap()
        .extend([payment(1, Status::Complete), payment(2, Status::Failed)]);
    let app = app_with(&[], node).await;
    crate::catchup::run(&app, vec![]).await;
    let report = app.catchup_report();
    assert_eq!(
        (report.state, report.imported, report.updated_index),
        ("done", 2, 2)
    );
    let failed = app.ledger.get(&payment(2, Status::Failed).key()).unwrap();
    let e = failed.waitsendpay_answer().unwrap_err();
    assert_eq!(
        (e.code, e.data.unwrap()["failcode"].as_u64()),
        (204, Some(4103))
    );
    assert_eq!(app.ledger.watermark(), 2);
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
