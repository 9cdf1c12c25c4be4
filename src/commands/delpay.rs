//! `delpay`: delete the complete or failed parts of a payment, from the
//! ledger and from the node's own table.
//!
//! Order of a delete, so that a crash at any point neither resurrects a part
//! nor loses one: (1) the ledger entries are durably marked `deleting`
//! (from then on no answer shows them), (2) the node deletes the parts,
//! (3) the ledger entries are removed. Start-up finishes any delete found
//! at (1) or (2).

use crate::app::App;
use crate::domain::{PartKey, Payment, Status};
use crate::error::{codes, RpcError};
use crate::node::Node;
use crate::params::{self, optional, required, Mode, Param};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};
use std::collections::BTreeMap;

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

/// A part that delpay may touch: what the ledger or the node knows of it.
struct Candidate {
    payment: Payment,
    in_ledger: bool,
    in_node: bool,
}

pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let hash = req.payment_hash;
    let _guard = app.ledger.lock(&hash).await;

    let mut known: BTreeMap<PartKey, Candidate> = BTreeMap::new();
    for p in app.node.parts_of(hash).await? {
        let key = p.key();
        // A part whose delete is in progress is gone already.
        if app.ledger.is_deleting(&key) {
            continue;
        }
        known.insert(
            key,
            Candidate {
                payment: p,
                in_ledger: false,
                in_node: true,
            },
        );
    }
    // The ledger's record wins: it is terminal and carries every field the
    // notification had. A ledger part the node no longer has is still
    // deletable (see README, "Ledger and node").
    for part in app.ledger.parts_of(&hash).await? {
        let c = known.entry(part.key()).or_insert(Candidate {
            payment: part.payment.clone(),
            in_ledger: true,
            in_node: false,
        });
        c.payment = part.payment.clone();
        c.in_ledger = true;
    }
    let mut parts: Vec<Candidate> = known.into_values().collect();
    parts.sort_by_key(|c| c.payment.created_index);

    // As lightningd: an unknown hash first, then an unknown part.
    if parts.is_empty() {
        return Err(RpcError::new(
            codes::PAY_NO_SUCH_PAYMENT,
            format!("Unknown payment with payment_hash: {hash}"),
        ));
    }
    if let Some((partid, groupid)) = req.part {
        parts.retain(|c| c.payment.partid == partid && c.payment.groupid == groupid);
    }
    // lightningd names the status of the last part it passed over.
    let Some(other_status) = parts.last().map(|c| c.payment.status) else {
        return Err(RpcError::new(
            codes::PAY_NO_SUCH_PAYMENT,
            "No payment for that payment_hash with that partid and groupid",
        ));
    };
    let other_status = parts
        .iter()
        .rev()
        .map(|c| c.payment.status)
        .find(|s| *s != req.status)
        .unwrap_or(other_status);
    parts.retain(|c| c.payment.status == req.status);
    if parts.is_empty() {
        // 208, as lightningd answers (its documentation says 211).
        return Err(RpcError::new(
            codes::PAY_NO_SUCH_PAYMENT,
            format!(
                "Payment with hash {hash} has {other_status} status but it different from the one provided {}",
                req.status
            ),
        ));
    }

    // (1) durable intent.
    let mut marked: Vec<PartKey> = Vec::new();
    for c in parts.iter().filter(|c| c.in_ledger) {
        let key = c.payment.key();
        if let Err(e) = app.ledger.mark_deleting(&key, true).await {
            unmark(app, &marked).await;
            return Err(e);
        }
        marked.push(key);
    }
    // (2) the node's table.
    for (i, c) in parts.iter().enumerate() {
        if !c.in_node {
            continue;
        }
        let deleted = app.node.delete_builtin(c.payment.key(), req.status).await;
        app.ledger.note_node_delete();
        if deleted.is_ok() {
            app.ledger
                .tombstone(c.payment.key(), c.payment.created_index);
        }
        if let Err(e) = deleted {
            // Parts before this one are gone from the node: finish them;
            // the others stay as they were.
            let (done, rest): (Vec<_>, Vec<_>) = parts
                .iter()
                .enumerate()
                .filter(|(_, c)| c.in_ledger)
                .partition(|(j, _)| *j < i);
            for (_, c) in done {
                remove(app, &c.payment.key()).await;
            }
            let rest: Vec<PartKey> = rest.into_iter().map(|(_, c)| c.payment.key()).collect();
            unmark(app, &rest).await;
            return Err(e);
        }
    }
    // (3) the ledger.
    for c in parts.iter().filter(|c| c.in_ledger) {
        app.ledger
            .tombstone(c.payment.key(), c.payment.created_index);
    }
    for key in &marked {
        remove(app, key).await;
    }
    let listed: Vec<Value> = parts.iter().map(|c| c.payment.to_json()).collect();
    log::info!("Deleted {} {} part(s) of {hash}", listed.len(), req.status);
    Ok(json!({ "payments": listed }))
}

/// Removing a marked entry cannot be undone by failing: the part is gone
/// from the node. If the datastore refuses now, start-up finishes it.
async fn remove<D: Datastore, N: Node>(app: &App<D, N>, key: &PartKey) {
    if let Err(e) = app.ledger.remove(key).await {
        log::warn!(
            "Could not remove {key} from the ledger ({}); start-up will",
            e.message
        );
    }
}

async fn unmark<D: Datastore, N: Node>(app: &App<D, N>, keys: &[PartKey]) {
    for key in keys {
        if let Err(e) = app.ledger.mark_deleting(key, false).await {
            log::warn!("Could not restore {key} after a failed delete ({}); start-up will finish deleting it", e.message);
        }
    }
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
