//! paystate's protocol wiring: the manifest, the handlers, and start-up.

use anyhow::Context;
use cln_plugin::options::{ConfigOption, DefaultBooleanConfigOption};
use cln_plugin::{Builder, HookBuilder, HookFilter, Plugin};
use paystate::app::App;
use paystate::commands::{delpay, listsendpays, status, waitsendpay};
use paystate::error::RpcError;
use paystate::ledger::Ledger;
use paystate::notifications::{self, Topic};
use paystate::params::Mode;
use paystate::rpc::{self, Rpc};
use paystate::{catchup, handover, hook, migrate};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::SetOnce;

type Paystate = App<Arc<Rpc>, Arc<Rpc>>;

/// The handlers' state. The ledger is loaded after `init` is answered (any
/// RPC call before that could come back through paystate's own hook, which
/// is not served yet); handlers that need it wait for it.
struct Shared {
    app: SetOnce<Paystate>,
    takeover: bool,
}

impl Shared {
    async fn app(&self) -> &Paystate {
        self.app.wait().await
    }
}

type State = Arc<Shared>;

const TAKEOVER: DefaultBooleanConfigOption = ConfigOption::new_bool_with_default(
    "paystate-takeover",
    true,
    "Answer lightningd's own waitsendpay and delpay (through the rpc_command hook)",
);

fn to_anyhow(r: Result<Value, RpcError>) -> Result<Value, anyhow::Error> {
    // cln-plugin parses the error's display form back into {code, message, data}.
    r.map_err(anyhow::Error::new)
}

type Input = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Output = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// lightningd talks to a plugin over pipes: read and write them as
/// non-blocking pipes in the runtime's own event loop, rather than through
/// tokio's stdin/stdout, which hop every read and write to a blocking
/// thread. Anything else (a terminal, a file) falls back to those.
fn stdio() -> (Input, Output) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let input: Input = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(anyhow::Error::from)
        .and_then(|fd| Ok(pipe::Receiver::from_owned_fd(fd)?))
    {
        Ok(rx) => Box::new(rx),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Output = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(anyhow::Error::from)
        .and_then(|fd| Ok(pipe::Sender::from_owned_fd(fd)?))
    {
        Ok(tx) => Box::new(tx),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filters = hook::filters()
        .map(|m| HookFilter::Str(m.to_string()))
        .collect();
    let (stdin, stdout) = stdio();
    let builder = Builder::new(stdin, stdout)
        .option(TAKEOVER)
        .rpcmethod(
            "paystate-waitsendpay",
            "Wait for the outcome of a payment part (waitsendpay, served from paystate's ledger)",
            |p: Plugin<State>, params: Value| async move { to_anyhow(waitsendpay::run(p.state().app().await, params).await) },
        )
        .rpcmethod(
            "paystate-delpay",
            "Delete complete or failed payment parts from paystate's ledger and the node (delpay)",
            |p: Plugin<State>, params: Value| async move { to_anyhow(delpay::run(p.state().app().await, params).await) },
        )
        .rpcmethod(
            "paystate-listsendpays",
            "List the parts in paystate's ledger [payment_hash] [status]",
            |p: Plugin<State>, params: Value| async move { to_anyhow(listsendpays::run(p.state().app().await, &params).await) },
        )
        .rpcmethod(
            "paystate-status",
            "Ledger counts, waiters, layout version, takeover and last catch-up",
            |p: Plugin<State>, _params: Value| async move { Ok(status::run(p.state().app().await)) },
        )
        .subscribe("sendpay_success", |p: Plugin<State>, params: Value| async move {
            notifications::handle(p.state().app().await, Topic::Success, &params).await;
            Ok(())
        })
        .subscribe("sendpay_failure", |p: Plugin<State>, params: Value| async move {
            notifications::handle(p.state().app().await, Topic::Failure, &params).await;
            Ok(())
        })
        .hook_from_builder(
            HookBuilder::new("rpc_command", |p: Plugin<State>, payload: Value| async move {
                if hook::passes_through(&payload, p.state().takeover) {
                    return Ok(hook::continue_reply());
                }
                Ok(hook::handle(p.state().app().await, &payload).await)
            })
            .filters(filters),
        )
        .dynamic();

    let Some(configured) = builder.configure().await? else {
        return Ok(()); // lightningd --help
    };
    let takeover = configured.option(&TAKEOVER)?;
    let mode = Mode::from_args(std::env::args());
    let config = configured.configuration();
    let socket = rpc::socket_path(Path::new(&config.rpc_file))
        .with_context(|| format!("reaching lightningd's socket {}", config.rpc_file))?;
    let rpc = Arc::new(Rpc::new(socket));

    let shared: State = Arc::new(Shared {
        app: SetOnce::new(),
        takeover,
    });
    let plugin = configured
        .start(shared.clone())
        .await
        .context("starting the plugin")?;
    // cln-plugin announces the end of its loop (stdin closed: `plugin stop`)
    // only to those already waiting: start waiting now, before the ledger
    // loads, or a stop during loading would go unheard.
    let joined = plugin.join();
    tokio::pin!(joined);
    tokio::select! {
        biased;
        _ = &mut joined => std::process::exit(0),
        _ = std::future::ready(()) => {}
    }

    let loaded = match migrate::from_v1(&rpc).await {
        Ok(_) => Ledger::load(rpc.clone()).await,
        Err(e) => Err(e),
    };
    let (ledger, interrupted) = match loaded {
        Ok(l) => l,
        Err(e) => {
            log::error!(
                "Cannot load the ledger from the datastore: {} ({}); stopping",
                e.message,
                e.code
            );
            // Give the log line time to reach lightningd.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            anyhow::bail!("cannot load the ledger: {e}");
        }
    };
    let mut app = App::new(ledger, rpc.clone(), takeover, mode);
    app.calls = rpc.stats.clone();
    app.unread = handover::stdout_unread;
    let _ = shared.app.set(app);
    log::info!(
        "paystate started: takeover {}, {mode:?} mode; the index loads in the background",
        if takeover { "on" } else { "off" }
    );

    // Catch-up calls the built-in waitsendpay, which passes through our own
    // hook: served now that init is answered and the loop runs.
    let catchup = shared.clone();
    tokio::spawn(async move { catchup::run(catchup.app().await, interrupted).await });

    let done = joined.await;
    // Leave at once: tearing the runtime down while tasks still log makes
    // cln-plugin's log writer panic. Nothing is lost by not unwinding:
    // every datastore write is one atomic call, and start-up finishes or
    // re-imports whatever was under way.
    std::process::exit(if done.is_ok() { 0 } else { 1 })
}
