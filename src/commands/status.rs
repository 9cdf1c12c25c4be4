//! `paystate-status`: what the ledger holds and how the plugin runs.

use crate::app::App;
use crate::node::Node;
use crate::store::{self, Datastore};
use serde_json::{json, Value};

pub fn run<D: Datastore, N: Node>(app: &App<D, N>) -> Value {
    let c = app.ledger.counts();
    json!({
        "layout_version": store::LAYOUT_VERSION,
        "takeover": app.takeover,
        "hook": app.hook,
        "release": app.release,
        "parts": {"complete": c.complete, "failed": c.failed, "deleting": c.deleting},
        "waiters": app.ledger.waiter_count(),
        "index": {"loaded": app.ledger.loaded(), "pages_loaded": app.ledger.pages_loaded()},
        "slowest_call": app.calls.slowest().map_or(json!(null), |(method, took)| {
            json!({"method": method, "ms": (took.as_secs_f64() * 1e5).round() / 100.0})
        }),
        "calls": app.calls.totals().into_iter().map(|(method, t)| {
            (method, json!({"count": t.count, "ms": (t.took.as_secs_f64() * 1e5).round() / 100.0}))
        }).collect::<serde_json::Map<_, _>>(),
        "catchup": app.catchup_report(),
    })
}
