//! paystate's protocol wiring: the manifest, the handlers, and start-up.

use anyhow::Context;
use cln_plugin::{Builder, HookBuilder, HookFilter, Plugin, RpcMethodBuilder};
use paystate::app::App;
use paystate::commands::{self, COMMANDS};
use paystate::error::RpcError;
use paystate::ledger::Ledger;
use paystate::notifications::queue::{self, Queue, QUEUED_NOTIFICATIONS};
use paystate::notifications::Topic;
use paystate::options::{self, TAKEOVER};
use paystate::output::Shaped;
use paystate::params::Mode;
use paystate::release::Release;
use paystate::rpc::deletes;
use paystate::rpc::{self, Rpc};
use paystate::{catchup, hook, level, stop};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::SetOnce;

type Paystate = App<Arc<Rpc>, Arc<Rpc>>;

/// The handlers' state. The ledger is loaded after `init` is answered (any
/// RPC call before that could come back through paystate's own hook, which
/// is not served yet); handlers that need it wait for it.
struct Shared {
    app: SetOnce<Arc<Paystate>>,
    takeover: bool,
    notes: Queue,
}

impl Shared {
    async fn app(&self) -> &Arc<Paystate> {
        self.app.wait().await
    }

    /// Called by cln-plugin as it reads each notification, before it spawns
    /// a task for the handler (see [`queue`]).
    fn notify(&self, topic: Topic, params: Value) -> std::future::Ready<Result<(), anyhow::Error>> {
        self.notes.push(topic, params);
        std::future::ready(Ok(()))
    }
}

type State = Arc<Shared>;

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
    let release = Release::from_env();
    // The hook is declared where the release can limit it to paystate's
    // names, unless the environment turned takeover off (the option comes
    // too late to undeclare it).
    let hooked = release.has_hook_filters() && !options::takeover_off_in_env();
    let (stdin, stdout) = stdio();
    let mut builder = Builder::new(stdin, Shaped::new(stdout)).option(TAKEOVER);
    for c in COMMANDS.iter() {
        let name = c.name;
        builder = builder.rpcmethod_from_builder(
            RpcMethodBuilder::new(name, move |p: Plugin<State>, params: Value| async move {
                to_anyhow(commands::run(p.state().app().await, name, params).await)
            })
            .description(c.description)
            .usage(c.usage),
        );
    }
    // lightningd's `check` of a paystate command (the manifest says
    // `cancheck`, and lists no method of this name: output.rs).
    builder = builder.rpcmethod_from_builder(RpcMethodBuilder::new(
        commands::check::METHOD,
        |p: Plugin<State>, params: Value| async move {
            to_anyhow(commands::check::run(p.state().app().await, &params).await)
        },
    ));
    builder = builder
        .subscribe("sendpay_success", |p: Plugin<State>, params: Value| {
            p.state().notify(Topic::Success, params)
        })
        .subscribe("sendpay_failure", |p: Plugin<State>, params: Value| {
            p.state().notify(Topic::Failure, params)
        })
        // Subscribed, lightningd waits for paystate to exit (30 s at most)
        // instead of killing it: what is in hand is finished first.
        .subscribe("shutdown", |p: Plugin<State>, _: Value| async move {
            let shared = p.state().clone();
            if let Some(app) = shared.app.get() {
                let deadline = tokio::time::Instant::now() + stop::STOP_BOUND;
                let stopping = !app.node.accepting().await;
                if stopping {
                    // Calls may be dropped from here on (rpc/again.rs).
                    app.node.ask_again_until(deadline);
                }
                stop::stop(app, || shared.notes.all_recorded(), stopping, deadline).await;
            }
            // Give the last log lines time to reach lightningd.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            std::process::exit(0)
        });
    if hooked {
        let filters = hook::filters()
            .map(|m| HookFilter::Str(m.to_string()))
            .collect();
        builder = builder.hook_from_builder(
            HookBuilder::new(
                "rpc_command",
                |p: Plugin<State>, payload: Value| async move {
                    if hook::passes_through(&payload, p.state().takeover) {
                        return Ok(hook::continue_reply());
                    }
                    Ok(hook::handle(p.state().app().await, &payload).await)
                },
            )
            .filters(filters),
        );
    }
    let configured = match builder.dynamic().configure().await {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(()), // lightningd --help
        // Run by hand, or by reckless to see that it starts: not an error.
        Err(e) if release.name.is_none() => {
            eprintln!(
                "paystate is a Core Lightning plugin ({e}): load it with \
                 `lightningd --plugin=PATH` or `lightning-cli plugin start PATH`"
            );
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let takeover = configured.option(&TAKEOVER)? && hooked;
    let mode = Mode::from_args(std::env::args()).with_numbers(release.numbers());
    let config = configured.configuration();
    let socket = rpc::socket_path(Path::new(&config.rpc_file))
        .with_context(|| format!("reaching lightningd's socket {}", config.rpc_file))?;
    let rpc = Arc::new(Rpc::new(socket));

    let (notes, queued) = queue::queue(QUEUED_NOTIFICATIONS);
    let shared: State = Arc::new(Shared {
        app: SetOnce::new(),
        takeover,
        notes,
    });
    let taker = shared.clone();
    tokio::spawn(async move { queued.run(taker.app().await.clone()).await });
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

    // An earlier layout's records move in the background, catch-up's
    // first step.
    let (ledger, interrupted) = match Ledger::load(rpc.clone()).await {
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
    // The level mark is taken at every start (a crash later must find
    // none), and used only at lightningd's own start: a `plugin start`
    // follows a time when lightningd ran without paystate.
    let level = match level::take(ledger.datastore()).await {
        Ok(l) => l.filter(|_| config.startup),
        Err(e) => {
            log::warn!("Cannot read the level mark: {} ({})", e.message, e.code);
            None
        }
    };
    let mut app = App::new(ledger, rpc.clone(), takeover, mode);
    app.calls = rpc.stats.clone();
    app.hook = hooked;
    app.release = release.name.clone();
    let _ = shared.app.set(Arc::new(app));
    let release_name = release.name.as_deref().unwrap_or("an unknown release");
    if hooked {
        log::info!(
            "paystate started on {release_name}: takeover {}, {mode:?} mode; the index loads in the background",
            if takeover { "on" } else { "off" }
        );
    } else if release.has_hook_filters() {
        log::info!(
            "paystate started on {release_name}: takeover off by {}=false (no hook declared): \
             the paystate-* names only, {mode:?} mode",
            options::TAKEOVER_ENV
        );
    } else {
        log::info!(
            "paystate started on {release_name}: takeover unavailable (its rpc_command hook has no filters, \
             and would see every command of the node): the paystate-* names only, {mode:?} mode"
        );
    }

    // The node's deletes, followed from now on; then catch-up, which
    // reconciles what happened before.
    let follower = shared.clone();
    let follow_rpc = rpc.clone();
    let from = level.map(|l| l.deleted);
    tokio::spawn(async move { deletes::follow(follower.app().await, follow_rpc, from).await });
    let catchup = shared.clone();
    tokio::spawn(async move { catchup::run(catchup.app().await, interrupted, level).await });

    let done = joined.await;
    // Queued writes go before leaving (what a crash would lose instead
    // is imported again at the next start).
    if let Some(app) = shared.app.get() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), app.ledger.flush()).await;
    }
    // Leave at once: tearing the runtime down while tasks still log makes
    // cln-plugin's log writer panic.
    std::process::exit(if done.is_ok() { 0 } else { 1 })
}
