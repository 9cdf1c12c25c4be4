//! The commands paystate answers, one module each, and the one table that
//! serves both the plugin methods and the `rpc_command` hook. Each command
//! parses its params in lightningd's style and answers with lightningd's
//! result or error.

pub mod check;
pub mod delpay;
pub mod failures;
pub mod listpays;
pub mod listsendpays;
pub mod status;
pub mod waitanysendpay;
pub mod waitpay;
pub mod waitsendpay;

use crate::app::App;
use crate::domain::PartKey;
use crate::error::{codes, RpcError};
use crate::node::Node;
use crate::store::Datastore;
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// What a command does: the one `match` that runs it is exhaustive, so a
/// command in the table cannot lack its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WaitSendPay,
    WaitPay,
    WaitAnySendPay,
    DelPay,
    ListSendPays,
    ListPays,
    Failures,
    Status,
}

pub struct Command {
    pub kind: Kind,
    /// paystate's own name for it.
    pub name: &'static str,
    /// The built-in it answers for when taken over (through the hook).
    pub takes_over: Option<&'static str>,
    pub usage: &'static str,
    pub description: &'static str,
}

/// Every command. `delpay` is not taken over: any hook on it forfeits
/// autoclean's batched commits (lightningd runs a hooked command in a
/// transaction of its own), and the built-in's answers are lightningd's
/// own; the ledger follows whatever it deletes.
pub const COMMANDS: [Command; 8] = [
    Command {
        kind: Kind::WaitSendPay,
        name: "paystate-waitsendpay",
        takes_over: Some("waitsendpay"),
        usage: "payment_hash [timeout] [partid] [groupid]",
        description:
            "Wait for the outcome of a payment part (waitsendpay, served from paystate's ledger)",
    },
    Command {
        kind: Kind::WaitPay,
        name: "paystate-waitpay",
        takes_over: None,
        usage: "payment_hash [timeout] [groupid]",
        description: "Wait until a whole payment (a hash and group) is no longer pending; answer with its listpays entry",
    },
    Command {
        kind: Kind::WaitAnySendPay,
        name: "paystate-waitanysendpay",
        takes_over: None,
        usage: "[lastpay_index] [timeout]",
        description: "Wait for the first payment part resolved past updated_index lastpay_index (default: from now on); answer with it and, if it failed, waitsendpay's error",
    },
    Command {
        kind: Kind::DelPay,
        name: "paystate-delpay",
        takes_over: None,
        usage: "payment_hash status [partid] [groupid]",
        description:
            "Delete complete or failed payment parts from the node and paystate's ledger (delpay)",
    },
    Command {
        kind: Kind::ListSendPays,
        name: "paystate-listsendpays",
        takes_over: None,
        usage: "[payment_hash] [status] [index] [start] [limit]",
        description: "List the terminal parts in paystate's ledger, as the node has them; pages by index (created or updated), start and limit",
    },
    Command {
        kind: Kind::ListPays,
        name: "paystate-listpays",
        takes_over: None,
        usage: "[payment_hash] [status] [index] [start] [limit] [reverse]",
        description: "List whole payments (a hash and group), each as listpays shows it, paged by payment (index created: its first part; updated: its last update), oldest first or reverse",
    },
    Command {
        kind: Kind::Failures,
        name: "paystate-failures",
        takes_over: None,
        usage: "[since] [until] [by]",
        description: "Failed parts of [since, until) (UNIX seconds; default the last 24 hours) counted by channel, node or failcode, from paystate's ledger",
    },
    Command {
        kind: Kind::Status,
        name: "paystate-status",
        takes_over: None,
        usage: "",
        description: "Ledger counts, waiters, layout version, takeover and last catch-up",
    },
];

/// The command a name calls: paystate's own, or a built-in taken over.
pub fn named(method: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == method || c.takes_over == Some(method))
}

/// Runs a command of [`COMMANDS`] by its name (or the built-in's).
pub async fn run<D: Datastore, N: Node>(
    app: &App<D, N>,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let Some(command) = named(method) else {
        return Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("Unknown command '{method}'"),
        ));
    };
    match command.kind {
        // Boxed: a waiting call holds only its own command's state.
        Kind::WaitSendPay => Box::pin(waitsendpay::run(app, params)).await,
        Kind::WaitPay => Box::pin(waitpay::run(app, params)).await,
        Kind::WaitAnySendPay => Box::pin(waitanysendpay::run(app, params)).await,
        Kind::DelPay => Box::pin(delpay::run(app, params)).await,
        Kind::ListSendPays => Box::pin(listsendpays::run(app, &params)).await,
        Kind::ListPays => Box::pin(listpays::run(app, &params)).await,
        Kind::Failures => Box::pin(failures::run(app, &params)).await,
        Kind::Status => Ok(status::run(app)),
    }
}

/// lightningd's answer to a wait that ran out of time.
pub(crate) fn timed_out() -> RpcError {
    RpcError::new(codes::PAY_IN_PROGRESS, "Timed out while waiting")
}

/// When a wait of `timeout` seconds from now ends (`None`: never).
pub(crate) fn deadline(timeout: Option<u32>) -> Option<Instant> {
    timeout.map(|s| Instant::now() + Duration::from_secs(s.into()))
}

/// `wait` until `deadline`, or 200 `Timed out while waiting`.
pub(crate) async fn until<T>(
    deadline: Option<Instant>,
    wait: impl std::future::Future<Output = T>,
) -> Result<T, RpcError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, wait)
            .await
            .map_err(|_| timed_out()),
        None => Ok(wait.await),
    }
}

pub(crate) fn never_attempted(key: &PartKey) -> RpcError {
    RpcError::new(
        codes::PAY_NO_SUCH_PAYMENT,
        format!(
            "Never attempted payment part {} for '{}'",
            key.partid, key.payment_hash
        ),
    )
}
