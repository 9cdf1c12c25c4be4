//! `paystate-listsendpays [payment_hash] [status]`: the ledger's parts in
//! `listsendpays` format, by created_index. Each is shown as the node's
//! table has it now, and only if the node still has it: a part the node
//! deleted without a word (a `delpay` without `partid` and `groupid`) is
//! dropped from the ledger when a listing finds it gone, and a terminal
//! part catch-up has not imported yet is imported. Without a hash
//! it reads the whole index and the node's whole table, a page at a time:
//! it is for inspection, not for automation.

use crate::app::App;
use crate::catchup;
use crate::domain::{Payment, Status};
use crate::error::RpcError;
use crate::node::Node;
use crate::params::{self, optional, Param};
use crate::store::Datastore;
use serde_json::{json, Value};
use std::collections::HashMap;

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
    let deletes_before = app.ledger.node_deletes();
    let (held, rows) = match hash {
        Some(h) => {
            app.ledger.ensure(&h).await?;
            (app.ledger.held(&h, None), app.node.parts_of(h).await?)
        }
        None => {
            app.ledger.load_all().await?;
            let held = app.ledger.summaries();
            let mut rows = Vec::new();
            catchup::node_table(app, false, |p| rows.push(p)).await?;
            (held, rows)
        }
    };
    let mut rows: HashMap<_, Payment> = rows
        .into_iter()
        .filter(|p| p.status != Status::Pending)
        .map(|p| ((p.key(), p.created_index), p))
        .collect();
    let mut listed: Vec<Payment> = Vec::new();
    for s in &held {
        match rows.remove(&(s.key, s.created_index)) {
            Some(row) => listed.push(row),
            None => {
                app.ledger
                    .forget(&s.key, Some(s.status), Some(s.created_index))
                    .await?;
            }
        }
    }
    // Terminal parts the ledger has not imported yet (resolved while
    // paystate was away, and catch-up has not reached them): imported now,
    // so a listing is the node's terminal parts from the first answer on.
    for row in rows.into_values() {
        if let Some(part) = catchup::import(app, row, deletes_before).await? {
            listed.push(part.payment.clone());
        }
    }
    listed.retain(|p| status.map_or(true, |st| p.status == st));
    listed.sort_by_key(|p| p.created_index);
    let payments: Vec<Value> = listed.iter().map(Payment::to_json).collect();
    Ok(json!({ "payments": payments }))
}
