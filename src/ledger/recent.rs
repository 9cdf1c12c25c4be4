//! The parts recorded last, whole: an answer that finds a part terminal
//! in the ledger and still pending in the node (the notification came
//! first) answers from here. Records keep a summary only, so this is the
//! one place a whole part stays, and only the newest few.

use crate::domain::{Part, PartKey};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How many parts are kept: a notification races the node's answer by
/// milliseconds.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct Recent {
    parts: HashMap<PartKey, Arc<Part>>,
    order: VecDeque<PartKey>,
}

impl Recent {
    pub fn add(&mut self, part: Arc<Part>) {
        let key = part.key();
        if self.parts.insert(key, part).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.parts.remove(&old);
            }
        }
    }

    /// The part at this attempt, if it is among the newest.
    pub fn get(&self, key: &PartKey, created_index: u64) -> Option<Arc<Part>> {
        self.parts
            .get(key)
            .filter(|p| p.payment.created_index == created_index)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::fakes::payment;

    #[test]
    fn keeps_the_newest_only() {
        let mut r = Recent::default();
        let part = |n: u8| {
            Arc::new(Part {
                payment: payment(n, Status::Complete),
                failure: None,
            })
        };
        let first = part(0);
        r.add(first.clone());
        assert!(r.get(&first.key(), first.payment.created_index).is_some());
        assert!(r
            .get(&first.key(), first.payment.created_index + 1)
            .is_none());
        for i in 0..CAPACITY {
            let mut p = (*part(1)).clone();
            p.payment.groupid = i as u64 + 10;
            r.add(Arc::new(p));
        }
        assert!(r.get(&first.key(), first.payment.created_index).is_none());
        assert_eq!(r.parts.len(), CAPACITY);
    }
}
