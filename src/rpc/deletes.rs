//! The node's deletes as they happen: `wait` on `sendpays`, index
//! `deleted`, on a connection of its own.
//!
//! A `wait` that is pending when the index moves is answered with the
//! event's details (the part's `payment_hash`, `groupid`, `partid` and
//! `status`); one whose value is already reached is answered with the
//! number only (`lightningd/wait.c`). So paystate keeps a window of waits
//! pending, one for each of the next values, and tops it up as they are
//! answered: each delete answers exactly one of them, with its details.
//! Deletes faster than the window is topped up are reported as missed.

use super::waits::{self, Event};
use super::{request, Conn, Rpc};
use crate::app::App;
use crate::error::RpcError;
use crate::follow::{self, Deleted, Feed};
use crate::node::Node;
use crate::store::Datastore;
use serde_json::Value;
use std::sync::Arc;

/// Waits kept pending: more than autoclean deletes in one batch (~100).
const WINDOW: u64 = 512;

/// The window is topped up once this many of its waits are answered, in
/// one write (lightningd parses the requests of one read together).
const TOP_UP: u64 = 64;

pub struct Deletes {
    rpc: Arc<Rpc>,
    conn: Conn,
    /// The next value a wait is to be sent for.
    next: u64,
    /// Values waited for and not yet answered.
    pending: u64,
}

impl Deletes {
    /// Opens the feed after `from` (the last index followed, on a
    /// reopen: deletes made meanwhile are answered with their number only,
    /// as missed), or at the node's current `deleted` index; returns it
    /// and where the feed starts.
    pub async fn open(rpc: Arc<Rpc>, from: Option<u64>) -> Result<(Deletes, u64), RpcError> {
        // Batching: a top-up's waits share one transaction (lightningd
        // opens one per request otherwise, a round trip each to a
        // PostgreSQL server).
        let mut conn = rpc.batching_conn().await?;
        let current = match from {
            Some(last) => last,
            None => {
                let id = rpc.next_id();
                // A wait for 0 is answered at once.
                let now: Value = super::patient("wait", async {
                    conn.send(&request(&id, "wait", &waits::params("deleted", 0)))
                        .await?;
                    conn.answer().await
                })
                .await?
                .outcome("wait")??;
                Event::of(&now, "deleted")?.value
            }
        };
        let mut feed = Deletes {
            rpc,
            conn,
            next: current + 1,
            pending: 0,
        };
        feed.top_up(WINDOW).await?;
        Ok((feed, current))
    }

    /// The last index the feed has followed (its waits are answered in
    /// order).
    pub fn followed(&self) -> u64 {
        self.next - self.pending - 1
    }

    async fn top_up(&mut self, n: u64) -> Result<(), RpcError> {
        let mut bytes = Vec::new();
        for _ in 0..n {
            let id = self.rpc.next_id();
            bytes.extend(request(&id, "wait", &waits::params("deleted", self.next)));
            self.next += 1;
        }
        self.pending += n;
        self.conn.send(&bytes).await
    }
}

impl Feed for Deletes {
    async fn next(&mut self) -> Result<Deleted, RpcError> {
        let answer: Value = self.conn.answer().await?.outcome("wait")??;
        self.pending -= 1;
        if WINDOW - self.pending >= TOP_UP {
            self.top_up(WINDOW - self.pending).await?;
        }
        let event = Event::of(&answer, "deleted")?;
        let index = event.value;
        Ok(match event.part {
            Some((key, status)) => Deleted::Part { key, status, index },
            None => Deleted::Missed { index },
        })
    }
}

/// Follows the node's deletes for as long as paystate runs: the feed is
/// reopened a second after it fails, after the last index it followed, so
/// that a reconciliation is asked for only if deletes were made while it
/// was down (they come back as missed), not at every reconnect. It opens
/// after `from` where given (the level mark's `deleted` index: deletes
/// made since the mark come back as missed), else at the node's index.
pub async fn follow<D: Datastore, N: Node>(app: &App<D, N>, rpc: Arc<Rpc>, mut from: Option<u64>) {
    loop {
        match Deletes::open(rpc.clone(), from).await {
            Ok((mut feed, start)) => {
                app.signals.deletes_followed_to(start);
                let e = follow::run(app, &mut feed).await;
                from = Some(feed.followed());
                log::warn!("Lost the node's deletes ({}); reopening", e.message);
            }
            Err(e) => {
                log::warn!("Cannot follow the node's deletes: {}", e.message);
                // Never opened: where it would have started is unknown.
                if from.is_none() {
                    app.signals.ask_reconciliation();
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
