//! `waitsendpay`: wait for (or poll) the outcome of one payment part.

use super::never_attempted;
use crate::app::App;
use crate::catchup;
use crate::domain::{PartKey, Status};
use crate::error::{codes, RpcError};
use crate::ledger::Lookup;
use crate::node::Node;
use crate::params::{self, optional, required, Mode, Param};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::time::Duration;

const SPEC: [Param; 4] = [
    required("payment_hash"),
    optional("timeout"),
    optional("partid"),
    optional("groupid"),
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
    let (mut payment_hash, mut timeout, mut partid, mut groupid) = (None, None, None, None);
    params::walk(params, &SPEC, |i, v| {
        let name = SPEC[i].name;
        match i {
            0 => payment_hash = Some(params::hash(mode, name, v)?),
            1 => timeout = Some(params::u32_number(mode, name, v)?),
            2 => partid = Some(params::u64_number(mode, name, v)?),
            _ => groupid = Some(params::u64_number(mode, name, v)?),
        }
        Ok(())
    })?;
    Ok(Request {
        payment_hash: payment_hash.expect("walk checks required params"),
        timeout,
        partid: partid.unwrap_or(0),
        groupid,
    })
}

fn timed_out() -> RpcError {
    RpcError::new(codes::PAY_IN_PROGRESS, "Timed out while waiting")
}

/// The node calls are boxed: what stays in memory while a caller waits is
/// the small waiting state, not the largest call's (thousands may wait).
pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let hash = req.payment_hash;
    app.ledger.ensure(&hash).await?;
    let deletes_before = app.ledger.node_deletes();
    let mut node_parts = None;
    let groupid = match req.groupid {
        Some(g) => g,
        None => {
            let parts = Box::pin(app.node.parts_of(hash)).await?;
            let highest = parts
                .iter()
                .map(|p| p.groupid)
                .max()
                .or_else(|| app.ledger.highest_groupid(&hash));
            node_parts = Some(parts);
            // No part at all: nothing to wait for, whatever the partid.
            highest.unwrap_or(0)
        }
    };
    let key = PartKey {
        payment_hash: hash,
        groupid,
        partid: req.partid,
    };
    // The waiter is registered before the node is asked, so a notification
    // that lands in between still wakes it.
    let waiter = match Box::pin(app.ledger.lookup_or_wait(key)).await? {
        Lookup::Ready(part) => return part.waitsendpay_answer(),
        Lookup::Deleting => return Err(never_attempted(&key)),
        Lookup::Absent(w) => w,
    };
    let parts = match node_parts {
        Some(p) => p,
        None => Box::pin(app.node.parts_of(hash)).await?,
    };
    let Some(in_node) = parts.into_iter().find(|p| p.key() == key) else {
        return Err(never_attempted(&key));
    };
    if in_node.status != Status::Pending {
        // Terminal in the node but not in the ledger: its notification was
        // missed (paystate was not running). Import it now.
        drop(waiter);
        return match Box::pin(catchup::import(app, in_node, deletes_before)).await? {
            Some(part) => part.waitsendpay_answer(),
            None => Err(never_attempted(&key)),
        };
    }
    let answer = match req.timeout {
        Some(0) => return Err(timed_out()),
        Some(secs) => tokio::time::timeout(Duration::from_secs(secs.into()), waiter.wait())
            .await
            .map_err(|_| timed_out())?,
        None => waiter.wait().await,
    };
    (*answer).clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";
    const DEV: Mode = Mode::Developer;

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
