//! Stopping cleanly, on lightningd's `shutdown` notification (sent when
//! lightningd stops, and on `plugin stop`; lightningd waits up to 30 s
//! for the plugin to exit, its RPC still served): the notifications taken
//! are recorded, the writes queued are applied, and, where lightningd
//! itself is stopping and the ledger is level with the node, the level
//! mark is written ([`crate::level`]).
//!
//! While lightningd stops, a call may go unanswered (it reached the hook
//! of a plugin that exited: [`crate::rpc`] asks such calls again where
//! that is harmless), so the whole stop is bounded, well inside
//! lightningd's 30 s, and a write left unanswered leaves no mark.

use crate::app::App;
use crate::error::RpcError;
use crate::level::{self, Level};
use crate::node::Node;
use crate::store::Datastore;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// The whole stop, within lightningd's 30 s.
pub const STOP_BOUND: Duration = Duration::from_secs(20);

/// How long the notifications taken may take to be recorded.
const RECORDING_BOUND: Duration = Duration::from_secs(5);

/// Finishes what is in hand, by `deadline`. `all_recorded` tells whether
/// every notification taken is recorded; `lightningd_stopping` whether
/// lightningd itself is stopping (not a `plugin stop`, after which
/// lightningd runs on without paystate).
pub async fn stop<D: Datastore, N: Node>(
    app: &App<D, N>,
    all_recorded: impl Fn() -> bool,
    lightningd_stopping: bool,
    deadline: Instant,
) {
    let recording = (Instant::now() + RECORDING_BOUND).min(deadline);
    while !all_recorded() && Instant::now() < recording {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A write left unanswered leaves the ledger's state unknown: no mark.
    if tokio::time::timeout_at(deadline, app.ledger.flush())
        .await
        .is_err()
    {
        log::warn!("Stopping with no level mark: a write to the datastore was left unanswered");
        return;
    }
    if !lightningd_stopping {
        log::info!("Stopping while lightningd runs on: no level mark (the next start reconciles)");
        return;
    }
    let written = match level_now(app, &all_recorded, deadline).await {
        Ok(Ok(l)) => by(deadline, "datastore", level::put(app.ledger.datastore(), l))
            .await
            .map(|()| l),
        Ok(Err(why)) => {
            log::info!("Stopping with no level mark: {why}");
            return;
        }
        Err(e) => Err(e),
    };
    match written {
        Ok(l) => log::info!(
            "Stopping level with the node (created_index {}): the next start skips the pass over its table",
            l.created
        ),
        Err(e) => log::warn!("Stopping with no level mark: {} ({})", e.message, e.code),
    }
}

/// The node's indexes, where the ledger is level with the node; else why
/// it may not be.
async fn level_now<D: Datastore, N: Node>(
    app: &App<D, N>,
    all_recorded: &impl Fn() -> bool,
    deadline: Instant,
) -> Result<Result<Level, &'static str>, RpcError> {
    let why_not = || {
        if !all_recorded() {
            Some("notifications are still being recorded")
        } else if app.ledger.drifted() {
            Some("a write to the datastore failed in this run")
        } else if !app.signals.level() || app.catchup_report().state != "done" {
            Some("a reconciliation with the node is owed or under way")
        } else {
            None
        }
    };
    if let Some(why) = why_not() {
        return Ok(Err(why));
    }
    let node = &app.node;
    let deleted = by(deadline, "wait", node.parts_deleted()).await?;
    let created = by(deadline, "wait", node.parts_created()).await?;
    let updated = by(deadline, "wait", node.parts_updated()).await?;
    if deleted != app.signals.deletes_followed() {
        return Ok(Err("the node's deletes are not all followed"));
    }
    // Anything that moved while the indexes were read.
    if let Some(why) = why_not() {
        return Ok(Err(why));
    }
    Ok(Ok(Level {
        created,
        updated,
        deleted,
    }))
}

/// `call`'s answer, if it comes by `deadline`.
async fn by<T>(
    deadline: Instant,
    what: &str,
    call: impl Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::lightningd(format!(
                "no answer to {what} within the stop's {} s",
                STOP_BOUND.as_secs()
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeDatastore, FakeNode};
    use crate::ledger::Ledger;
    use crate::params::Mode;

    fn soon() -> Instant {
        Instant::now() + STOP_BOUND
    }

    async fn app() -> App<FakeDatastore, FakeNode> {
        let (ledger, _) = Ledger::load(FakeDatastore::default()).await.unwrap();
        App::new(ledger, FakeNode::default(), true, Mode::default())
    }

    /// Reconciled, nothing asked since: level, as far as paystate knows.
    async fn level_app() -> App<FakeDatastore, FakeNode> {
        let a = app().await;
        a.signals.levelled(a.signals.reconciliations_asked());
        a.update_catchup(|r| r.state = "done");
        a
    }

    #[tokio::test]
    async fn a_mark_is_written_only_when_level_and_lightningd_stops() {
        let a = app().await;
        // Never reconciled: not level.
        stop(&a, || true, true, soon()).await;
        assert_eq!(level::take(a.ledger.datastore()).await.unwrap(), None);
        a.signals.levelled(a.signals.reconciliations_asked());
        a.update_catchup(|r| r.state = "done");
        // A plugin stop: lightningd runs on.
        stop(&a, || true, false, soon()).await;
        assert_eq!(level::take(a.ledger.datastore()).await.unwrap(), None);
        stop(&a, || true, true, soon()).await;
        assert_eq!(
            level::take(a.ledger.datastore()).await.unwrap(),
            Some(Level {
                created: 0,
                updated: 0,
                deleted: 0
            })
        );
        // A reconciliation asked since: owed.
        a.signals.ask_reconciliation();
        stop(&a, || true, true, soon()).await;
        assert_eq!(level::take(a.ledger.datastore()).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn notifications_left_unrecorded_leave_no_mark() {
        let a = level_app().await;
        stop(&a, || false, true, soon()).await;
        assert_eq!(level::take(a.ledger.datastore()).await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_left_unanswered_leaves_no_mark_by_the_deadline() {
        let a = level_app().await;
        a.node
            .unanswered
            .store(1, std::sync::atomic::Ordering::SeqCst);
        let began = Instant::now();
        stop(&a, || true, true, soon()).await;
        assert!(began.elapsed() <= STOP_BOUND);
        assert_eq!(level::take(a.ledger.datastore()).await.unwrap(), None);
    }
}
