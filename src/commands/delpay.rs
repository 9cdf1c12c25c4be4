//! `delpay`: delete the complete or failed parts of a payment, from the
//! ledger and from the node's own table.
//!
//! Order of a delete, so that a crash at any point neither resurrects a
//! part whose delete was answered nor loses a terminal one: (1) the
//! ledger's records go, (2) the node deletes its parts. Between the two,
//! the node still has them: paystate answers them from the node, and
//! imports them again, as it does any terminal part it lacks. Two calls to
//! lightningd for any number of parts' worth of answer, plus one
//! datastore call per ledger part.

use crate::app::App;
use crate::domain::{Part, PartKey, Status};
use crate::error::{codes, RpcError};
use crate::node::Node;
use crate::params::{self, optional, required, Mode, Param};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const SPEC: [Param; 4] = [
    required("payment_hash"),
    required("status"),
    optional("partid"),
    optional("groupid"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub payment_hash: Sha256,
    pub status: Status,
    /// `(partid, groupid)` of the one part to delete.
    pub part: Option<(u64, u64)>,
}

pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let (mut payment_hash, mut status, mut partid, mut groupid) = (None, None, None, None);
    params::walk(params, &SPEC, |i, v| {
        let name = SPEC[i].name;
        match i {
            0 => payment_hash = Some(params::hash(mode, name, v)?),
            1 => status = Some(params::deletable_status(mode, name, v)?),
            2 => partid = Some(params::u64_number(mode, name, v)?),
            _ => groupid = Some(params::u64_number(mode, name, v)?),
        }
        Ok(())
    })?;
    let part = match (partid, groupid) {
        (Some(p), Some(g)) => Some((p, g)),
        (None, None) => None,
        _ => {
            return Err(RpcError::invalid_params(
                "Must set both partid and groupid, or neither",
            ))
        }
    };
    Ok(Request {
        payment_hash: payment_hash.expect("walk checks required params"),
        status: status.expect("walk checks required params"),
        part,
    })
}

/// Puts back the records of parts whose delete did not happen (the node
/// refused it, or a datastore call failed before the node was asked), so
/// that the ledger is as it was. Should this fail too, the node still has
/// the parts: a waitsendpay or the next catch-up imports them again.
async fn restore<D: Datastore, N: Node>(app: &App<D, N>, removed: &[Arc<Part>]) {
    for part in removed {
        let key = part.key();
        app.ledger.untombstone(&key);
        if let Err(e) = app.ledger.record(part.clone()).await {
            log::warn!("Could not restore {key} after a failed delete ({}); it is imported again when asked", e.message);
        }
    }
}

fn no_such_payment(message: String) -> RpcError {
    RpcError::new(codes::PAY_NO_SUCH_PAYMENT, message)
}

fn mismatch(hash: &Sha256, found: Status, asked: Status) -> RpcError {
    no_such_payment(format!(
        "Payment with hash {hash} has {found} status but it different from the one provided {asked}"
    ))
}

/// lightningd's answers that say it has nothing to delete for the request.
fn nothing_to_delete(e: &RpcError) -> bool {
    e.code == codes::PAY_NO_SUCH_PAYMENT
        && (e.message.starts_with("Unknown payment")
            || e.message.starts_with("No payment for that")
            || e.message
                .contains("status but it different from the one provided"))
}

pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let hash = req.payment_hash;
    app.ledger.ensure(&hash).await?;
    let _guard = app.ledger.lock(&hash).await;

    // (1) The ledger's parts go first, each with one datastore call that
    // hands back its record (for the answer). A crash after this leaves
    // them in the node only: paystate answers them from the node and
    // imports them again, so nothing terminal is lost and nothing whose
    // delete was answered comes back.
    let held = app.ledger.held(&hash, req.part);
    let mut removed: Vec<Arc<Part>> = Vec::new();
    for s in held.iter().filter(|s| s.status == req.status) {
        match app.ledger.remove(&s.key).await {
            Ok(part) => {
                // A notification still in flight must not bring it back.
                app.ledger.tombstone(s.key, s.created_index);
                removed.extend(part);
            }
            Err(e) => {
                restore(app, &removed).await;
                return Err(e);
            }
        }
    }

    // (2) The node's table: one built-in delpay for the whole request,
    // whose checks (pending parts, statuses) are lightningd's own.
    let answer = app.node.delpay_builtin(hash, req.status, req.part).await;
    app.ledger.note_node_delete();
    let deleted = match answer.and_then(|a| {
        a.or_else(|e| match nothing_to_delete(&e) {
            true if !removed.is_empty() => Ok(Vec::new()),
            _ => Err(e),
        })
    }) {
        Ok(deleted) => deleted,
        Err(e) => {
            // Not deleted from the node: nothing was.
            restore(app, &removed).await;
            // The node has none of the hash but the ledger does (the
            // node's table lost them): answer as lightningd would have.
            let unknown =
                e.message.starts_with("Unknown payment") || e.message.starts_with("No payment");
            return Err(match held.last() {
                Some(s) if unknown && s.status != req.status => {
                    mismatch(&hash, s.status, req.status)
                }
                _ => e,
            });
        }
    };
    for p in &deleted {
        // A notification still in flight must not bring it back.
        app.ledger.tombstone(p.key(), p.created_index);
    }

    // The node's listing of what it deleted, and the ledger's of parts the
    // node no longer had; by created_index, as lightningd lists them.
    let mut listed: BTreeMap<(u64, PartKey), Value> = deleted
        .iter()
        .map(|p| ((p.created_index, p.key()), p.to_json()))
        .collect();
    for part in &removed {
        let p = &part.payment;
        if !deleted.iter().any(|d| d.key() == p.key()) {
            listed.insert((p.created_index, p.key()), part.listing());
        }
    }
    let listed: Vec<Value> = listed.into_values().collect();
    log::debug!("Deleted {} {} part(s) of {hash}", listed.len(), req.status);
    Ok(json!({ "payments": listed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
    const DEV: Mode = Mode::Developer;

    #[test]
    fn pairing_of_partid_and_groupid() {
        let both = parse(&json!([H, "complete", 0, 1]), DEV).unwrap();
        assert_eq!(both.part, Some((0, 1)));
        for p in [
            json!({"payment_hash": H, "status": "complete", "partid": 0}),
            json!([H, "failed", null, 1]),
        ] {
            assert_eq!(
                parse(&p, DEV).unwrap_err().message,
                "Must set both partid and groupid, or neither"
            );
        }
    }

    #[test]
    fn status_is_required_and_never_pending() {
        assert_eq!(
            parse(&json!([H]), DEV).unwrap_err().message,
            "missing required parameter: status"
        );
        assert_eq!(
            parse(&json!([H, "pending"]), DEV).unwrap_err().message,
            "status: Cannot delete pending status: invalid token '\"pending\"'"
        );
    }
}
