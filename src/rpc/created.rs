//! One watch of the node's `created` index for every caller that asks
//! [`Node::next_created`](crate::node::Node::next_created): a single `wait`
//! on `sendpays`/`created` pending at a time, on one connection, however
//! many `paystate-waitpay` callers wait (a watch each cost a socket each,
//! and a burst of them filled lightningd's listen queue). The moves it
//! saw are kept in a short ring, so a caller that was not looking still
//! learns which part moved the index by one; past the ring, or where the
//! node gave only the number, the move is answered without its part (the
//! caller reads the node then).

use super::waits::{self, Event};
use super::{request, Conn, Rpc, INTERNAL_ID_PREFIX};
use crate::domain::PartKey;
use crate::error::RpcError;
use crate::node::Created;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Moves kept for callers behind: a bounded few KB.
const RING: usize = 256;

/// Wait before reopening the watch after its connection failed.
const REOPEN: Duration = Duration::from_millis(100);

/// One move of the index: from `from` (exclusive) to `to`; `part` where
/// the node named the one part created (`to == from + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Move {
    from: u64,
    to: u64,
    part: Option<PartKey>,
}

/// What the watch has seen: where it began, its ring and, if the node
/// refused the `wait`, its error (every caller gets it).
#[derive(Debug, Default)]
struct Seen {
    /// The index the watch began after (its first caller's).
    start: u64,
    moves: VecDeque<Move>,
    refused: Option<RpcError>,
}

impl Seen {
    /// The move that follows `after`, if the watch has seen past it.
    fn after(&self, after: u64) -> Option<Created> {
        // A caller behind the watch's start: parts were created since its
        // read, which the watch never saw.
        if after < self.start {
            return Some(Created {
                index: self.start,
                part: None,
            });
        }
        let last = self.moves.back()?;
        if last.to <= after {
            return None;
        }
        // The move that covers `after + 1`; behind the ring: its end only.
        let m = self
            .moves
            .iter()
            .find(|m| m.from <= after && after < m.to)
            .unwrap_or(last);
        let named = m.from == after && m.to == after + 1;
        Some(Created {
            index: m.to,
            part: m.part.filter(|_| named),
        })
    }

    fn push(&mut self, m: Move) {
        if self.moves.len() == RING {
            self.moves.pop_front();
        }
        self.moves.push_back(m);
    }
}

/// The shared watch: started by the first caller, ended when the last
/// caller has gone (its pending `wait` is dropped with it).
#[derive(Default)]
pub struct CreatedWatch {
    slot: Arc<Mutex<Option<watch::Sender<Seen>>>>,
}

