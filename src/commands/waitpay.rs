//! `paystate-waitpay payment_hash [timeout] [groupid]`: wait until a whole
//! payment (one hash, one group: by default the hash's latest, as
//! `waitsendpay`'s) is no longer pending, and answer with its `listpays`
//! entry. Every part's waiter is registered before the wait, so the
//! notification that settles the payment releases it, however many parts
//! and callers there are. A waiting caller also watches the node's
//! `created` index, so a part sent in the group after its last read (a
//! failed part retried) is read when it is sent, and a completion is
//! answered from its notification without asking the node again.

use super::{deadline, timed_out, until};
use crate::app::App;
use crate::domain::{Payment, Status};
use crate::error::{codes, RpcError};
use crate::field;
use crate::ledger::Lookup;
use crate::node::Node;
use crate::params::{self, Field, Mode};
use crate::pays;
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The parameters as given, each read by its own spec entry.
#[derive(Default)]
struct Given {
    payment_hash: Option<Sha256>,
    timeout: Option<u32>,
    groupid: Option<u64>,
}

const SPEC: [Field<Given>; 3] = [
    field!(required "payment_hash" => payment_hash: params::hash),
    field!(optional "timeout" => timeout: params::u32_number),
    field!(optional "groupid" => groupid: params::u64_number),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub payment_hash: Sha256,
    /// Seconds; `None` waits indefinitely, 0 polls.
    pub timeout: Option<u32>,
    /// `None`: the highest groupid the node has for the hash.
    pub groupid: Option<u64>,
}

pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let g = params::fill(params, mode, &SPEC)?;
    Ok(Request {
        payment_hash: g.payment_hash.expect("fill reads every required param"),
        timeout: g.timeout,
        groupid: g.groupid,
    })
}

/// Rounds in a row that find a part resolved in the ledger and still
/// pending in the node (the notification came before the node's answer):
/// past this, the caller is told to try again rather than spun on.
const UNSETTLED_ROUNDS: u32 = 3;

pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let deadline = deadline(req.timeout);
    let mut unsettled = 0;
    // The node's `created_index` as of the last read of the group (once
    // the caller is to wait): a part sent after it is watched for.
    let mut created: Option<u64> = None;
    let mut group = Box::pin(group_of(app, &req)).await?;
    loop {
        if pays::settled(&group) {
            return Ok(pays::entry(&group));
        }
        // A waiter on each pending part, registered before the wait: a
        // part resolved since the node was read is found resolved here.
        let mut waiters = Vec::new();
        let mut resolved = false;
        for p in group.iter().filter(|p| p.status == Status::Pending) {
            match app.ledger.lookup_or_wait(p.key()) {
                Lookup::Absent(w) => waiters.push(Box::pin(w.wait())),
                Lookup::Ready { created_index, .. } if created_index != p.created_index => {
                    // An earlier attempt the node deleted without a word.
                    app.ledger.forget(&p.key(), None, Some(created_index));
                    resolved = true;
                }
                Lookup::Ready { .. } | Lookup::Deleting => resolved = true,
            }
        }
        if resolved {
            unsettled += 1;
            if unsettled >= UNSETTLED_ROUNDS {
                return Err(RpcError::lightningd(
                    "the node and the ledger disagree on this payment; try again",
                ));
            }
            group = Box::pin(group_of(app, &req)).await?;
            continue;
        }
        unsettled = 0;
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(timed_out());
        }
        let Some(after) = created else {
            // About to wait: where the node's parts stand, then the
            // group again, so that no part sent in between goes unseen.
            created = Some(app.node.parts_created().await?);
            group = Box::pin(group_of(app, &req)).await?;
            continue;
        };
        let joined = app.node.next_created(after);
        let woken = until(deadline, async {
            tokio::select! {
                // A part sent and a part resolved at once: the read wins.
                biased;
                c = joined => c.map(Woken::Created),
                answers = Ended(waiters) => Ok(Woken::Parts(answers)),
            }
        })
        .await??;
        match woken {
            // Completions only: each notification is the part's whole row,
            // and no part joined the group since the read: settled,
            // answered without reading the node again. A failure: read.
            Woken::Parts(answers) => {
                let rows: Option<Vec<Payment>> = answers.iter().map(|a| completed(a)).collect();
                match rows {
                    Some(rows)
                        if rows
                            .iter()
                            .all(|r| group.iter().any(|p| p.key() == r.key())) =>
                    {
                        for row in rows {
                            for p in group.iter_mut().filter(|p| p.key() == row.key()) {
                                *p = row.clone();
                            }
                        }
                    }
                    _ => group = Box::pin(group_of(app, &req)).await?,
                }
            }
            // Another payment's part: nothing to read.
            Woken::Created(c) if c.part.is_some_and(|k| k.payment_hash != req.payment_hash) => {
                created = Some(c.index);
            }
            // A part of this payment (or one the node did not name), sent
            // after the read (a failed part retried in its group): it
            // counts in `listpays`' entry.
            Woken::Created(c) => {
                created = Some(c.index);
                group = Box::pin(group_of(app, &req)).await?;
            }
        }
    }
}

