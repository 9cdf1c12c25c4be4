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
    let s = params::collect(params, &SPEC)?;
    let hash = s[0].map(|v| params::hash("payment_hash", v)).transpose()?;
    let status = s[1].map(|v| params::status("status", v)).transpose()?;
    let payments: Vec<Value> = app
        .ledger
        .list(hash.as_ref(), status)
        .await?
        .iter()
        .map(|p| p.listing())
        .collect();
    Ok(json!({ "payments": payments }))
}