impl Rpc {
    /// The node's next part after `created_index` `after`, from the shared
    /// watch.
    pub(super) async fn watch_created(&self, after: u64) -> Result<Created, RpcError> {
        let mut rx = {
            let mut slot = lock(&self.created.slot);
            match slot.as_ref() {
                Some(tx) => tx.subscribe(),
                None => {
                    let (tx, rx) = watch::channel(Seen {
                        start: after,
                        ..Seen::default()
                    });
                    let slot_of_task = self.created.slot.clone();
                    tokio::spawn(run(
                        self.path().to_path_buf(),
                        slot_of_task,
                        tx.clone(),
                        after,
                    ));
                    *slot = Some(tx);
                    rx
                }
            }
        };
        loop {
            {
                let seen = rx.borrow_and_update();
                if let Some(e) = &seen.refused {
                    return Err(e.clone());
                }
                if let Some(c) = seen.after(after) {
                    return Ok(c);
                }
            }
            rx.changed()
                .await
                .map_err(|_| RpcError::lightningd("paystate's watch of created parts ended"))?;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The watch itself: one `wait` at a time for the index's next value,
/// from `after` on, until no caller is left (checked under the slot's
/// lock, so a caller arriving as the last one leaves is never stranded)
/// or the node refuses (every caller is told, the next one starts anew).
async fn run(
    path: PathBuf,
    slot: Arc<Mutex<Option<watch::Sender<Seen>>>>,
    tx: watch::Sender<Seen>,
    after: u64,
) {
    let ids = AtomicU64::new(1);
    let mut at = after;
    let mut conn: Option<Conn> = None;
    loop {
        let step = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(Conn::open(&path).await?),
            };
            let id = format!(
                "{INTERNAL_ID_PREFIX}created-watch:{}",
                ids.fetch_add(1, Ordering::Relaxed)
            );
            c.send(&request(&id, "wait", &waits::params("created", at + 1)))
                .await?;
            // The outer error: the connection failed; the inner: the answer.
            let envelope = c.answer::<Value>().await?;
            Ok::<_, RpcError>(
                envelope
                    .outcome("wait")
                    .and_then(|a| a)
                    .and_then(|a| Event::of(&a, "created")),
            )
        };
        let outcome = tokio::select! {
            o = step => o,
            () = tx.closed() => {
                let mut s = lock(&slot);
                if tx.receiver_count() == 0 {
                    *s = None;
                    return;
                }
                // A caller came as the last one left: the wait is sent again.
                conn = None;
                continue;
            }
        };
        match outcome {
            Ok(Ok(e)) if e.value > at => {
                tx.send_modify(|s| {
                    s.push(Move {
                        from: at,
                        to: e.value,
                        part: e.part.map(|(k, _)| k),
                    })
                });
                at = e.value;
            }
            Ok(Ok(e)) => {
                log::warn!(
                    "lightningd answered a wait for created {} with {}",
                    at + 1,
                    e.value
                );
                tokio::time::sleep(REOPEN).await;
            }
            // The connection failed: a new one, after a pause.
            Err(e) => {
                log::debug!("The watch of created parts reopens: {}", e.message);
                conn = None;
                tokio::time::sleep(REOPEN).await;
            }
            // The node said no, or answered what paystate cannot read:
            // nothing a retry would change.
            Ok(Err(e)) => {
                let mut s = lock(&slot);
                tx.send_modify(|seen| seen.refused = Some(e));
                *s = None;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> PartKey {
        PartKey {
            payment_hash: "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5"
                .parse()
                .unwrap(),
            groupid: 1,
            partid: n,
        }
    }

    #[test]
    fn a_caller_behind_learns_each_named_move_in_turn() {
        let mut s = Seen::default();
        assert_eq!(s.after(4), None);
        s.push(Move {
            from: 4,
            to: 5,
            part: Some(key(5)),
        });
        s.push(Move {
            from: 5,
            to: 8,
            part: None,
        });
        s.push(Move {
            from: 8,
            to: 9,
            part: Some(key(9)),
        });
        let c = s.after(4).unwrap();
        assert_eq!((c.index, c.part), (5, Some(key(5))));
        // Inside a move of several parts: its end, no part.
        assert_eq!(
            s.after(6).unwrap(),
            Created {
                index: 8,
                part: None
            }
        );
        assert_eq!(s.after(8).unwrap().part, Some(key(9)));
        assert_eq!(s.after(9), None);
        // Behind the ring: the last move's end, no part.
        assert_eq!(
            s.after(1).unwrap(),
            Created {
                index: 9,
                part: None
            }
        );
    }

    #[test]
    fn a_caller_behind_the_watchs_start_reads_at_once() {
        let s = Seen {
            start: 10,
            ..Seen::default()
        };
        assert_eq!(
            s.after(7).unwrap(),
            Created {
                index: 10,
                part: None
            }
        );
        assert_eq!(s.after(10), None);
    }

    #[test]
    fn the_ring_is_bounded() {
        let mut s = Seen::default();
        for i in 0..(RING as u64 * 3) {
            s.push(Move {
                from: i,
                to: i + 1,
                part: Some(key(i)),
            });
        }
        assert_eq!(s.moves.len(), RING);
        assert_eq!(s.after(0).unwrap().part, None);
    }
}