enum Woken {
    Parts(Vec<std::sync::Arc<crate::domain::Answer>>),
    Created(crate::node::Created),
}

/// The row of a part whose waiter was answered with success.
fn completed(answer: &crate::domain::Answer) -> Option<Payment> {
    let row = answer.as_ref().ok()?;
    serde_json::from_value::<Payment>(row.clone())
        .ok()
        .filter(|p| p.status == Status::Complete)
}

/// The first of several waits to end, with every other one ended by then
/// (notifications are answered in lightningd's order: a part resolved
/// before the one that woke us is among them), polled in place (no task
/// per wait: a spawned wait would cost a hop between tasks on the way out).
struct Ended<F>(Vec<Pin<Box<F>>>);

impl<F: Future> Future for Ended<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        // Each wait is polled once a call; the first call with any ended
        // is the last, so none is polled after it ended.
        let ended: Vec<F::Output> = self
            .0
            .iter_mut()
            .filter_map(|f| match f.as_mut().poll(cx) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            })
            .collect();
        if ended.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ended)
        }
    }
}

/// The payment's parts as the node has them now, or 208 for an unknown
/// hash or group.
async fn group_of<D: Datastore, N: Node>(
    app: &App<D, N>,
    req: &Request,
) -> Result<Vec<Payment>, RpcError> {
    let hash = req.payment_hash;
    let parts = app.node.parts_of(hash).await?;
    let Some(latest) = parts.iter().map(|p| p.groupid).max() else {
        return Err(RpcError::new(
            codes::PAY_NO_SUCH_PAYMENT,
            format!("Never attempted payment for '{hash}'"),
        ));
    };
    let groupid = req.groupid.unwrap_or(latest);
    let group: Vec<Payment> = parts.into_iter().filter(|p| p.groupid == groupid).collect();
    if group.is_empty() {
        return Err(RpcError::new(
            codes::PAY_NO_SUCH_PAYMENT,
            format!("Never attempted payment group {groupid} for '{hash}'"),
        ));
    }
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";

    #[test]
    fn parameters_as_waitsendpay_checks_them() {
        let a = parse(
            &json!({"payment_hash": H, "timeout": 5, "groupid": 2}),
            Mode::DEVELOPER,
        );
        assert_eq!(a, parse(&json!([H, 5, 2]), Mode::DEVELOPER));
        let d = parse(&json!([H]), Mode::DEVELOPER).unwrap();
        assert_eq!((d.timeout, d.groupid), (None, None));
        let e = parse(&json!([H, 1, 2, 3]), Mode::DEVELOPER).unwrap_err();
        assert_eq!(e.message, "too many parameters: got 4, expected 3");
        let e = parse(&json!({"payment_hash": H, "partid": 1}), Mode::DEVELOPER).unwrap_err();
        assert!(
            e.message.starts_with("unknown parameter: partid"),
            "{}",
            e.message
        );
        let e = parse(&json!({"timeout": 1}), Mode::DEVELOPER).unwrap_err();
        assert_eq!(e.message, "missing required parameter: payment_hash");
    }
}
