//! Whole payments a page at a time (`paystate-listpays`), no page cutting
//! a payment in two. A payment (a hash and a group) is placed by its first
//! part's `created_index`, or by its last part's `updated_index` (ties by
//! the first). `listpays` aggregates one page of *parts*, so its amounts
//! and part counts "may be lower"; paystate reads a window of the node's
//! table to find which payments a page holds, then each of them whole by
//! its hash (one round trip for the page), unless the window was the
//! whole table.

use super::entry;
use crate::domain::{Payment, Status};
use crate::error::RpcError;
use crate::node::{Index, Node, Page};
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Rows of the node's table read a round trip: at least this many, at
/// most [`MOST_ROWS`].
const ROWS: u32 = 128;
const MOST_ROWS: u32 = 4096;

/// What a page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// `Created` or `Updated` (`Deleted` orders as `Created`, as in
    /// `listsendpays`).
    pub index: Index,
    /// Forward: payments placed at `start` or later; reverse: at `start`
    /// or earlier (default: the newest).
    pub start: Option<u64>,
    pub limit: Option<u32>,
    pub reverse: bool,
    pub status: Option<Status>,
}

/// A payment's place: in the index's order, then its first part's.
type Place = (u64, u64);
type Id = (Sha256, u64);

/// The order an index gives (`Deleted` orders as `Created`).
fn order(index: Index) -> Index {
    match index {
        Index::Updated => Index::Updated,
        _ => Index::Created,
    }
}

fn place(index: Index, parts: &[Payment]) -> Place {
    let created = parts.iter().map(|p| p.created_index).min().unwrap_or(0);
    match index {
        Index::Updated => (
            parts
                .iter()
                .filter_map(|p| p.updated_index)
                .max()
                .unwrap_or(0),
            created,
        ),
        _ => (created, created),
    }
}

/// Where a row sits in the index's order (a part never updated: 0).
fn at(index: Index, p: &Payment) -> u64 {
    index.of(p).unwrap_or(0)
}

/// The payments known so far: rows seen in the windows read, and
/// payments read whole by their hash.
#[derive(Default)]
struct Known {
    seen: HashMap<Id, Vec<Payment>>,
    whole: HashMap<Id, Vec<Payment>>,
    hashes_read: HashSet<Sha256>,
}

impl Known {
    fn add_row(&mut self, row: Payment) {
        if self.hashes_read.contains(&row.payment_hash) {
            return;
        }
        let rows = self
            .seen
            .entry((row.payment_hash, row.groupid))
            .or_default();
        if !rows.iter().any(|r| r.created_index == row.created_index) {
            rows.push(row);
        }
    }

    /// A hash's parts, read whole: its payments replace what was seen.
    fn add_hash(&mut self, hash: Sha256, mut rows: Vec<Payment>) {
        self.hashes_read.insert(hash);
        self.seen.retain(|(h, _), _| *h != hash);
        rows.sort_by_key(|p| p.created_index);
        for row in rows {
            self.whole
                .entry((row.payment_hash, row.groupid))
                .or_default()
                .push(row);
        }
    }

    fn parts(&self, id: &Id) -> &[Payment] {
        self.whole
            .get(id)
            .or_else(|| self.seen.get(id))
            .map_or(&[], |v| v)
    }

    /// The payments placed in `[lo, hi]`, in the page's order.
    fn placed(&self, index: Index, lo: u64, hi: u64, reverse: bool) -> Vec<(Place, Id)> {
        let mut v: Vec<(Place, Id)> = self
            .whole
            .keys()
            .chain(self.seen.keys())
            .map(|id| (place(index, self.parts(id)), *id))
            .filter(|((p, _), _)| lo <= *p && *p <= hi)
            .collect();
        v.sort();
        if reverse {
            v.reverse();
        }
        v
    }
}

