//! `paystate-listsendpays [payment_hash] [status] [index] [start] [limit]`:
//! the ledger's parts in `listsendpays` format. Each is shown as the node's
//! table has it now, and only if the node still has it: a part the node
//! deleted without a word (a `delpay` without `partid` and `groupid`) is
//! dropped from the ledger when a listing finds it gone, and a terminal
//! part catch-up has not imported yet is imported.
//!
//! With `index` (`created` or `updated`) it pages as `listsendpays` does:
//! the terminal parts from `start` on, in that index's order, at most
//! `limit` of them, a page of the node's table at a time. Without a hash
//! or an index it reads the whole ledger and the node's whole table: for
//! inspection, not for automation.

use crate::app::App;
use crate::domain::{Payment, Status};
use crate::error::RpcError;
use crate::field;
use crate::import;
use crate::node::{Index, Node, Page};
use crate::params::{self, Field, Mode};
use crate::store::Datastore;
use serde_json::{json, Value};
use std::collections::HashMap;

const SPEC: [Field<Request>; 5] = [
    field!(optional "payment_hash" => hash: params::hash),
    field!(optional "status" => status: params::status),
    field!(optional "index" => index: params::index),
    Field::optional("start", |r, m, n, v| {
        r.start = params::u64_number(m, n, v)?;
        Ok(())
    }),
    field!(optional "limit" => limit: params::u32_value),
];

#[derive(Debug, Default)]
pub struct Request {
    hash: Option<cln_rpc::primitives::Sha256>,
    status: Option<Status>,
    index: Option<Index>,
    start: u64,
    limit: Option<u32>,
}

/// lightningd's checks, in its order (`json_listsendpays`).
pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let r: Request = params::fill(params, mode, &SPEC)?;
    if r.start != 0 && r.index.is_none() {
        return Err(RpcError::invalid_params(
            "Can only specify {start} with {index}",
        ));
    }
    if r.limit.is_some() && r.index.is_none() {
        return Err(RpcError::invalid_params(
            "Can only specify {limit} with {index}",
        ));
    }
    if r.hash.is_some() && r.start != 0 {
        return Err(RpcError::invalid_params(
            "Cannot use start with bolt11 or payment_hash",
        ));
    }
    Ok(r)
}

pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    params: &Value,
) -> Result<Value, RpcError> {
    let r = parse(params, app.mode)?;
    let listed = match (r.hash, r.index) {
        // As lightningd: a hash lists all its parts, whatever the index.
        (None, Some(index)) => paged(app, &r, index).await?,
        _ => whole(app, &r).await?,
    };
    let payments: Vec<Value> = listed.iter().map(Payment::to_json).collect();
    Ok(json!({ "payments": payments }))
}

/// The hash's parts, or every part: the ledger against the node's rows.
async fn whole<D: Datastore, N: Node>(
    app: &App<D, N>,
    r: &Request,
) -> Result<Vec<Payment>, RpcError> {
    let deletes_before = app.signals.node_deletes();
    let (held, rows) = match r.hash {
        Some(h) => (app.ledger.held(&h, None), app.node.parts_of(h).await?),
        None => {
            app.load_index().await?;
            let held = app.ledger.all();
            let mut rows = Vec::new();
            import::node_table(app, |p| rows.push(p)).await?;
            (held, rows)
        }
    };
    let mut rows: HashMap<u64, Payment> = rows
        .into_iter()
        .filter(|p| p.status != Status::Pending)
        .map(|p| (p.created_index, p))
        .collect();
    import::forget_lost(app, r.hash.as_ref(), &held, |ci| rows.contains_key(&ci));
    let listed_held = held.iter().filter_map(|h| rows.remove(&h.created_index));
    let mut listed: Vec<Payment> = listed_held.collect();
    // Terminal parts the ledger has not imported yet (resolved while
    // paystate was away, and catch-up has not reached them): imported now,
    // so a listing is the node's terminal parts from the first answer on.
    for row in rows.into_values() {
        listed.extend(import::import(app, row, deletes_before).await?);
    }
    listed.retain(|p| r.status.map_or(true, |st| p.status == st));
    listed.sort_by_key(|p| p.created_index);
    Ok(listed)
}

/// Pages of the node's table in the index's order, from `start`, until
/// `limit` terminal parts (or the table's end): each is listed as the node
/// has it, imported first if the ledger lacks it. (A part the ledger holds
/// and the node does not is not on any page: reconciliation drops it.)
async fn paged<D: Datastore, N: Node>(
    app: &App<D, N>,
    r: &Request,
    index: Index,
) -> Result<Vec<Payment>, RpcError> {
    let mut listed = Vec::new();
    let mut start = r.start;
    loop {
        let want = r.limit.map_or(import::PAGE, |l| {
            (l as usize - listed.len()).min(import::PAGE as usize) as u32
        });
        if want == 0 {
            return Ok(listed);
        }
        let deletes_before = app.signals.node_deletes();
        let page = Page {
            index,
            start,
            limit: want,
            status: r.status,
        };
        let rows = app.node.page(page).await?;
        let full = rows.len() == want as usize;
        let next = rows.last().and_then(|p| index.of(p));
        for row in rows.into_iter().filter(|p| p.status != Status::Pending) {
            if app.ledger.holds_attempt(&row) {
                listed.push(row);
            } else {
                listed.extend(import::import(app, row, deletes_before).await?);
            }
        }
        match next {
            Some(n) if full => start = n + 1,
            _ => return Ok(listed),
        }
    }
}
