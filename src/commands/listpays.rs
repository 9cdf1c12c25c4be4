//! `paystate-listpays [payment_hash] [status] [index] [start] [limit]
//! [reverse]`: whole payments (a hash and a group), each exactly the entry
//! `listpays` shows for it, paged by payment so that no page cuts one
//! ([`pays::pages`]): in the order of a payment's first part's
//! `created_index` (or, with `index=updated`, its last `updated_index`),
//! oldest first or `reverse`. `status` keeps the payments of that status
//! (`listpays` keeps the parts of that status, and builds its entries
//! from them alone).

use crate::app::App;
use crate::domain::Status;
use crate::error::RpcError;
use crate::field;
use crate::node::{Index, Node};
use crate::params::{self, Field, Mode};
use crate::pays::pages::{self, Query};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;
use serde_json::{json, Value};

#[derive(Debug, Default)]
struct Given {
    hash: Option<Sha256>,
    status: Option<Status>,
    index: Option<Index>,
    start: Option<u64>,
    limit: Option<u32>,
    reverse: Option<bool>,
}

const SPEC: [Field<Given>; 6] = [
    field!(optional "payment_hash" => hash: params::hash),
    field!(optional "status" => status: params::status),
    field!(optional "index" => index: params::index),
    field!(optional "start" => start: params::u64_number),
    field!(optional "limit" => limit: params::u32_value),
    field!(optional "reverse" => reverse: params::boolean),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub hash: Option<Sha256>,
    pub query: Query,
}

/// `listpays`'s checks, then `listsendpays`'s (to which it passes them).
pub fn parse(params: &Value, mode: Mode) -> Result<Request, RpcError> {
    let g: Given = params::fill(params, mode, &SPEC)?;
    let start = g.start.filter(|s| *s != 0 || g.reverse == Some(true));
    if start.is_some() && g.index.is_none() {
        return Err(RpcError::invalid_params(
            "Can only specify {start} with {index}",
        ));
    }
    if g.limit.is_some() && g.index.is_none() {
        return Err(RpcError::invalid_params(
            "Can only specify {limit} with {index}",
        ));
    }
    if g.hash.is_some() && start.is_some() {
        return Err(RpcError::invalid_params(
            "Cannot use start with bolt11 or payment_hash",
        ));
    }
    Ok(Request {
        hash: g.hash,
        query: Query {
            index: g.index.unwrap_or(Index::Created),
            start,
            limit: g.limit,
            reverse: g.reverse.unwrap_or(false),
            status: g.status,
        },
    })
}

pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    params: &Value,
) -> Result<Value, RpcError> {
    let r = parse(params, app.mode)?;
    let pays = match r.hash {
        Some(h) => pages::of_hash(&app.node, h, r.query).await?,
        None => pages::page(&app.node, r.query).await?,
    };
    Ok(json!({ "pays": pays }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::{msg, DEV};

    #[test]
    fn start_and_limit_need_an_index_as_in_listpays() {
        assert_eq!(
            msg(parse(&json!({"start": 3}), DEV)),
            "Can only specify {start} with {index}"
        );
        assert_eq!(
            msg(parse(&json!({"limit": 3}), DEV)),
            "Can only specify {limit} with {index}"
        );
        let r = parse(
            &json!({"index": "updated", "start": 3, "limit": 2, "reverse": true}),
            DEV,
        )
        .unwrap();
        assert_eq!(r.query.index, Index::Updated);
        assert_eq!(
            (r.query.start, r.query.limit, r.query.reverse),
            (Some(3), Some(2), true)
        );
        assert_eq!(
            msg(parse(&json!({"reverse": "yes"}), DEV)),
            "reverse: should be 'true' or 'false': invalid token '\"yes\"'"
        );
    }
}
