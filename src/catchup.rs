//! Start-up work that brings the ledger level with the node: finishing
//! deletes a crash interrupted, and importing terminal parts the node has
//! and the ledger lacks (resolved while paystate was not running).

use crate::app::App;
use crate::domain::{Part, PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::ledger::Recorded;
use crate::node::Node;
use crate::store::Datastore;
use std::sync::Arc;

/// Parts read from the node per `listsendpays` page.
pub const PAGE: u32 = 1000;

/// Imports one part the node reports, unless the ledger holds it already
/// (or is deleting it). `deletes_before` is [`Ledger::node_deletes`] read
/// before the node was: if a delete happened since, the part is read again
/// (under the hash's lock), so a part just deleted is not brought back.
/// A failed part's details are not in `listsendpays`: the node's own
/// `waitsendpay` with `timeout: 0` gives them. Returns the part as the
/// ledger now holds it, or `None` if it is not to be answered.
///
/// [`Ledger::node_deletes`]: crate::ledger::Ledger::node_deletes
pub async fn import<D: Datastore, N: Node>(
    app: &App<D, N>,
    payment: Payment,
    deletes_before: u64,
) -> Result<Option<Arc<Part>>, RpcError> {
    let key = payment.key();
    app.ledger.ensure(&key.payment_hash).await?;
    let _guard = app.ledger.lock(&key.payment_hash).await;
    if app.ledger.holds(&key) {
        return app.ledger.get(&key).await;
    }
    let payment = if app.ledger.node_deletes() == deletes_before {
        payment
    } else {
        let fresh = app.node.parts_of(key.payment_hash).await?;
        match fresh.into_iter().find(|p| p.key() == key) {
            Some(p) => p,
            None => return Ok(None),
        }
    };
    let part = match payment.status {
        Status::Pending => return Ok(None),
        Status::Complete => Part {
            payment,
            failure: None,
        },
        Status::Failed => match app.node.poll_builtin(key).await? {
            Err(e) if e.code == codes::PAY_NO_SUCH_PAYMENT => return Ok(None),
            Err(e) if e.data.is_some() => Part::from_error(&e.to_json()).unwrap_or_else(|why| {
                log::warn!("Failure details of {key} unreadable ({why}); recording without them");
                Part {
                    payment,
                    failure: None,
                }
            }),
            // 209 (reason not stored), or a node that disagrees: record
            // the part as the listing shows it, without a reason.
            _ => Part {
                payment,
                failure: None,
            },
        },
    };
    match app.ledger.record(part).await? {
        Recorded::Deleting => Ok(None),
        Recorded::New => {
            log::info!("Imported {key} from the node");
            app.ledger.get(&key).await
        }
        Recorded::Duplicate => app.ledger.get(&key).await,
    }
}

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
            app.ledger.note_node_delete();
            match deleted? {
                Err(e) if e.code != codes::PAY_NO_SUCH_PAYMENT => return Err(e),
                _ => {}
            }
        }
        None => {}
    }
    app.ledger.remove(&key).await.map(drop)
}

/// The whole start-up catch-up; its outcome goes to the status report.
pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, interrupted: Vec<PartKey>) {
    app.update_catchup(|r| r.state = "running");
    match catch_up(app, interrupted).await {
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
    since_watermark(app).await?;
    whole_table(app).await?;
    // The rest of the index (counts, listings): answers did not wait for it.
    for shard in 0..=u8::MAX {
        if !app.ledger.shard_loaded(shard) {
            paced(app.ledger.ensure_shard(shard)).await?;
        }
    }
    Ok(())
}

/// A node that has made at most this many payment parts has a ledger small
/// enough to list in one go (lightningd then reads at most this many
/// records, a few milliseconds' work).
const SMALL_LEDGER: u64 = 2_000;

/// Imports the terminal parts of a page read from the node that the
/// ledger lacks.
async fn import_missing<D: Datastore, N: Node>(
    app: &App<D, N>,
    page: &[Payment],
    deletes_before: u64,
) -> Result<(), RpcError> {
    for payment in page {
        app.ledger.ensure(&payment.payment_hash).await?;
        let fresh = payment.status != Status::Pending && !app.ledger.holds(&payment.key());
        if fresh
            && paced(import(app, payment.clone(), deletes_before))
                .await?
                .is_some()
        {
            app.update_catchup(|r| r.imported += 1);
        }
    }
    Ok(())
}

/// What changed since the last catch-up: the quick pass, first.
async fn since_watermark<D: Datastore, N: Node>(app: &App<D, N>) -> Result<(), RpcError> {
    loop {
        let start = app.ledger.watermark() + 1;
        let deletes_before = app.ledger.node_deletes();
        let page = paced(app.node.updated_since(start, PAGE)).await?;
        let top = page.iter().filter_map(|p| p.updated_index).max();
        import_missing(app, &page, deletes_before).await?;
        app.update_catchup(|r| r.scanned += page.len());
        if let Some(top) = top {
            app.ledger.set_watermark(top).await?;
        }
        app.update_catchup(|r| r.updated_index = app.ledger.watermark());
        if page.len() < PAGE as usize || top.is_none() {
            return Ok(());
        }
    }
}

/// One pass over the node's whole table, importing any terminal part the
/// ledger lacks. A delete takes the ledger's record first and the node's
/// part second, with no durable mark between: a crash there leaves a part
/// only the node has, older than the watermark perhaps. This pass brings
/// it back, so that after catch-up the ledger holds every terminal part the
/// node knows (and any other drift heals too). It runs in the background,
/// answering goes on meanwhile, and it is paced so that a large table
/// does not crowd out the node's other commands.
async fn whole_table<D: Datastore, N: Node>(app: &App<D, N>) -> Result<(), RpcError> {
    let mut start = 0;
    loop {
        let deletes_before = app.ledger.node_deletes();
        let page = paced(app.node.created_since(start, PAGE)).await?;
        import_missing(app, &page, deletes_before).await?;
        app.update_catchup(|r| r.checked += page.len());
        match page.last() {
            Some(last) if page.len() == PAGE as usize => start = last.created_index + 1,
            _ => return Ok(()),
        }
    }
}

/// After each of its calls (a page of the table, a part's import, a
/// shard of the index), catch-up rests this many times as long as the
/// call took: however long the history, it keeps to a twentieth of the
/// node's time. A command that reaches lightningd during one of those
/// calls waits for it (a write's commit is ~2 ms, four `getinfo`s; a shard
/// or a page, tens of ms), so at a tenth of the node's time `getinfo` was
/// 1.13-1.16x slower on average; at a twentieth it stays near 1.05x
/// (README "Performance"). Answers do not wait for catch-up: a part not
/// yet imported is answered from the node (and imported then).
const REST: u32 = 19;

async fn paced<T>(call: impl std::future::Future<Output = T>) -> T {
    let began = tokio::time::Instant::now();
    let out = call.await;
    tokio::time::sleep(began.elapsed() * REST).await;
    out
}
