//! Benchmark floor: a cln-plugin plugin subscribed to `sendpay_success` and
//! `sendpay_failure` that does nothing with them, but for one method:
//! `subscriber-next [payment_hash]` answers when the next of them arrives
//! (with the node's `listsendpays` of the hash, read then, if one is
//! given). What a node pays for any plugin that learns of payment outcomes
//! as paystate must (lightningd writes each notification to it), and how
//! soon any plugin can answer a caller on a notification, with or without
//! asking the node: the floors under paystate's cost on payments and its
//! waiters' wake-up (`tests/real/bench_real.py`).
//!
//! Build: `cargo build --release --example subscriber`.

use cln_plugin::{Builder, Plugin, RpcMethodBuilder};
use cln_rpc::ClnRpc;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{broadcast, Mutex, OnceCell};

#[derive(Clone)]
struct State {
    next: broadcast::Sender<()>,
    rpc: Arc<OnceCell<Mutex<ClnRpc>>>,
}

async fn notified(p: Plugin<State>, _params: Value) -> anyhow::Result<()> {
    // No receiver is not an error: nobody waits.
    let _ = p.state().next.send(());
    Ok(())
}

async fn next(p: Plugin<State>, params: Value) -> anyhow::Result<Value> {
    let mut woken = p.state().next.subscribe();
    let hash = params.get(0).or(params.get("payment_hash")).cloned();
    // Connected before the wait, as a plugin serving waiters would be.
    let rpc = match hash {
        Some(_) => Some(
            p.state()
                .rpc
                .get_or_try_init(|| async {
                    let c = p.configuration();
                    let path = PathBuf::from(c.lightning_dir).join(c.rpc_file);
                    ClnRpc::new(path).await.map(Mutex::new)
                })
                .await?,
        ),
        None => None,
    };
    woken.recv().await?;
    match (rpc, hash) {
        (Some(rpc), Some(h)) => Ok(rpc
            .lock()
            .await
            .call_raw("listsendpays", &json!({"payment_hash": h}))
            .await?),
        _ => Ok(json!({})),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = State {
        next: broadcast::channel(16).0,
        rpc: Arc::new(OnceCell::new()),
    };
    let builder = Builder::new(tokio::io::stdin(), tokio::io::stdout())
        .subscribe("sendpay_success", notified)
        .subscribe("sendpay_failure", notified)
        .rpcmethod_from_builder(
            RpcMethodBuilder::new("subscriber-next", next)
                .description("Answers when the next payment notification arrives"),
        )
        .dynamic();
    if let Some(plugin) = builder.start(state).await? {
        plugin.join().await?;
    }
    Ok(())
}
