//! `paystate-delpay`: delete the complete or failed parts of a payment
//! from the node, and so from the ledger.
//!
//! The built-in `delpay` is not taken over: it answers as it is, at its
//! own cost, and the ledger follows whatever it deletes ([`follow`]). This
//! command checks its parameters as lightningd does, asks the node's
//! `delpay` (whose own checks, pending parts and statuses, decide), and
//! answers what the node answered. The ledger forgets the deleted parts
//! at once (their records go with the next batch of writes): a `delpay`
//! without `partid` and `groupid` moves no index the feed would see.
//!
//! [`follow`]: crate::follow

use crate::app::App;
use crate::domain::{Payment, Status};
use crate::error::RpcError;
use crate::field;
use crate::node::Node;
use crate::params::{self, Field, Mode};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};

/// The parameters as given, each read by its own spec entry.
#[derive(Default)]
struct Given {
    payment_hash: Option<Sha256>,
    status: Option<Status>,
    partid: Option<u64>,
    groupid: Option<u64>,
}

const SPEC: [Field<Given>; 4] = [
    field!(required "payment_hash" => payment_hash: params::hash),
    field!(required "status" => status: params::deletable_status),
    field!(optional "partid" => partid: params::u64_number),
    field!(optional "groupid" => groupid: params::u64_number),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub payment_hash: Sha256,
    pub status: Status,
    /// `(partid, groupid)` of the one part to delete.
    pub part: Option<(u64, u64)>,
}

pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let g = params::fill(params, mode, &SPEC)?;
    let part = match (g.partid, g.groupid) {
        (Some(p), Some(g)) => Some((p, g)),
        (None, None) => None,
        _ => {
            return Err(RpcError::invalid_params(
                "Must set both partid and groupid, or neither",
            ))
        }
    };
    Ok(Request {
        payment_hash: g.payment_hash.expect("fill reads every required param"),
        status: g.status.expect("fill reads every required param"),
        part,
    })
}

pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let answer = app
        .node
        .delpay_builtin(req.payment_hash, req.status, req.part)
        .await;
    app.signals.note_node_delete();
    let deleted = answer??;
    for p in &deleted {
        app.ledger
            .forget(&p.key(), Some(p.status), Some(p.created_index));
    }
    log::debug!(
        "Deleted {} {} part(s) of {}",
        deleted.len(),
        req.status,
        req.payment_hash
    );
    let listed: Vec<Value> = deleted.iter().map(Payment::to_json).collect();
    Ok(json!({ "payments": listed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
    const DEV: Mode = Mode::DEVELOPER;

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
