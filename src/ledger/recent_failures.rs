//! The newest failures the ledger holds, in memory and compact (32 bytes
//! each, some 48 with the tree's, the nodes shared): failure statistics
//! over a recent window are counted from here, without reading a page.
//! Bounded: past [`CAP`] the oldest are dropped, and the cache then covers
//! only the times after them (older windows are read from the pages).
//! It follows the index: a failed part is added when indexed with its
//! time, and dropped when the index forgets it.

use super::failures::Failed;
use super::record::FailureSummary;
use std::collections::{BTreeMap, HashMap};

/// Failures held at most (~3 MiB): a day of 10,000 failures six times over.
pub const CAP: usize = 65_536;

const CHANNEL: u8 = 1;
const NODE: u8 = 1 << 1;
const FAILCODE: u8 = 1 << 2;
const DIRECTION: u8 = 1 << 3;

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u64,
    payment: u64,
    channel: u64,
    node: u32,
    failcode: u16,
    direction: u8,
    /// Which of the fields above lightningd reported.
    has: u8,
}

/// The erring nodes of the failures held, each once, counted.
#[derive(Default)]
struct Nodes {
    ids: Vec<([u8; 33], u32)>,
    of: HashMap<[u8; 33], u32>,
    free: Vec<u32>,
}

impl Nodes {
    fn take(&mut self, node: [u8; 33]) -> u32 {
        if let Some(&i) = self.of.get(&node) {
            self.ids[i as usize].1 += 1;
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.ids[i as usize] = (node, 1);
                i
            }
            None => {
                self.ids.push((node, 1));
                (self.ids.len() - 1) as u32
            }
        };
        self.of.insert(node, i);
        i
    }

    fn give(&mut self, i: u32) {
        let slot = &mut self.ids[i as usize];
        slot.1 -= 1;
        if slot.1 == 0 {
            self.of.remove(&slot.0);
            self.free.push(i);
        }
    }
}

pub struct RecentFailures {
    /// By `created_index`.
    entries: BTreeMap<u64, Entry>,
    nodes: Nodes,
    /// Every failure held that failed at or after this time is here.
    from: u64,
    cap: usize,
}

impl Default for RecentFailures {
    fn default() -> Self {
        RecentFailures {
            entries: BTreeMap::new(),
            nodes: Nodes::default(),
            from: 0,
            cap: CAP,
        }
    }
}

impl RecentFailures {
    /// Holds the failure of this part, failed at `at`, in place of any it
    /// held at that `created_index`.
    pub fn add(&mut self, created_index: u64, at: u64, payment: u64, f: &FailureSummary) {
        if at < self.from {
            return;
        }
        self.remove(created_index);
        let (Ok(failcode), Ok(direction)) = (
            u16::try_from(f.failcode.unwrap_or(0)),
            u8::try_from(f.erring_direction.unwrap_or(0)),
        ) else {
            // Numbers no lightningd sends: those times are read from pages.
            self.drop_until(at);
            return;
        };
        let mut has = 0;
        let mut flag = |present: bool, bit: u8| {
            if present {
                has |= bit;
            }
        };
        flag(f.erring_channel.is_some(), CHANNEL);
        flag(f.erring_node.is_some(), NODE);
        flag(f.failcode.is_some(), FAILCODE);
        flag(f.erring_direction.is_some(), DIRECTION);
        let node = f.erring_node.map_or(0, |n| self.nodes.take(n));
        self.entries.insert(
            created_index,
            Entry {
                at,
                payment,
                channel: f.erring_channel.unwrap_or(0),
                node,
                failcode,
                direction,
                has,
            },
        );
        if self.entries.len() > self.cap {
            // The oldest quarter goes at once, so this is seldom done.
            let mut ats: Vec<u64> = self.entries.values().map(|e| e.at).collect();
            let nth = ats.len() - self.cap * 3 / 4 - 1;
            let (_, last_dropped, _) = ats.select_nth_unstable(nth);
            let last_dropped = *last_dropped;
            self.drop_until(last_dropped);
        }
    }

