//! Bringing the ledger level with the node: at start-up, and whenever the
//! deletes feed missed some. Terminal parts the node has and the ledger
//! lacks (resolved while paystate was not running, or recorded and lost
//! in a crash before their write) are imported; parts the ledger holds
//! and the node no longer has (deleted while paystate was not running, or
//! by a `delpay` that moved no index, or whose record's delete a crash
//! lost) are dropped. Deletes an earlier version marked are finished.

use crate::app::App;
use crate::domain::{Part, PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::import::{import, next_page, PAGE};
use crate::ledger::Recorded;
use crate::node::{Node, Page};
use crate::store::Datastore;
use std::collections::HashSet;

/// Finishes a delete that a crash interrupted in a version of paystate
/// that marked deletes durably (`["paystate", "v2", "deleting", …]`; this
/// one writes no marks): the part goes from the node, then from the
/// ledger, mark and all.
pub async fn finish_delete<D: Datastore, N: Node>(
    app: &App<D, N>,
    key: PartKey,
) -> Result<(), RpcError> {
    let _guard = app.ledger.lock(&key.payment_hash).await;
    let status = app
        .node
        .parts_of(key.payment_hash)
        .await?
        .into_iter()
        .find(|p| p.key() == key)
        .map(|p| p.status);
    match status {
        Some(Status::Pending) => {
            // A new attempt with the same identity; the old part is gone.
        }
        Some(s) => {
            let part = Some((key.partid, key.groupid));
            let deleted = app.node.delpay_builtin(key.payment_hash, s, part).await;
            app.signals.note_node_delete();
            match deleted? {
                Err(e) if e.code != codes::PAY_NO_SUCH_PAYMENT => return Err(e),
                _ => {}
            }
        }
        None => {}
    }
    app.ledger.forget(&key, None, None).await.map(drop)
}

/// How often the ledger is reconciled with the node's table when nothing
/// asks for it sooner: a `delpay` without `partid` and `groupid` moves no
/// index, so only a look at the table (or an answer about its hash) shows
/// what it deleted. A pass reads the table a page at a time, paced: at
/// 100,000 parts a few seconds of lightningd's time, every ten minutes.
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The whole start-up catch-up, then a reconciliation each time one is
/// asked for (deletes the feed missed) and every [`RECONCILE_EVERY`];
/// outcomes go to the status report.
pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, interrupted: Vec<PartKey>) {
    once(app, interrupted).await;
    loop {
        let _ = tokio::time::timeout(RECONCILE_EVERY, app.signals.reconciliation_asked()).await;
        app.update_catchup(|r| r.state = "running");
        report(app, whole_table(app).await);
    }
}

/// The start-up catch-up alone.
pub async fn once<D: Datastore, N: Node>(app: &App<D, N>, interrupted: Vec<PartKey>) {
    app.update_catchup(|r| r.state = "running");
    report(app, catch_up(app, interrupted).await);
}

fn report<D: Datastore, N: Node>(app: &App<D, N>, outcome: Result<(), RpcError>) {
    match outcome {
        Ok(()) => app.update_catchup(|r| r.state = "done"),
        Err(e) => {
            log::warn!("Catch-up with the node failed: {} ({})", e.message, e.code);
            app.update_catchup(|r| {
                r.state = "failed";
                r.error = Some(format!("{} ({})", e.message, e.code));
            })
        }
    }
}

async fn catch_up<D: Datastore, N: Node>(
    app: &App<D, N>,
    interrupted: Vec<PartKey>,
) -> Result<(), RpcError> {
    // A small ledger's index loads at once; a large one's in the background
    // at the end (answers load what they need as they go).
    let small = app.node.parts_created().await? <= SMALL_LEDGER;
    if small {
        app.ledger.load_small().await?;
    }
    for key in interrupted {
        finish_delete(app, key).await?;
        app.update_catchup(|r| r.deletes_finished += 1);
        log::info!("Finished the interrupted delete of {key}");
    }
    // The rest of the index (counts, listings, reconciliation): answers
    // do not wait for it. Then one pass over the node's table by
    // created_index finds what resolved while paystate was away. (Reading
    // only what was updated since the last catch-up, `index=updated`, is
    // a scan of the whole table in lightningd: 102 ms at 100,000 parts.)
    let shards: Vec<u16> = (0..crate::ledger::SHARDS as u16).collect();
    let (mut next, mut at_once) = (0, SHARDS_AT_ONCE.0);
    while next < shards.len() {
        let some = &shards[next..shards.len().min(next + at_once)];
        let listed = paced(app.ledger.ensure_shards(some)).await?;
        next += some.len();
        // As many shards as make some ROWS_AT_ONCE rows.
        let per_shard = listed.div_ceil(some.len()).max(1);
        at_once = (ROWS_AT_ONCE / per_shard).clamp(SHARDS_AT_ONCE.0, SHARDS_AT_ONCE.1);
    }
    whole_table(app).await
}

