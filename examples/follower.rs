//! Benchmark floor: a plugin that follows the node's deletes as paystate
//! does (paystate's own feed: a window of `wait`s on the `sendpays`
//! `deleted` index, `src/rpc/deletes.rs`) and does nothing with them: what
//! learning of each delete as it happens costs the node, without a ledger
//! (`tests/real/bench_real.py`, autoclean).
//!
//! Build: `cargo build --release --example follower`.

use cln_plugin::Builder;
use paystate::follow::Feed;
use paystate::rpc::deletes::Deletes;
use paystate::rpc::{socket_path, Rpc};
use std::path::Path;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let builder = Builder::new(tokio::io::stdin(), tokio::io::stdout()).dynamic();
    let Some(plugin) = builder.start(()).await? else {
        return Ok(());
    };
    let socket = socket_path(Path::new(&plugin.configuration().rpc_file))?;
    let rpc = Arc::new(Rpc::new(socket));
    tokio::spawn(async move {
        loop {
            if let Ok((mut feed, _)) = Deletes::open(rpc.clone(), None).await {
                while feed.next().await.is_ok() {}
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    plugin.join().await?;
    Ok(())
}
