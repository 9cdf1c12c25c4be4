//! The RPC socket's listening end as lightningd has it: a listen queue of
//! 128 (`lightningd/jsonrpc.c`, `listen(fd, 128)`), connections accepted
//! only while the node is free to (a busy lightningd accepts none, so a
//! burst of connects meets a full queue: EAGAIN), and the connections
//! open counted, so tests can bound what a plugin holds.

use anyhow::{Context, Result};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// lightningd's listen queue on its RPC socket.
pub const BACKLOG: i32 = 128;

/// What the accepting end shares with the node's handle.
#[derive(Debug)]
pub struct Gate {
    accepting: watch::Sender<bool>,
    open: AtomicU64,
    most: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            accepting: watch::Sender::new(true),
            open: AtomicU64::new(0),
            most: AtomicU64::new(0),
        }
    }
}

impl Gate {
    /// Stops (false) or resumes (true) accepting connections.
    pub fn accept(&self, on: bool) {
        self.accepting.send_replace(on);
    }

    /// Connections open now, and the most open at once so far.
    pub fn open(&self) -> (u64, u64) {
        (
            self.open.load(Ordering::SeqCst),
            self.most.load(Ordering::SeqCst),
        )
    }
}

/// Counts a connection open until dropped.
pub struct Counted(Arc<Gate>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Binds `path` with lightningd's listen queue.
pub fn bind(path: &Path, backlog: i32) -> Result<UnixListener> {
    let listener = UnixListener::bind(path).context("binding the RPC socket")?;
    // A second listen() on a listening socket sets its queue's length.
    // SAFETY: a valid listening socket's descriptor, owned by `listener`.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } != 0 {
        return Err(std::io::Error::last_os_error()).context("setting the listen queue");
    }
    Ok(listener)
}

/// Accepts while the gate is open, each connection counted.
pub async fn accept(
    listener: &UnixListener,
    gate: &Arc<Gate>,
) -> std::io::Result<(UnixStream, Counted)> {
    let mut on = gate.accepting.subscribe();
    on.wait_for(|on| *on)
        .await
        .map_err(|_| std::io::Error::other("gate gone"))?;
    let (stream, _) = listener.accept().await?;
    let n = gate.open.fetch_add(1, Ordering::SeqCst) + 1;
    gate.most.fetch_max(n, Ordering::SeqCst);
    Ok((stream, Counted(gate.clone())))
}