    /// Drops every failure at or before `at`: the cache covers later times.
    fn drop_until(&mut self, at: u64) {
        self.from = self.from.max(at.saturating_add(1));
        let nodes = &mut self.nodes;
        self.entries.retain(|_, e| {
            let keep = e.at > at;
            if !keep && e.has & NODE != 0 {
                nodes.give(e.node);
            }
            keep
        });
    }

    /// Forgets the failure at this `created_index`, if held.
    pub fn remove(&mut self, created_index: u64) {
        if let Some(e) = self.entries.remove(&created_index) {
            if e.has & NODE != 0 {
                self.nodes.give(e.node);
            }
        }
    }

    /// Whether every failure from `since` on is held.
    pub fn covers(&self, since: u64) -> bool {
        since >= self.from
    }

    /// The failures held of `[since, until)`, by `created_index`.
    pub fn between(&self, since: u64, until: u64) -> Vec<Failed> {
        let opt = |e: &Entry, bit: u8, v: u64| (e.has & bit != 0).then_some(v);
        self.entries
            .iter()
            .filter(|(_, e)| since <= e.at && e.at < until)
            .map(|(ci, e)| Failed {
                created_index: *ci,
                at: e.at,
                payment: e.payment,
                failcode: opt(e, FAILCODE, e.failcode.into()),
                erring_node: (e.has & NODE != 0).then(|| self.nodes.ids[e.node as usize].0),
                erring_channel: opt(e, CHANNEL, e.channel),
                erring_direction: opt(e, DIRECTION, e.direction.into()),
            })
            .collect()
    }

    /// Holds at most `cap` failures (tests make it small).
    #[cfg(test)]
    pub fn cap_at(&mut self, cap: usize) {
        self.cap = cap;
    }

    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.entries.len(), self.nodes.of.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(node: u8, failcode: u64) -> FailureSummary {
        FailureSummary {
            failcode: Some(failcode),
            erring_node: Some([node; 33]),
            erring_channel: Some(103 << 40),
            ..FailureSummary::default()
        }
    }

    #[test]
    fn the_newest_are_kept_and_the_window_they_cover_is_known() {
        let mut c = RecentFailures::default();
        assert!(c.covers(0));
        for ci in 0..CAP as u64 {
            c.add(ci, 1000 + ci, ci, &failure((ci % 3) as u8, 4103));
        }
        assert_eq!(c.len(), (CAP, 3));
        let got = c.between(1000, 1002);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].erring_node, Some([1; 33]));
        assert_eq!(got[1].failcode, Some(4103));
        assert_eq!(got[1].erring_direction, None, "not reported, not made up");
        // One more: the oldest quarter goes.
        c.add(CAP as u64, 1000 + CAP as u64, 7, &failure(0, 4103));
        let kept = CAP * 3 / 4;
        assert_eq!(c.len().0, kept);
        let from = 1001 + (CAP / 4) as u64;
        assert!(!c.covers(from - 1), "older windows are read from the pages");
        assert!(c.covers(from));
        assert!(c.between(0, from).is_empty());
        assert_eq!(c.between(from, from + 1).len(), 1);
        // An old failure recorded late is not held: its time is not covered.
        c.add(u64::MAX, 1000, 1, &failure(1, 4103));
        assert_eq!(c.len().0, kept);
        for ci in 0..=CAP as u64 {
            c.remove(ci);
        }
        assert_eq!(c.len(), (0, 0), "nodes go with their failures");
    }

    #[test]
    fn a_failure_that_does_not_fit_leaves_its_time_to_the_pages() {
        let mut c = RecentFailures::default();
        c.add(1, 100, 1, &failure(1, 4103));
        c.add(2, 200, 2, &failure(1, 1 << 20));
        assert!(!c.covers(200));
        assert!(c.covers(201));
        assert_eq!(c.len(), (0, 0));
    }
}
