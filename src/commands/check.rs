//! `check <command_to_check> [parameters]` for paystate's commands: the
//! command's parameters checked as the command itself checks them, and
//! nothing run. lightningd passes `check` on to a plugin whose manifest
//! says `cancheck` (`lightningd/plugin.c`, `plugin_rpcmethod_check`), as
//! the caller wrote it: `command_to_check` first (positional) or by name,
//! the command's own parameters beside it. Its answer, as lightningd's own
//! checks give it: `{"command_to_check": name}`, or the parameter error.
//! `paystate-delpay` is the built-in `delpay` and its ledger: past its
//! parameters, its check is the built-in's (which looks the parts up,
//! read-only), asked of the node.

use super::{named, Kind};
use crate::app::App;
use crate::error::{codes, RpcError};
use crate::node::Node;
use crate::store::Datastore;
use serde_json::{json, Value};

/// The name paystate declares the method under (cln-plugin routes the
/// request by it; the manifest does not list it: `output.rs`).
pub const METHOD: &str = "check";

pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    params: &Value,
) -> Result<Value, RpcError> {
    let mode = app.mode;
    let (name, rest) = split(params)?;
    let Some(command) = named(&name) else {
        return Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("Unknown command '{name}'"),
        ));
    };
    match command.kind {
        Kind::WaitSendPay => super::waitsendpay::parse(&rest, mode).map(drop),
        Kind::WaitPay => super::waitpay::parse(&rest, mode).map(drop),
        Kind::WaitAnySendPay => super::waitanysendpay::parse(&rest, mode).map(drop),
        Kind::DelPay => {
            // Its parameters as paystate-delpay reads them (a bad token
            // quoted as it quotes them), then the built-in's lookups.
            super::delpay::parse(&rest, mode)?;
            let answer = app.node.check_builtin(with_name(&rest, "delpay")).await??;
            if answer != json!({"command_to_check": "delpay"}) {
                return Err(RpcError::lightningd(format!(
                    "lightningd answered check delpay with {answer}"
                )));
            }
            Ok(())
        }
        Kind::ListSendPays => super::listsendpays::parse(&rest, mode).map(drop),
        Kind::ListPays => super::listpays::parse(&rest, mode).map(drop),
        Kind::Failures => super::failures::parse(&rest, mode, 0).map(drop),
        // It reads no parameter.
        Kind::Status => Ok(()),
    }?;
    Ok(json!({ "command_to_check": name }))
}

/// `rest` with `command_to_check` `name`, in its form.
fn with_name(rest: &Value, name: &str) -> Value {
    match rest {
        Value::Object(m) => {
            let mut m = m.clone();
            m.insert("command_to_check".into(), json!(name));
            Value::Object(m)
        }
        Value::Array(items) => {
            let mut all = vec![json!(name)];
            all.extend(items.iter().cloned());
            Value::Array(all)
        }
        other => other.clone(),
    }
}

/// `command_to_check` and the command's own parameters, in the form the
/// caller gave them.
fn split(params: &Value) -> Result<(String, Value), RpcError> {
    let missing = || RpcError::invalid_params("missing required parameter: command_to_check");
    match params {
        Value::Array(items) => {
            let name = items.first().and_then(Value::as_str).ok_or_else(missing)?;
            Ok((name.to_string(), Value::Array(items[1..].to_vec())))
        }
        Value::Object(members) => {
            let mut rest = members.clone();
            let name = rest.shift_remove("command_to_check");
            let name = name.as_ref().and_then(Value::as_str).ok_or_else(missing)?;
            Ok((name.to_string(), Value::Object(rest)))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeDatastore, FakeNode};
    use crate::ledger::Ledger;
    use crate::params::Mode;
    use std::sync::Arc;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";

    async fn app() -> App<Arc<FakeDatastore>, Arc<FakeNode>> {
        let ds = Arc::new(FakeDatastore::default());
        let (ledger, _) = Ledger::load(ds).await.unwrap();
        App::new(
            ledger,
            Arc::new(FakeNode::default()),
            false,
            Mode::DEVELOPER,
        )
    }

    #[tokio::test]
    async fn good_parameters_name_the_command() {
        let app = app().await;
        for p in [
            json!(["paystate-waitsendpay", H, 5]),
            json!({"command_to_check": "paystate-waitsendpay", "payment_hash": H}),
        ] {
            assert_eq!(
                run(&app, &p).await.unwrap(),
                json!({"command_to_check": "paystate-waitsendpay"})
            );
        }
        assert!(run(&app, &json!(["paystate-status"])).await.is_ok());
    }

    #[tokio::test]
    async fn bad_parameters_are_the_commands_own_error() {
        let app = app().await;
        for p in [
            json!(["paystate-waitsendpay", H, "x"]),
            json!(["paystate-waitpay"]),
            json!({"command_to_check": "paystate-listsendpays", "start": 5}),
            json!(["paystate-waitanysendpay", "y"]),
        ] {
            let e = run(&app, &p).await.unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS, "{p}: {e:?}");
        }
        let e = run(&app, &json!({})).await.unwrap_err();
        assert_eq!(e.message, "missing required parameter: command_to_check");
    }

    #[test]
    fn the_name_goes_back_in_the_callers_form() {
        let (name, rest) = split(&json!(["paystate-delpay", H, "complete"])).unwrap();
        assert_eq!(name, "paystate-delpay");
        assert_eq!(with_name(&rest, "delpay"), json!(["delpay", H, "complete"]));
        let (_, rest) = split(&json!({"command_to_check": "x", "status": "failed"})).unwrap();
        assert_eq!(
            with_name(&rest, "delpay"),
            json!({"status": "failed", "command_to_check": "delpay"})
        );
    }
}
