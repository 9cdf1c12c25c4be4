//! `paystate-waitanysendpay [lastpay_index] [timeout]`: what
//! `waitanyinvoice` is for invoices. Answers with the first terminal part
//! whose `updated_index` is above `lastpay_index` (absent: the next part
//! resolved from now on), as `{"payment": <listsendpays row>, "failure":
//! <waitsendpay's error for it>}` (`failure` for a failed part only), so
//! that automation can follow every outcome by passing the last
//! `updated_index` back, across restarts of either side.
//!
//! Caught up (`lastpay_index` at the node's `updated_index`), a call waits
//! for a notification and reads no table meanwhile. Whenever the node's
//! `updated_index` is past `lastpay_index`, it reads `listsendpays
//! index=updated` from there, a page at a time: lightningd answers that
//! from its `payments_update_idx` index, not a scan of the table.

use super::{deadline, until};
use crate::app::App;
use crate::domain::{Payment, Status};
use crate::error::RpcError;
use crate::field;
use crate::node::{Index, Node, Page};
use crate::params::{self, Field, Mode};
use crate::store::Datastore;
use serde_json::{json, Value};

const SPEC: [Field<Request>; 2] = [
    field!(optional "lastpay_index" => lastpay_index: params::u64_number),
    field!(optional "timeout" => timeout: params::u32_number),
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub lastpay_index: Option<u64>,
    /// Seconds; `None` waits indefinitely, 0 polls.
    pub timeout: Option<u32>,
}

pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    params::fill(params, mode, &SPEC)
}

/// Parts read per page when catching up with the node's table.
const PAGE: u32 = 100;

pub async fn run<D: Datastore, N: Node>(app: &App<D, N>, params: Value) -> Result<Value, RpcError> {
    let req = parse(&params, app.mode)?;
    let deadline = deadline(req.timeout);
    // Subscribed before the node is read: an outcome in between wakes it.
    let mut resolutions = app.signals.resolutions();
    // Absent: from the node's index as first read.
    let mut last = req.lastpay_index;
    loop {
        resolutions.borrow_and_update();
        let now = Box::pin(app.node.parts_updated()).await?;
        let last = last.get_or_insert(now);
        if now > *last {
            match Box::pin(first_terminal_after(app, *last)).await? {
                Some(row) => return Box::pin(answer(app, row)).await,
                // Only pending parts moved the index so far.
                None => *last = now,
            }
        }
        // Woken (or the ledger gone, which it never is while paystate runs):
        // read again.
        let _ = until(deadline, resolutions.changed()).await?;
    }
}

/// The first terminal part whose `updated_index` is above `last`.
async fn first_terminal_after<D: Datastore, N: Node>(
    app: &App<D, N>,
    mut last: u64,
) -> Result<Option<Payment>, RpcError> {
    loop {
        let page = Page {
            index: Index::Updated,
            start: last + 1,
            limit: PAGE,
            status: None,
        };
        let rows = app.node.page(page).await?;
        let full = rows.len() == PAGE as usize;
        let next = rows.last().and_then(|p| p.updated_index);
        if let Some(row) = rows.into_iter().find(|p| p.status != Status::Pending) {
            return Ok(Some(row));
        }
        match next {
            Some(n) if full => last = n,
            _ => return Ok(None),
        }
    }
}

/// The part, and for a failed one the error `waitsendpay` gives for it
/// (the node's own, as a poll of it answers).
async fn answer<D: Datastore, N: Node>(app: &App<D, N>, row: Payment) -> Result<Value, RpcError> {
    let mut out = json!({ "payment": row.to_json() });
    if row.status == Status::Failed {
        if let Err(e) = app.node.poll_builtin(row.key()).await? {
            out["failure"] = e.to_json();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_in_lightningd_words() {
        let d = Mode::DEVELOPER;
        assert_eq!(
            parse(&json!({"lastpay_index": 7, "timeout": 1}), d),
            parse(&json!([7, 1]), d)
        );
        let none = parse(&json!([]), d).unwrap();
        assert_eq!((none.lastpay_index, none.timeout), (None, None));
        let e = parse(&json!({"lastpay_index": "x"}), d).unwrap_err();
        assert_eq!(
            e.message,
            "lastpay_index: should be an unsigned 64 bit integer: invalid token '\"x\"'"
        );
        let e = parse(&json!([1, 2, 3]), d).unwrap_err();
        assert_eq!(e.message, "too many parameters: got 3, expected 2");
    }
}
