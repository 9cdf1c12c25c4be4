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
use crate::level::Level;
use crate::node::{Node, Page};
use crate::store::Datastore;
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;

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
    app.ledger.forget(&key, None, None);
    Ok(())
}

/// How often, at least, the ledger is reconciled with the node's table
/// when nothing asks for it sooner: a `delpay` without `partid` and
/// `groupid` moves no index, so only a look at the table (or an answer
/// about its hash) shows what it deleted, and until then its records are
/// only bytes (answers ask the node whether a part exists). A pass reads
/// the table a page at a time, paced; passes are [`APART`] times as far
/// apart as the last one took, so that they take about 1% of lightningd's
/// time (at 100,000 parts a pass of some 20 s, every half hour; at a
/// million, some 4 minutes every 4 hours).
const RECONCILE_EVERY: Duration = Duration::from_secs(600);
const APART: u32 = 64;

/// What a pass takes a part of the node's table, before one was timed (a
/// start that skipped it): 234 s for a million parts on a real node.
const WALK_PER_PART: Duration = Duration::from_micros(250);

/// The whole start-up catch-up, then a reconciliation each time one is
/// asked for (deletes the feed missed) and at least every
/// [`RECONCILE_EVERY`] or [`APART`] times the last pass; outcomes go to
/// the status report.
pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    interrupted: Vec<PartKey>,
    level: Option<Level>,
) {
    let mut last = once(app, interrupted, level).await;
    loop {
        let apart = RECONCILE_EVERY.max(last * APART);
        let _ = tokio::time::timeout(apart, app.signals.reconciliation_asked()).await;
        app.update_catchup(|r| r.state = "running");
        let began = Instant::now();
        let asked = app.signals.reconciliations_asked();
        let outcome = whole_table(app).await;
        if outcome.is_ok() {
            app.signals.levelled(asked);
        }
        last = began.elapsed();
        report(app, outcome);
    }
}

/// The start-up catch-up alone; returns what its pass took (or would
/// have, where the level mark let it skip the pass).
pub async fn once<D: Datastore, N: Node>(
    app: &App<D, N>,
    interrupted: Vec<PartKey>,
    level: Option<Level>,
) -> Duration {
    app.update_catchup(|r| r.state = "running");
    let outcome = catch_up(app, interrupted, level).await;
    let took = outcome.as_ref().map_or(Duration::ZERO, |t| *t);
    report(app, outcome.map(drop));
    took
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
    mut interrupted: Vec<PartKey>,
    level: Option<Level>,
) -> Result<Duration, RpcError> {
    // Whether the node's table is as the level mark left it, read before
    // anything here can move it: what resolves from now on is notified.
    let asked = app.signals.reconciliations_asked();
    let created = app.node.parts_created().await?;
    let held = match level {
        Some(l) => l.holds(Level {
            created,
            updated: app.node.parts_updated().await?,
            deleted: app.node.parts_deleted().await?,
        }),
        None => false,
    };
    // An earlier layout's records move first (answers go on meanwhile:
    // they start from the node's rows), with any marks of deletes.
    let moved = crate::migrate::run(app.ledger.datastore()).await?;
    app.update_catchup(|r| r.migrated = moved);
    if moved > 0 {
        interrupted.extend(app.ledger.read_marks().await?);
    }
    for key in interrupted {
        finish_delete(app, key).await?;
        app.update_catchup(|r| r.deletes_finished += 1);
        log::info!("Finished the interrupted delete of {key}");
    }
    // The index, a few pages of records a step (answers do not wait for
    // it). Then one pass over the node's table by created_index finds
    // what resolved while paystate was away. (Reading only what was
    // updated since the last catch-up, `index=updated`, is a scan of the
    // whole table in lightningd: 102 ms at 100,000 parts.)
    let end = app.record_pages().await?;
    let mut at_once = PAGES_AT_ONCE.0;
    while let Some(records) = paced(app.ledger.load_step(end, at_once)).await? {
        // As many pages as make some RECORDS_AT_ONCE records by the last
        // ones, growing at most twofold a step (empty pages say little of
        // the next).
        let per_page = records.div_ceil(at_once as usize).max(1) as u64;
        let most = (2 * at_once).min(PAGES_AT_ONCE.1);
        at_once = (RECORDS_AT_ONCE / per_page).clamp(PAGES_AT_ONCE.0, most);
    }
    let took = if held {
        log::info!(
            "The node's table is as paystate left it at its last stop (created_index {created}): \
             no reconciliation pass"
        );
        app.update_catchup(|r| r.pass_skipped = true);
        WALK_PER_PART * u32::try_from(created).unwrap_or(u32::MAX)
    } else {
        let began = Instant::now();
        whole_table(app).await?;
        began.elapsed()
    };
    app.signals.levelled(asked);
    Ok(took)
}