/// One page of whole payments, each as `listpays` shows it.
pub async fn page<N: Node>(node: &N, q: Query) -> Result<Vec<Value>, RpcError> {
    let index = order(q.index);
    let want = q.limit.map(|l| l as usize);
    if want == Some(0) {
        return Ok(Vec::new());
    }
    let rows = want.map_or(MOST_ROWS, |w| (2 * w as u32).clamp(ROWS, MOST_ROWS));
    let mut known = Known::default();
    // The window read so far, `[lo, hi]` in the index's order.
    let (mut lo, mut hi);
    let top = match (q.reverse, q.start) {
        (false, _) => 0,
        (true, Some(s)) => s,
        (true, None) => match index {
            Index::Updated => node.parts_updated().await?,
            _ => node.parts_created().await?,
        },
    };
    if q.reverse {
        hi = top;
        lo = hi.saturating_add(1);
    } else {
        lo = q.start.unwrap_or(0);
        hi = lo;
    }
    let mut width = u64::from(rows);
    let mut first = true;
    loop {
        // The next window of the node's table.
        let done;
        if q.reverse {
            let from = lo.saturating_sub(width);
            // Read on to the window's end: parts never updated all sit at
            // `updated_index` 0.
            let mut next = from;
            loop {
                let got = node
                    .page(Page {
                        index,
                        start: next,
                        limit: rows,
                        status: None,
                    })
                    .await?;
                let full = got.len() == rows as usize;
                let last = got.last().map(|r| at(index, r));
                for row in got {
                    if at(index, &row) < lo && at(index, &row) <= top {
                        known.add_row(row);
                    }
                }
                match last {
                    Some(l) if full && l.saturating_add(1) < lo => next = l + 1,
                    _ => break,
                }
            }
            lo = from;
            done = from == 0;
            width = (width * 2).min(u64::from(MOST_ROWS));
        } else {
            let from = if first { lo } else { hi.saturating_add(1) };
            let got = node
                .page(Page {
                    index,
                    start: from,
                    limit: rows,
                    status: None,
                })
                .await?;
            done = got.len() < rows as usize;
            hi = got
                .last()
                .map_or(if first { from } else { hi }, |r| at(index, r));
            if done {
                hi = u64::MAX;
            }
            for row in got {
                known.add_row(row);
            }
        }
        first = false;
        // The whole table read: every payment is known whole.
        let whole_table = done && lo == 0 && (!q.reverse || q.start.is_none());
        // The payments this window places, in order; the first `want` of
        // them (those passing `status`) are the page, once each is known
        // whole and still placed in the window.
        loop {
            let placed = known.placed(index, lo, hi, q.reverse);
            let mut page = Vec::new();
            let mut unread = Vec::new();
            for (_, id) in &placed {
                if want.is_some_and(|w| page.len() + unread.len() >= w) {
                    break;
                }
                if !whole_table && !known.hashes_read.contains(&id.0) {
                    if !unread.contains(&id.0) {
                        unread.push(id.0);
                    }
                    continue;
                }
                let parts = known.parts(id);
                if q.status.map_or(true, |s| status_of(parts) == s) {
                    page.push(*id);
                }
            }
            if !unread.is_empty() {
                let read = node.parts_of_many(unread.clone()).await?;
                for (h, parts) in unread.into_iter().zip(read) {
                    known.add_hash(h, parts);
                }
                continue;
            }
            if done || want.is_some_and(|w| page.len() >= w) {
                return Ok(page.iter().map(|id| entry(known.parts(id))).collect());
            }
            break;
        }
    }
}

/// A payment's status as `listpays` gives it.
fn status_of(parts: &[Payment]) -> Status {
    let any = |s| parts.iter().any(|p| p.status == s);
    if any(Status::Complete) {
        Status::Complete
    } else if any(Status::Pending) {
        Status::Pending
    } else {
        Status::Failed
    }
}

/// The payments of one hash, each as `listpays` shows it, in order.
pub async fn of_hash<N: Node>(node: &N, hash: Sha256, q: Query) -> Result<Vec<Value>, RpcError> {
    let mut known = Known::default();
    known.add_hash(hash, node.parts_of(hash).await?);
    let index = order(q.index);
    let mut out: Vec<Value> = known
        .placed(index, 0, u64::MAX, q.reverse)
        .iter()
        .map(|(_, id)| known.parts(id))
        .filter(|parts| q.status.map_or(true, |s| status_of(parts) == s))
        .map(entry)
        .collect();
    if let Some(l) = q.limit {
        out.truncate(l as usize);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
