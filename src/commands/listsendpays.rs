//! `paystate-listsendpays [payment_hash] [status]`: the ledger's parts in
//! `listsendpays` format, by created_index. Without a hash it reads every
//! record from the datastore: it is for inspection, not for automation.

use crate::app::App;
use crate::error::RpcError;
use crate::node::Node;
use crate::params::{self, optional, Param};
use crate::store::Datastore;
use serde_json::{json, Value};

const SPEC: [Param; 2] = [optional("payment_hash"), optional("status")];

pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    params: &Value,
) -> Result<Value, RpcError> {
    let (mut hash, mut status) = (None, None);
    params::walk(params, &SPEC, |i, v| {
        match i {
            0 => hash = Some(params::hash(app.mode, SPEC[i].name, v)?),
            _ => status = Some(params::status(app.mode, SPEC[i].name, v)?),
        }
        Ok(())
    })?;
    let payments: Vec<Value> = app
        .ledger
        .list(hash.as_ref(), status)
        .await?
        .iter()
        .map(|p| p.listing())
        .collect();
    Ok(json!({ "payments": payments }))
}
