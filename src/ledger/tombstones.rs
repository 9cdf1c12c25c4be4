//! Parts deleted in this run, so that a notification or an import still in
//! flight for one of them does not bring it back.

use crate::domain::PartKey;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How many deletes are remembered. A notification is late by
/// milliseconds; this bounds the memory.
const CAPACITY: usize = 16_384;

/// How long a delete whose attempt is not known (lightningd's `deleted`
/// event names the part, not its `created_index`) keeps any attempt of
/// the part out. A part deleted and sent again under the same ids within
/// this time is not recorded from its notification; it is imported from
/// the node when asked for, or at the next start-up.
const ANY_ATTEMPT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Tombstones {
    map: HashMap<PartKey, (Option<u64>, Instant)>,
    order: VecDeque<PartKey>,
}

impl Tombstones {
    /// `created_index`: the attempt deleted, where known.
    pub fn add(&mut self, key: PartKey, created_index: Option<u64>) {
        if self
            .map
            .insert(key, (created_index, Instant::now()))
            .is_none()
        {
            self.order.push_back(key);
            if self.order.len() > CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    /// Whether this attempt of the part was deleted.
    pub fn buries(&self, key: &PartKey, created_index: u64) -> bool {
        match self.map.get(key) {
            Some((Some(c), _)) => *c == created_index,
            Some((None, at)) => at.elapsed() < ANY_ATTEMPT,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cln_rpc::primitives::Sha256;
    use std::str::FromStr;

    fn key(n: u64) -> PartKey {
        PartKey {
            payment_hash: Sha256::from_str(&"ab".repeat(32)).unwrap(),
            groupid: 1,
            partid: n,
        }
    }

    #[test]
    fn a_known_attempt_buries_only_itself_an_unknown_one_any() {
        let mut t = Tombstones::default();
        t.add(key(1), Some(7));
        assert!(t.buries(&key(1), 7));
        assert!(!t.buries(&key(1), 8));
        t.add(key(2), None);
        assert!(t.buries(&key(2), 3) && t.buries(&key(2), 9));
        assert!(!t.buries(&key(3), 1));
    }
}