/// Shards listed in one round trip while the index loads, fewest and most:
/// as many as hold some [`ROWS_AT_ONCE`] parts by the last ones listed
/// (lightningd reads ~50 µs a row: 8 shards of ~25 parts at 100,000 parts
/// are 10-20 ms of its time); on a first start, empty, 64 at once.
const SHARDS_AT_ONCE: (usize, usize) = (8, 64);
const ROWS_AT_ONCE: usize = 200;

/// A node that has made at most this many payment parts has a ledger small
/// enough to list in one go (lightningd then reads at most this many
/// records, a few milliseconds' work).
const SMALL_LEDGER: u64 = 2_000;

/// Imports the terminal parts of a page read from the node that the
/// ledger lacks: every record queued, then written (one commit per
/// hundred). Paced as one call.
async fn import_missing<D: Datastore, N: Node>(
    app: &App<D, N>,
    page: &[Payment],
    deletes_before: u64,
) -> Result<(), RpcError> {
    paced(async {
        let mut fresh = Vec::new();
        for p in page.iter().filter(|p| p.status != Status::Pending) {
            app.ledger.ensure(&p.payment_hash).await?;
            if !app.ledger.holds_attempt(p) {
                fresh.push(p.clone());
            }
        }
        let mut imported = 0;
        for payment in fresh {
            // A delete since the page was read: ask the node again.
            let recorded = if app.signals.node_deletes() != deletes_before {
                import(app, payment, deletes_before).await?.is_some()
            } else {
                let part = Part {
                    payment,
                    failure: None,
                };
                app.ledger.record(part).await? == Recorded::New
            };
            imported += recorded as usize;
        }
        app.ledger.flush().await;
        app.update_catchup(|r| r.imported += imported);
        Ok(())
    })
    .await
}

/// One pass over the node's whole table: imports any terminal part the
/// ledger lacks, then drops what the ledger holds and the node no longer
/// has (the whole index loaded first). Parts created after the pass began
/// are left alone: the node had them all when their page was read, or
/// their delete reaches the ledger through the feed. It runs in the
/// background, answering goes on meanwhile (answers ask the node whether
/// a part exists), and it is paced so that a large table does not crowd
/// out the node's other commands.
async fn whole_table<D: Datastore, N: Node>(app: &App<D, N>) -> Result<(), RpcError> {
    app.ledger.load_all().await?;
    let held: HashSet<(PartKey, u64)> = app
        .ledger
        .summaries()
        .into_iter()
        .map(|s| (s.key, s.created_index))
        .collect();
    let created_before = app.node.parts_created().await?;
    let mut in_node: HashSet<(PartKey, u64)> = HashSet::new();
    walk_table(app, |p| {
        in_node.insert((p.key(), p.created_index));
    })
    .await?;
    for s in app.ledger.summaries() {
        let gone = !in_node.contains(&(s.key, s.created_index));
        if gone && s.created_index <= created_before && held.contains(&(s.key, s.created_index)) {
            // That attempt existed when the pass began and no page showed
            // it: deleted. (Recorded again, it is another attempt, with
            // another created_index, which this leaves alone.)
            app.ledger
                .forget(&s.key, Some(s.status), Some(s.created_index))
                .await?;
            app.update_catchup(|r| r.dropped += 1);
            log::info!(
                "Dropped {} from the ledger: the node no longer has it",
                s.key
            );
        }
    }
    app.ledger.flush().await;
    Ok(())
}

/// The node's whole table, a page at a time, handed to `each`, the
/// terminal parts the ledger lacks imported on the way; paced.
async fn walk_table<D: Datastore, N: Node>(
    app: &App<D, N>,
    mut each: impl FnMut(Payment),
) -> Result<(), RpcError> {
    let mut start = 0;
    loop {
        let deletes_before = app.signals.node_deletes();
        let page = paced(app.node.page(Page::created(start, PAGE))).await?;
        import_missing(app, &page, deletes_before).await?;
        app.update_catchup(|r| r.checked += page.len());
        let next = next_page(&page);
        page.into_iter().for_each(&mut each);
        match next {
            Some(n) => start = n,
            None => return Ok(()),
        }
    }
}

/// After each of its steps (a page of the table, a page's imports, a
/// shard of the index), catch-up rests half as long as the step took: it
/// keeps to two thirds of lightningd's time at most. A step is short (a
/// page read, 100 records to a commit: 20-45 ms of lightningd's time), so
/// a command that reaches lightningd during one waits that long at most,
/// and most arrive while paystate rests: `getinfo`'s median during a
/// first start stays within 1.2x (measured: 1.11-1.15x at 1,100-1,200
/// parts a second; resting as long as the step, 0.99x at 940 a second).
/// Answers do not wait for catch-up: a part not yet imported is answered
/// from the node (and imported then).
const REST: f64 = 0.5;

async fn paced<T>(call: impl std::future::Future<Output = T>) -> T {
    let began = tokio::time::Instant::now();
    let out = call.await;
    tokio::time::sleep(began.elapsed().mul_f64(REST)).await;
    out
}
