//! `paystate-failures [since] [until] [by]`: the failed parts whose
//! failure time lies in `[since, until)` (UNIX seconds; by default the
//! last 24 hours), counted by `channel` (`erring_channel` and
//! `erring_direction`, the default), `node` (`erring_node`) or
//! `failcode`. Answered from the ledger: from memory for a window its
//! newest failures cover, else reading only the pages whose failures span
//! the window; the node is not asked part by part.

use crate::app::App;
use crate::error::RpcError;
use crate::failstats::{self, By};
use crate::field;
use crate::node::Node;
use crate::params::{self, Field, Mode};
use crate::store::Datastore;
use serde_json::{json, Value};

/// The default window: a day.
const DAY: u64 = 24 * 60 * 60;

#[derive(Debug, Default)]
struct Given {
    since: Option<u64>,
    until: Option<u64>,
    by: Option<By>,
}

const SPEC: [Field<Given>; 3] = [
    field!(optional "since" => since: params::u64_number),
    field!(optional "until" => until: params::u64_number),
    field!(optional "by" => by: by),
];

fn by(mode: Mode, name: &str, v: &Value) -> Result<By, RpcError> {
    match v.as_str() {
        Some("channel") => Ok(By::Channel),
        Some("node") => Ok(By::Node),
        Some("failcode") => Ok(By::Failcode),
        _ => Err(params::invalid(
            mode,
            name,
            "should be 'channel', 'node' or 'failcode'",
            v,
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub since: u64,
    pub until: u64,
    pub by: By,
}

/// `now`: UNIX seconds, for the default window.
pub fn parse(params: &Value, mode: Mode, now: u64) -> Result<Request, RpcError> {
    let g: Given = params::fill(params, mode, &SPEC)?;
    let until = g.until.unwrap_or(now.saturating_add(1));
    let since = g.since.unwrap_or(until.saturating_sub(DAY));
    if since >= until {
        return Err(RpcError::invalid_params("since: must be before until"));
    }
    Ok(Request {
        since,
        until,
        by: g.by.unwrap_or_default(),
    })
}

pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    params: &Value,
) -> Result<Value, RpcError> {
    let r = parse(params, app.mode, crate::domain::now())?;
    app.load_index().await?;
    let failed = app.ledger.failed_between(r.since, r.until).await?;
    let rows = failstats::rows(r.by, &failed);
    Ok(json!({
        "since": r.since,
        "until": r.until,
        "by": r.by.name(),
        "failed_parts": failed.len(),
        "failures": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::{msg, DEV};

    #[test]
    fn the_window_defaults_to_the_last_day() {
        let r = parse(&json!({}), DEV, 1_000_000).unwrap();
        assert_eq!(
            (r.since, r.until, r.by),
            (1_000_001 - DAY, 1_000_001, By::Channel)
        );
        let r = parse(&json!(["5", 10, "failcode"]), DEV, 1_000_000).unwrap();
        assert_eq!((r.since, r.until, r.by), (5, 10, By::Failcode));
        assert_eq!(
            msg(parse(&json!({"since": 10, "until": 10}), DEV, 0)),
            "since: must be before until"
        );
        assert_eq!(
            msg(parse(&json!({"by": "peer"}), DEV, 0)),
            "by: should be 'channel', 'node' or 'failcode': invalid token '\"peer\"'"
        );
    }
}
