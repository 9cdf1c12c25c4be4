//! The in-memory index: each part the ledger holds in 16 bytes (some 27
//! with the tree's own), whatever its record: a fingerprint of its
//! payment hash, its `groupid`, `partid`, `created_index` and status,
//! packed in one number. Counts are kept on every change.
//!
//! The fingerprint is the hash under a key drawn at start-up (SipHash),
//! so nobody can make two payment hashes share one; the index is rebuilt
//! from the records at each start. A part whose numbers do not fit the
//! packing (a `groupid` or `partid` of 4,096 or more, a `created_index`
//! past 2^39) is kept whole beside it. The newest failures follow the
//! index ([`RecentFailures`]): in as a failed part is noted, out as it is
//! forgotten.

use super::recent_failures::RecentFailures;
use super::record::Record;
use crate::domain::{PartKey, Status};
use crate::store::page_of;
use cln_rpc::primitives::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};

const ID_BITS: u32 = 12;
const CI_BITS: u32 = 39;

/// A part the index holds: its identity within its hash, its attempt and
/// its status. (The hash itself is the caller's, or only fingerprinted.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub groupid: u64,
    pub partid: u64,
    pub created_index: u64,
    pub status: Status,
    slot: Slot,
}

impl Held {
    /// The part's whole identity, given its hash.
    pub fn key(&self, payment_hash: Sha256) -> PartKey {
        PartKey {
            payment_hash,
            groupid: self.groupid,
            partid: self.partid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Packed(u128),
    Odd(PartKey),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub complete: usize,
    pub failed: usize,
    /// Deletes an earlier version marked, not finished yet.
    pub deleting: usize,
}

#[derive(Default)]
pub(super) struct PartIndex {
    packed: BTreeSet<u128>,
    odd: BTreeMap<PartKey, (u64, Status)>,
    seed: RandomState,
    pub counts: Counts,
    /// Parts held in each page of records (pages with none are absent):
    /// a page whose last part goes is deleted whole.
    pages: HashMap<u64, u32>,
    /// The pages holding failed parts, and the earliest and latest time
    /// they failed (never narrowed while the page lives): failure
    /// statistics read only the pages whose span meets their window.
    failing: BTreeMap<u64, (u64, u64)>,
    /// The newest failures, whole enough to be counted without a page.
    pub failures: RecentFailures,
}

impl PartIndex {
    fn fingerprint(&self, hash: &Sha256) -> u128 {
        let b: &[u8] = hash.as_ref();
        u128::from(self.seed.hash_one(b))
    }

    /// Where the entries of this part (or of the whole hash, `None`) lie.
    fn range(&self, hash: &Sha256, part: Option<(u64, u64)>) -> std::ops::RangeInclusive<u128> {
        let fp = self.fingerprint(hash) << 64;
        match part {
            Some((g, p)) => {
                let base =
                    fp | u128::from(g) << (64 - ID_BITS) | u128::from(p) << (64 - 2 * ID_BITS);
                base..=base | ((1u128 << (64 - 2 * ID_BITS)) - 1)
            }
            None => fp..=fp | u128::from(u64::MAX),
        }
    }

    fn fits(key: &PartKey, created_index: u64) -> bool {
        key.groupid < 1 << ID_BITS && key.partid < 1 << ID_BITS && created_index < 1 << CI_BITS
    }

    fn unpack(v: u128) -> Held {
        let low = v as u64;
        let mask = |bits: u32| (1u64 << bits) - 1;
        Held {
            groupid: (low >> (64 - ID_BITS)) & mask(ID_BITS),
            partid: (low >> (64 - 2 * ID_BITS)) & mask(ID_BITS),
            created_index: (low >> 1) & mask(CI_BITS),
            status: if low & 1 == 1 {
                Status::Failed
            } else {
                Status::Complete
            },
            slot: Slot::Packed(v),
        }
    }

    /// A payment (hash and group) in one number, as the index tells
    /// hashes apart.
    pub fn payment_print(&self, key: &PartKey) -> u64 {
        let b: &[u8] = key.payment_hash.as_ref();
        self.seed.hash_one((b, key.groupid))
    }

    fn count(&mut self, status: Status, created_index: u64, delta: isize) {
        if status == Status::Failed && delta < 0 {
            self.failures.remove(created_index);
        }
        let slot = match status {
            Status::Failed => &mut self.counts.failed,
            _ => &mut self.counts.complete,
        };
        *slot = slot.saturating_add_signed(delta);
        let page = page_of(created_index).0;
        let held = self.pages.entry(page).or_default();
        *held = held.saturating_add_signed(delta as i32);
        if *held == 0 {
            self.pages.remove(&page);
            self.failing.remove(&page);
        }
    }

    /// The part at `created_index` (indexed) failed as `record` says (a
    /// failure without a time counts in no window).
    pub fn note_failure(&mut self, created_index: u64, record: &Record) {
        let Some(at) = record.completed_at else {
            return;
        };
        let payment = self.payment_print(&record.key);
        self.failures
            .add(created_index, at, payment, &record.failure);
        let page = page_of(created_index).0;
        let span = self.failing.entry(page).or_insert((at, at));
        *span = (span.0.min(at), span.1.max(at));
    }

    /// The pages that may hold a part failed in `[since, until)`, in order.
    pub fn pages_failing_between(&self, since: u64, until: u64) -> Vec<u64> {
        self.failing
            .iter()
            .filter(|(_, (first, last))| *first < until && *last >= since)
            .map(|(page, _)| *page)
            .collect()
    }

    /// How many parts the index holds in this page of records.
    pub fn page_held(&self, page: u64) -> u32 {
        self.pages.get(&page).copied().unwrap_or(0)
    }

    /// The attempt of this part the index holds.
    pub fn get(&self, key: &PartKey) -> Option<Held> {
        if let Some((ci, status)) = self.odd.get(key) {
            return Some(Held {
                groupid: key.groupid,
                partid: key.partid,
                created_index: *ci,
                status: *status,
                slot: Slot::Odd(*key),
            });
        }
        let range = self.range(&key.payment_hash, Some((key.groupid, key.partid)));
        self.packed
            .range(range)
            .next_back()
            .map(|v| Self::unpack(*v))
    }

    /// Holds this attempt of the part, in place of any other it held
    /// (returned).
    pub fn insert(&mut self, key: PartKey, created_index: u64, status: Status) -> Option<Held> {
        let old = self.remove(&key);
        if Self::fits(&key, created_index) {
            let v = *self
                .range(&key.payment_hash, Some((key.groupid, key.partid)))
                .start()
                | u128::from(created_index) << 1
                | u128::from(status == Status::Failed);
            self.packed.insert(v);
        } else {
            self.odd.insert(key, (created_index, status));
        }
        self.count(status, created_index, 1);
        old
    }

    /// Forgets the part, whichever attempt it held (returned).
    pub fn remove(&mut self, key: &PartKey) -> Option<Held> {
        let held = self.get(key)?;
        self.remove_held(&held);
        Some(held)
    }

    /// Forgets exactly this entry; whether it was there.
    pub fn remove_held(&mut self, h: &Held) -> bool {
        let gone = match h.slot {
            Slot::Packed(v) => self.packed.remove(&v),
            Slot::Odd(k) => self.odd.remove(&k).is_some(),
        };
        if gone {
            self.count(h.status, h.created_index, -1);
        }
        gone
    }

    /// The parts of one hash, by `groupid` and `partid`.
    pub fn of_hash(&self, hash: &Sha256) -> Vec<Held> {
        let mut out: Vec<Held> = self
            .packed
            .range(self.range(hash, None))
            .map(|v| Self::unpack(*v))
            .collect();
        let lo = PartKey {
            payment_hash: *hash,
            groupid: 0,
            partid: 0,
        };
        out.extend(
            self.odd
                .range(lo..)
                .take_while(|(k, _)| k.payment_hash == *hash)
                .map(|(k, (ci, status))| Held {
                    groupid: k.groupid,
                    partid: k.partid,
                    created_index: *ci,
                    status: *status,
                    slot: Slot::Odd(*k),
                }),
        );
        out.sort_by_key(|h| (h.groupid, h.partid));
        out
    }

    /// Every part held.
    pub fn all(&self) -> Vec<Held> {
        let odd = self.odd.iter().map(|(k, (ci, status))| Held {
            groupid: k.groupid,
            partid: k.partid,
            created_index: *ci,
            status: *status,
            slot: Slot::Odd(*k),
        });
        self.packed
            .iter()
            .map(|v| Self::unpack(*v))
            .chain(odd)
            .collect()
    }

    /// The parts whose `created_index` lies in `[lo, hi)`.
    pub fn between(&self, lo: u64, hi: u64) -> Vec<Held> {
        let mask = (1u128 << (CI_BITS + 1)) - 1;
        let packed = self.packed.iter().filter(|v| {
            let ci = ((*v & mask) >> 1) as u64;
            lo <= ci && ci < hi
        });
        let odd = self
            .odd
            .iter()
            .filter(|(_, (ci, _))| lo <= *ci && *ci < hi)
            .map(|(k, (ci, status))| Held {
                groupid: k.groupid,
                partid: k.partid,
                created_index: *ci,
                status: *status,
                slot: Slot::Odd(*k),
            });
        packed.map(|v| Self::unpack(*v)).chain(odd).collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.packed.len() + self.odd.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn key(h: u8, groupid: u64, partid: u64) -> PartKey {
        PartKey {
            payment_hash: Sha256::from_str(&format!("{h:02x}").repeat(32)).unwrap(),
            groupid,
            partid,
        }
    }

    #[test]
    fn parts_are_found_by_identity_and_hash_and_counted() {
        let mut ix = PartIndex::default();
        ix.insert(key(1, 1, 0), 10, Status::Complete);
        ix.insert(key(1, 2, 3), 12, Status::Failed);
        ix.insert(key(2, 1, 0), 11, Status::Complete);
        // Numbers past the packing are kept whole.
        ix.insert(key(1, 5000, 0), 1 << 40, Status::Failed);
        assert_eq!(
            ix.counts,
            Counts {
                complete: 2,
                failed: 2,
                deleting: 0
            }
        );
        let h = ix.get(&key(1, 2, 3)).unwrap();
        assert_eq!((h.created_index, h.status), (12, Status::Failed));
        assert_eq!(ix.get(&key(1, 5000, 0)).unwrap().created_index, 1 << 40);
        assert!(ix.get(&key(1, 2, 4)).is_none());
        let of: Vec<(u64, u64, u64)> = ix
            .of_hash(&key(1, 0, 0).payment_hash)
            .iter()
            .map(|h| (h.groupid, h.partid, h.created_index))
            .collect();
        assert_eq!(of, [(1, 0, 10), (2, 3, 12), (5000, 0, 1 << 40)]);
        assert_eq!(ix.all().len(), 4);
        let mut between: Vec<u64> = ix
            .between(11, 1 << 41)
            .iter()
            .map(|h| h.created_index)
            .collect();
        between.sort();
        assert_eq!(between, [11, 12, 1 << 40]);
        // A new attempt replaces the old.
        let old = ix.insert(key(1, 1, 0), 20, Status::Failed).unwrap();
        assert_eq!(old.created_index, 10);
        assert_eq!(
            ix.counts,
            Counts {
                complete: 1,
                failed: 3,
                deleting: 0
            }
        );
        assert!(ix.remove_held(&ix.get(&key(1, 5000, 0)).unwrap()));
        assert_eq!(ix.remove(&key(2, 1, 0)).unwrap().created_index, 11);
        assert_eq!(ix.len(), 2);
        assert_eq!(ix.page_held(0), 2, "created_index 12 and 20 are in page 0");
        assert_eq!(ix.page_held(1 << 34), 0);
        assert_eq!(
            ix.counts,
            Counts {
                complete: 0,
                failed: 2,
                deleting: 0
            }
        );
    }
}
