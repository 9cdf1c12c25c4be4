//! `waitsendpay`: wait for (or poll) the outcome of one payment part.

use super::{deadline, never_attempted, timed_out, until};
use crate::app::App;
use crate::domain::{PartKey, Payment, Status};
use crate::error::RpcError;
use crate::field;
use crate::import;
use crate::ledger::{Lookup, Waiter};
use crate::node::Node;
use crate::params::{self, Field, Mode};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::Value;

/// The parameters as given, each read by its own spec entry.
#[derive(Default)]
struct Given {
    payment_hash: Option<Sha256>,
    timeout: Option<u32>,
    partid: Option<u64>,
    groupid: Option<u64>,
}

const SPEC: [Field<Given>; 4] = [
    field!(required "payment_hash" => payment_hash: params::hash),
    field!(optional "timeout" => timeout: params::u32_number),
    field!(optional "partid" => partid: params::u64_number),
    field!(optional "groupid" => groupid: params::u64_number),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub payment_hash: Sha256,
    /// Seconds; `None` waits indefinitely, 0 polls.
    pub timeout: Option<u32>,
    pub partid: u64,
    /// `None`: the highest groupid the node has for the hash.
    pub groupid: Option<u64>,
}

pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let g = params::fill(params, mode, &SPEC)?;
    Ok(Request {
        payment_hash: g.payment_hash.expect("fill reads every required param"),
        timeout: g.timeout,
        partid: g.partid.unwrap_or(0),
        groupid: g.groupid,
    })
}

/// Every answer starts from the node's own row for the part: the node
/// decides whether the part exists (a `delpay` without `partid` and
/// `groupid` deletes without telling anyone) and which group is the
/// latest; the ledger adds what the node's row lacks (why a part failed,
/// as lightningd reported it) and the waiting. The node calls are boxed:
/// what stays in memory while a caller waits is the small waiting state,
/// not the largest call's (thousands may wait).
pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let hash = req.payment_hash;
    // A part found pending and recorded before its waiter was is read from
    // the node again; a stale attempt the ledger held is dropped first.
    for round in 0..3 {
        let deletes_before = app.signals.node_deletes();
        // Read before the node: a part held now and missing from the
        // node's rows was deleted since.
        let held = app.ledger.held(&hash, None);
        let parts = Box::pin(app.node.parts_of(hash)).await?;
        // Whichever part is asked for, the hash's parts the node lost.
        let kept = |ci: u64| parts.iter().any(|p| p.created_index == ci);
        import::forget_lost(app, Some(&hash), &held, kept);
        let groupid = req
            .groupid
            .or_else(|| parts.iter().map(|p| p.groupid).max())
            // No part at all: nothing to wait for, whatever the partid.
            .unwrap_or(0);
        let key = PartKey {
            payment_hash: hash,
            groupid,
            partid: req.partid,
        };
        let Some(row) = parts.into_iter().find(|p| p.key() == key) else {
            return Err(never_attempted(&key));
        };
        if row.status != Status::Pending {
            return Box::pin(terminal(app, row, deletes_before)).await;
        }
        // The waiter is registered before the wait, and a part recorded
        // from now on wakes it.
        let waiter = match app.ledger.lookup_or_wait(key) {
            Lookup::Absent(w) => w,
            // An earlier attempt of the part, which the node deleted
            // without a word (the node's row is a new attempt).
            Lookup::Ready { created_index, .. } if created_index != row.created_index => {
                app.ledger.forget(&key, None, Some(created_index));
                continue;
            }
            // Still pending in the node: the notification's part, as
            // lightningd's own waiters got it.
            Lookup::Ready {
                part: Some(part), ..
            } if round == 2 => return part.waitsendpay_answer(),
            // Resolved since the node was read: read it again.
            Lookup::Ready { .. } | Lookup::Deleting => continue,
        };
        return Box::pin(wait_for(waiter, req.timeout)).await;
    }
    Err(RpcError::lightningd(
        "the node and the ledger disagree on this part; try again",
    ))
}

/// The answer the waiter is given, or 200 after `timeout` seconds.
async fn wait_for(waiter: Waiter, timeout: Option<u32>) -> Result<Value, RpcError> {
    if timeout == Some(0) {
        return Err(timed_out());
    }
    let answer = until(deadline(timeout), waiter.wait()).await?;
    (*answer).clone()
}

/// A terminal part's answer. A complete part's is the node's row. A
/// failed part's is the node's own stored error: lightningd's releases
/// differ in what they keep of a failure (v26.06 and earlier store no
/// `raw_message`, later ones do), and a poll answers what the node kept,
/// where a waiter released by the failure got the notification's form.
/// A part the ledger lacks (resolved while paystate was not running) is
/// imported now.
async fn terminal<D: Datastore, N: Node>(
    app: &App<D, N>,
    row: Payment,
    deletes_before: u64,
) -> Result<Value, RpcError> {
    let key = row.key();
    if !app.ledger.holds_attempt(&row)
        && Box::pin(import::import(app, row.clone(), deletes_before))
            .await?
            .is_none()
    {
        return Err(never_attempted(&key));
    }
    match row.status {
        Status::Failed => Box::pin(app.node.poll_builtin(key)).await?,
        _ => Ok(row.to_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
    const DEV: Mode = Mode::DEVELOPER;

    #[test]
    fn named_and_positional_agree() {
        let a = parse(
            &json!({"payment_hash": H, "timeout": 10, "partid": 2, "groupid": 3}),
            DEV,
        )
        .unwrap();
        let b = parse(&json!([H, 10, 2, 3]), DEV).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timeout, Some(10));
        let d = parse(&json!([H]), DEV).unwrap();
        assert_eq!((d.timeout, d.partid, d.groupid), (None, 0, None));
    }

    #[test]
    fn errors_in_lightningd_words() {
        let e = parse(&json!([H, 1, 0, 1, 5]), DEV).unwrap_err();
        assert_eq!(e.message, "too many parameters: got 5, expected 4");
        // The bad element is met before the surplus one.
        let e = parse(&json!([true, H, 1, 2, 3]), DEV).unwrap_err();
        assert!(e.message.starts_with("payment_hash: "), "{}", e.message);
        let e = parse(&json!({"payment_hash": H, "timeout": "abc"}), DEV).unwrap_err();
        assert_eq!(
            e.message,
            "timeout: should be an integer: invalid token '\"abc\"'"
        );
        assert_eq!(
            parse(&json!({"payment_hash": H, "timeout": "5"}), DEV)
                .unwrap()
                .timeout,
            Some(5)
        );
    }
}
