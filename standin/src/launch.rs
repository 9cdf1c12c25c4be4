//! The plugin spawned and introduced as lightningd introduces it:
//! `getmanifest` (a built-in name refused), then `init` with its options.

use crate::options::BUILTINS;
use crate::plugin::PluginProc;
use crate::state::{ActivePlugin, Core, RPC_FILE};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Spawns the plugin and runs `getmanifest` and `init` as lightningd
/// does; `startup` is false for `plugin start` on a running node.
pub(crate) async fn start_plugin(core: &Core, startup: bool) -> Result<Value> {
    if core
        .plugin
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|p| p.proc.is_alive())
    {
        bail!("plugin already running");
    }
    let proc = PluginProc::spawn(
        &core.opts.plugin,
        &core.dir,
        core.opts.developer,
        &core.opts.env,
        core.logs.clone(),
        core.sent.clone(),
    )?;
    let seq = core.seq.fetch_add(1, Ordering::Relaxed);
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        proc.request(
            &format!("cln:getmanifest#{seq}"),
            "getmanifest",
            json!({"allow-deprecated-apis": false}),
        ),
    )
    .await
    .context("getmanifest timed out")??;
    let manifest = resp
        .get("result")
        .cloned()
        .ok_or_else(|| anyhow!("getmanifest failed: {resp}"))?;
    let methods: Vec<String> = manifest["rpcmethods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect();
    if let Some(clash) = methods.iter().find(|m| BUILTINS.contains(&m.as_str())) {
        proc.kill().await;
        bail!("plugin registered the built-in name {clash}: lightningd v26.06 crashes (name-clash.json)");
    }
    let subscriptions = manifest["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let hook_filters = manifest["hooks"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|h| {
            (h["name"] == "rpc_command").then(|| {
                h["filters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
        });
    let mut options = Map::new();
    for o in manifest["options"].as_array().into_iter().flatten() {
        let Some(name) = o["name"].as_str() else {
            continue;
        };
        match (core.opts.plugin_options.get(name), o.get("default")) {
            (Some(v), _) => options.insert(name.into(), v.clone()),
            (None, Some(d)) => options.insert(name.into(), d.clone()),
            (None, None) => None,
        };
    }
    // Hooks are live from the manifest on: a hooked call the plugin
    // makes before answering init would wait on the plugin itself.
    let active = Arc::new(ActivePlugin {
        proc: proc.clone(),
        methods,
        subscriptions,
        hook_filters,
        can_check: manifest["cancheck"].as_bool().unwrap_or(false),
    });
    *core.plugin.lock().unwrap() = Some(active);
    let seq = core.seq.fetch_add(1, Ordering::Relaxed);
    let init = json!({
        "options": options,
        "configuration": {
            "lightning-dir": core.dir.to_string_lossy(),
            "rpc-file": RPC_FILE,
            "startup": startup,
            "network": "regtest",
            "feature_set": {"init": "800898880a8a59a1", "node": "808898880a8a59a1", "channel": "",
                "invoice": "02000002024100", "bolt12_offer": "", "bolt12_invreq": "",
                "bolt12_invoice": "020000", "channel_type": "08800000800000"}
        }
    });
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        proc.request(&format!("cln:init#{seq}"), "init", init),
    )
    .await
    .context("init timed out")??;
    if resp.get("result").and_then(|r| r.get("disable")).is_some() || resp.get("error").is_some() {
        *core.plugin.lock().unwrap() = None;
        proc.wait_exit_or_kill(Duration::from_secs(5)).await;
        bail!("plugin disabled itself: {resp}");
    }
    Ok(manifest)
}