/// Pages listed in one round trip while the index loads, fewest and most:
/// as many as hold some [`RECORDS_AT_ONCE`] records by the last ones
/// listed (64 full pages: 64 rows and some 250 KB for lightningd to read
/// and print).
const PAGES_AT_ONCE: (u64, u64) = (1, 64);
const RECORDS_AT_ONCE: u64 = 4096;

/// Imports the terminal parts of a page read from the node that the
/// ledger lacks: their records queued, written behind with the next pages'
/// (appends to a ledger page merged: a commit makes thousands of
/// records). A crash before they land loses nothing the next start does
/// not import again.
async fn import_missing<D: Datastore, N: Node>(
    app: &App<D, N>,
    page: &[Payment],
    deletes_before: u64,
) -> Result<(), RpcError> {
    let mut imported = 0;
    for payment in page
        .iter()
        .filter(|p| p.status != Status::Pending && !app.ledger.holds_attempt(p))
    {
        let payment = payment.clone();
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
    app.update_catchup(|r| r.imported += imported);
    Ok(())
}

/// One pass over the node's whole table: imports any terminal part the
/// ledger lacks, then drops what the ledger holds and the node no longer
/// has, a range of [`RANGE`] `created_index` values at a time (so that
/// what the pass holds stays small, whatever the table). Parts created
/// after the pass began are left alone: the node had them all when their
/// page was read, or their delete reaches the ledger through the feed. It
/// runs in the background, answering goes on meanwhile (answers ask the
/// node whether a part exists), and it is paced so that a large table
/// does not crowd out the node's other commands.
async fn whole_table<D: Datastore, N: Node>(app: &App<D, N>) -> Result<(), RpcError> {
    app.load_index().await?;
    let created_before = app.node.parts_created().await?;
    // Every row the node showed in the range being walked, pending ones
    // included (a part recorded during the pass was shown pending).
    let mut seen: HashSet<u64> = HashSet::new();
    let mut lo = 0;
    let mut start = 0;
    loop {
        let deletes_before = app.signals.node_deletes();
        // A page read and its imports written make one step.
        let page = paced(async {
            let page = app.node.page(Page::created(start, PAGE)).await?;
            import_missing(app, &page, deletes_before).await?;
            Ok::<_, RpcError>(page)
        })
        .await?;
        app.update_catchup(|r| r.checked += page.len());
        let next = next_page(&page);
        seen.extend(page.iter().map(|p| p.created_index));
        // The node's rows below `reached` are all seen.
        let reached = next.unwrap_or(u64::MAX);
        while reached.saturating_sub(lo) >= RANGE || (next.is_none() && lo < u64::MAX) {
            let hi = if next.is_none() { u64::MAX } else { lo + RANGE };
            drop_missing(app, lo, hi.min(created_before + 1), &seen);
            seen.retain(|ci| *ci >= hi);
            lo = hi;
        }
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    app.ledger.flush().await;
    Ok(())
}

/// `created_index` values reconciled at once: what the pass holds of the
/// ledger and of the node is this range's.
const RANGE: u64 = 1 << 16;

/// Drops the parts in `[lo, hi)` the node did not show: that attempt
/// existed when the pass began and no page showed it, so it was deleted.
/// (Recorded again, it is another attempt, with another created_index.)
fn drop_missing<D: Datastore, N: Node>(app: &App<D, N>, lo: u64, hi: u64, seen: &HashSet<u64>) {
    if lo >= hi {
        return;
    }
    for h in app.ledger.between(lo, hi) {
        if !seen.contains(&h.created_index) && app.ledger.forget_held(&h) {
            app.update_catchup(|r| r.dropped += 1);
            log::info!(
                "Dropped the part of created_index {} from the ledger: the node no longer has it",
                h.created_index
            );
        }
    }
}

/// After each of its steps (a page of the table and its imports, some
/// pages of the index), catch-up rests half as long as the step took: it
/// keeps to two thirds of lightningd's time at most. A step is short (a
/// page of 128 parts read, ~77 µs of lightningd's time a part, and its
/// imports appended in one commit: 20-45 ms), so
/// a command that reaches lightningd during one waits that long at most,
/// and most arrive while paystate rests: `getinfo`'s median during a
/// first start stays within 1.2x (measured on a real node: 1.20x at
/// 5,154 parts a second over 10,000 parts, 0.91x at 6,457 over a
/// million; a client paging the same way, doing nothing, reaches 5,965
/// and 6,876).
/// Answers do not wait for catch-up: a part not yet imported is answered
/// from the node (and imported then).
const REST: f64 = 0.5;

async fn paced<T>(call: impl std::future::Future<Output = T>) -> T {
    let began = tokio::time::Instant::now();
    let out = call.await;
    tokio::time::sleep(began.elapsed().mul_f64(REST)).await;
    out
}
