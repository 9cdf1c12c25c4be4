//! Benchmark floor: a cln-plugin plugin whose `rpc_command` hook, filtered
//! to `waitsendpay` and `delpay` as paystate's may be, lets every call
//! through at once. What a node pays for relaying a command through a
//! plugin's hook written in Rust with cln-plugin, as paystate is, and
//! nothing else: the floor under paystate's takeover
//! (`tests/real/bench_real.py`; `tests/real/plugins/passthrough.py` is the
//! same in Python).
//!
//! Build: `cargo build --release --example passthrough`.

use cln_plugin::{Builder, HookBuilder, HookFilter};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filters = ["waitsendpay", "delpay"]
        .iter()
        .map(|m| HookFilter::Str(m.to_string()))
        .collect();
    let builder = Builder::new(tokio::io::stdin(), tokio::io::stdout())
        .hook_from_builder(
            HookBuilder::new("rpc_command", |_p, _payload: Value| async {
                Ok(json!({"result": "continue"}))
            })
            .filters(filters),
        )
        .dynamic();
    if let Some(plugin) = builder.start(()).await? {
        plugin.join().await?;
    }
    Ok(())
}
