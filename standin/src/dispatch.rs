//! One request's way through the node: an injected fault, the plugin's
//! `rpc_command` hook, a plugin method (or its `check`), or a built-in.

use crate::batching::{Batch, Turn};
use crate::options::{Fault, ANY_METHOD};
use crate::plugin::{LogLine, STANDIN_VERSION};
use crate::state::{ActivePlugin, Core, NODE_ID};
use crate::table::{Status, Wait};
use crate::{check, params, schema};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Plugin ids (`paystate-internal:N`) mark calls the plugin makes.
pub(crate) const PLUGIN_ID_PREFIX: &str = "paystate-internal:";

pub(crate) fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) enum Reply {
    Answer(Result<Value, Value>),
    Hangup,
}

impl Core {
    /// The next fault injected for `method`, or for any method (`*`).
    pub(crate) fn take_fault(&self, method: &str) -> Option<Fault> {
        let mut f = self.faults.lock().unwrap();
        [method, ANY_METHOD].into_iter().find_map(|m| {
            let list = f.get_mut(m)?;
            (!list.is_empty()).then(|| list.remove(0))
        })
    }

    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        req: Value,
        raw: Option<String>,
        batch: Option<Arc<Batch>>,
        turn: Turn,
    ) -> Reply {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = req.get("method").and_then(Value::as_str).map(str::to_owned) else {
            return Reply::Answer(Err(json!({"code": -32600, "message": "Expected method"})));
        };
        let params = req.get("params").cloned().unwrap_or_else(|| json!({}));
        let from_plugin = id_text(&id).starts_with(PLUGIN_ID_PREFIX);
        if from_plugin {
            self.plugin_calls
                .lock()
                .unwrap()
                .push((method.clone(), params.clone()));
            self.check(
                |s| s.request(&method, &params),
                &format!("plugin's {method} request"),
            );
            match self.take_fault(&method) {
                Some(Fault::Hangup) => return Reply::Hangup,
                Some(Fault::Stall) => {
                    drop(turn);
                    return std::future::pending::<Reply>().await;
                }
                Some(Fault::Error(code, message)) => {
                    return Reply::Answer(Err(json!({"code": code, "message": message})))
                }
                Some(Fault::Answer(result)) => return Reply::Answer(Ok(result)),
                Some(Fault::Gate(g)) => drop(g.acquire().await),
                None => {}
            }
        }
        let answer = self.route(&id, &method, params, raw, batch, turn).await;
        match &answer {
            Ok(r) => {
                let name = method.strip_prefix("paystate-").unwrap_or(&method);
                self.check(|s| s.response(name, r), &format!("{method} result"));
            }
            Err(e) => self.violation(&format!("{method} error"), schema::error_object(e)),
        }
        Reply::Answer(answer)
    }

    async fn route(
        self: &Arc<Self>,
        id: &Value,
        method: &str,
        mut params: Value,
        mut raw: Option<String>,
        mut batch: Option<Arc<Batch>>,
        turn: Turn,
    ) -> Result<Value, Value> {
        // Until the request waits on something, it keeps its turn.
        let mut turn = Some(turn);
        let mut method = method.to_string();
        if let Some(p) = self.active() {
            let hooked = match &p.hook_filters {
                Some(f) => f.is_empty() || f.contains(&method) || self.opts.ignore_hook_filters,
                None => false,
            };
            if hooked {
                // Run later, from the plugin's answer: its own transaction.
                batch = None;
                turn = None;
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                let hook_id = format!("{}/cln:rpc_command#{seq}", id_text(id));
                let payload = json!({"rpc_command": {"jsonrpc": "2.0", "id": id, "method": method, "params": params}});
                self.check(
                    |s| s.hook_request("rpc_command", &payload),
                    "rpc_command payload",
                );
                // A plugin that dies mid-hook: lightningd carries on without it.
                if let Ok(resp) = p.proc.request(&hook_id, "rpc_command", payload).await {
                    let Some(r) = resp.get("result") else {
                        self.violation("rpc_command reply", vec![format!("error reply: {resp}")]);
                        return Err(json!({"code": -32603, "message": "rpc_command hook failed"}));
                    };
                    self.check(|s| s.hook_response("rpc_command", r), "rpc_command reply");
                    if let Some(ret) = r.get("return") {
                        if let Some(res) = ret.get("result") {
                            return Ok(res.clone());
                        }
                        if let Some(e) = ret.get("error") {
                            return Err(e.clone());
                        }
                    }
                    if let Some(rep) = r.get("replace") {
                        method = rep["method"].as_str().unwrap_or_default().to_string();
                        params = rep["params"].clone();
                        raw = None;
                    } else if r.get("result").and_then(Value::as_str) != Some("continue") {
                        self.violation("rpc_command reply", vec![format!("unknown reply {r}")]);
                    }
                }
            }
            if method == "check" {
                if let Some(name) = check::command_to_check(&params) {
                    if p.methods.contains(&name) {
                        if !p.can_check {
                            self.logs.lock().unwrap().push(LogLine {
                                level: "unusual".into(),
                                message: format!(
                                    "Plugin does not support check command for {name}"
                                ),
                            });
                            return Ok(json!({ "command_to_check": name }));
                        }
                        // Passed on as the caller wrote it (lightningd's
                        // plugin_rpcmethod_check), under the method `check`.
                        drop(turn.take());
                        return self.call_plugin(&p, id, "check", params).await;
                    }
                }
            }
            if p.methods.contains(&method) {
                drop(turn.take());
                return self.call_plugin(&p, id, &method, params).await;
            }
        }
        let raw = raw.unwrap_or_else(|| params.to_string());
        self.builtin(&method, params, &raw, batch, turn).await
    }

    /// A plugin method's answer, as lightningd relays it (the caller's id
    /// extended).
    async fn call_plugin(
        &self,
        p: &ActivePlugin,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("{}/cln:{method}#{seq}", id_text(id));
        match p.proc.request(&call_id, method, params).await {
            Ok(resp) => match (resp.get("result"), resp.get("error")) {
                (Some(r), _) => Ok(r.clone()),
                (_, Some(e)) => Err(e.clone()),
                _ => Err(json!({"code": -32603, "message": "bad plugin reply"})),
            },
            Err(_) => Err(
                json!({"code": -4, "message": "Plugin terminated before replying to RPC call."}),
            ),
        }
    }

    /// `raw`: `params` as the client wrote them, which lightningd's own
    /// parameter errors quote.
    async fn builtin(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        raw: &str,
        batch: Option<Arc<Batch>>,
        turn: Option<Turn>,
    ) -> Result<Value, Value> {
        let developer = self.opts.developer;
        let fail = |(c, m): params::Fail| json!({"code": c, "message": m});
        match method {
            "getinfo" => Ok(
                json!({"id": NODE_ID, "alias": "STANDIN", "color": "038194", "num_peers": 0,
                "num_pending_channels": 0, "num_active_channels": 0, "num_inactive_channels": 0,
                "address": [], "binding": [], "version": STANDIN_VERSION, "blockheight": 101,
                "network": "regtest", "fees_collected_msat": 0,
                "lightning-dir": self.dir.to_string_lossy(), "our_features": {}}),
            ),
            "listsendpays" => self.node_call_in(batch, |n| n.table.listsendpays(&params)),
            "batching" => Ok(json!({})),
            "wait" => {
                // A pending wait holds no transaction open, nor its turn.
                drop(batch);
                self.wait(&params, turn).await
            }
            "delpay" => self.node_call_in(batch, |n| {
                let (answer, gone) = n.table.delpay(raw, developer, false)?;
                n.save_parts(&gone);
                Ok(answer)
            }),
            "waitsendpay" => self.waitsendpay(raw, batch, turn).await,
            // Of the built-ins, `waitsendpay` and `delpay` are checked as
            // lightningd checks them; the others' parameters pass.
            "check" => {
                let Some((name, rest)) = check::split(&params) else {
                    return Err(json!({"code": -32602,
                        "message": "missing required parameter: command_to_check"}));
                };
                if name == "datastore" {
                    return self
                        .node_call_in(batch, |n| n.datastore_call("check datastore", &rest))
                        .map_err(fail);
                }
                let rest = rest.to_string();
                match name.as_str() {
                    "waitsendpay" => {
                        self.node_call_in(batch, |n| n.table.check_waitsendpay(&rest, developer))
                    }
                    "delpay" => self.node_call_in(batch, |n| {
                        n.table.delpay(&rest, developer, true).map(|(a, _)| a)
                    }),
                    _ => Ok(json!({ "command_to_check": name })),
                }
            }
            "datastore" | "listdatastore" | "deldatastore" | "datastoreusage" => self
                .node_call_in(batch, |n| n.datastore_call(method, &params))
                .map_err(fail),
            _ => Err(json!({"code": -32601, "message": format!("Unknown command '{method}'")})),
        }
    }

    async fn waitsendpay(
        &self,
        raw: &str,
        batch: Option<Arc<Batch>>,
        turn: Option<Turn>,
    ) -> Result<Value, Value> {
        // Subscribe before looking, so a resolution in between is seen.
        let mut events = self.events.subscribe();
        let waited = self.node_call_in(batch, |n| n.table.waitsendpay(raw, self.opts.developer));
        drop(turn);
        let (key, timeout) = match waited {
            Wait::Answer(a) => return a,
            Wait::Pending(k, t) => (k, t),
        };
        let wait = async {
            loop {
                match events.recv().await {
                    Ok((k, outcome)) if k == key => return outcome,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let p = self.node.lock().unwrap().table.get(&key).cloned();
                        match p {
                            Some(p) if p.status == Status::Complete => return Ok(p.listing()),
                            Some(p) if p.status == Status::Failed => return Err(p.stored_error()),
                            _ => {}
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(Duration::from_secs(t.into()), wait)
                .await
                .unwrap_or_else(|_| {
                    Err(json!({"code": 200, "message": "Timed out while waiting"}))
                }),
            None => wait.await,
        }
    }
}
