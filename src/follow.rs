//! Following the node's deletes, so that the ledger holds exactly the
//! node's terminal parts whoever deletes them (autoclean, `delpay` under
//! any name, another plugin), without standing in their way: paystate
//! hooks no delete. Each `deleted` event of the node's `sendpays` index
//! drops the part from the ledger.
//!
//! lightningd moves that index for a `delpay` with `partid` and `groupid`
//! (autoclean's) but not for one without (`wallet/wallet.c`, a FIXME):
//! such deletes are learned when an answer asks the node about the hash
//! (every `waitsendpay` and listing does), and at start-up's
//! reconciliation. Deletes the feed missed (faster than its window of
//! waits) start a reconciliation too.

use crate::app::App;
use crate::domain::{PartKey, Status};
use crate::error::RpcError;
use crate::node::Node;
use crate::store::Datastore;
use std::future::Future;

/// One event of the node's `deleted` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The node deleted this part (of this status, where said).
    Part {
        key: PartKey,
        status: Option<Status>,
        index: u64,
    },
    /// The index moved without saying what went.
    Missed { index: u64 },
}

/// The node's deletes, one at a time.
pub trait Feed: Send {
    fn next(&mut self) -> impl Future<Output = Result<Deleted, RpcError>> + Send;
}

/// Applies the feed's events to the ledger until the feed fails.
pub async fn run<D: Datastore, N: Node, F: Feed>(app: &App<D, N>, feed: &mut F) -> RpcError {
    loop {
        match feed.next().await {
            Ok(Deleted::Part { key, status, index }) => {
                app.signals.note_node_delete();
                let held = app.ledger.forget(&key, status, None);
                app.signals.deletes_followed_to(index);
                log::debug!("The node deleted {key}; the ledger held it: {held}");
            }
            Ok(Deleted::Missed { index }) => {
                log::info!("Deletes up to index {index} came faster than they were followed; reconciling with the node");
                app.signals.note_node_delete();
                app.signals.ask_reconciliation();
                app.signals.deletes_followed_to(index);
            }
            Err(e) => return e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Part;
    use crate::fakes::{payment, FakeDatastore, FakeNode};
    use crate::ledger::Ledger;
    use crate::params::Mode;
    use std::collections::VecDeque;
    use std::sync::Arc;

    struct Script(VecDeque<Deleted>);

    impl Feed for Script {
        async fn next(&mut self) -> Result<Deleted, RpcError> {
            self.0
                .pop_front()
                .ok_or_else(|| RpcError::lightningd("end of script"))
        }
    }

    #[tokio::test]
    async fn each_delete_drops_its_part_and_a_gap_asks_for_reconciliation() {
        let ds = Arc::new(FakeDatastore::default());
        let (ledger, _) = Ledger::load(ds.clone()).await.unwrap();
        let app = App::new(ledger, Arc::new(FakeNode::default()), true, Mode::DEVELOPER);
        let kept = Part {
            payment: payment(1, Status::Complete),
            failure: None,
        };
        let gone = Part {
            payment: payment(2, Status::Failed),
            failure: None,
        };
        for p in [&kept, &gone] {
            app.ledger.record(p.clone()).await.unwrap();
        }
        let mut feed = Script(VecDeque::from([
            // The wrong status leaves the part alone.
            Deleted::Part {
                key: kept.key(),
                status: Some(Status::Failed),
                index: 1,
            },
            Deleted::Part {
                key: gone.key(),
                status: Some(Status::Failed),
                index: 2,
            },
            Deleted::Missed { index: 3 },
        ]));
        run(&app, &mut feed).await;
        assert!(app.ledger.holds(&kept.key()));
        assert!(!app.ledger.holds(&gone.key()));
        // A late notification of the deleted part does not bring it back.
        assert_eq!(
            app.ledger.record(gone.clone()).await.unwrap(),
            crate::ledger::Recorded::Deleting
        );
        app.ledger.flush().await;
        let pages: Vec<Vec<u8>> = ds
            .entries
            .lock()
            .unwrap()
            .values()
            .map(|(_, v)| v.clone())
            .collect();
        let [page] = &pages[..] else {
            panic!("one page: {pages:?}")
        };
        let held: Vec<_> = crate::ledger::page::read(page)
            .records
            .into_values()
            .map(|r| r.key)
            .collect();
        assert_eq!(held, [kept.key()]);
        // The gap was reported.
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            app.signals.reconciliation_asked(),
        )
        .await
        .expect("a reconciliation was asked for");
    }
}
