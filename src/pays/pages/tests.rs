//! The pages of payments against `listpays`' entries, on a fake node
//! holding every kind of payment.

use super::*;
use crate::fakes::{payment, FakeNode};

/// 90 parts of 24 payments (12 hashes, two groups each), interleaved,
/// retried, of every status; one payment all pending.
fn node() -> FakeNode {
    let node = FakeNode::default();
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut parts = Vec::new();
    let mut updated = 0;
    let mut begun = HashSet::new();
    for ci in 1..=90u64 {
        // Hash 13 fails whole, twice.
        if ci % 30 == 0 {
            let mut p = payment(13, Status::Failed);
            (p.created_index, p.id, p.partid, p.groupid) = (ci, ci, ci, ci / 30);
            updated += 1;
            p.updated_index = Some(updated);
            parts.push(p);
            continue;
        }
        let n = (next() % 12) as u8 + 1;
        let groupid = if n == 12 { 1 } else { next() % 2 + 1 };
        // Only one payment is all pending: payments never updated
        // share `updated_index` 0, which no start can page between.
        let first = begun.insert((n, groupid));
        let status = match (n, next() % 3) {
            (12, _) => Status::Pending,
            (_, 0) => Status::Failed,
            (_, 1) => Status::Complete,
            _ if first => Status::Failed,
            _ => Status::Pending,
        };
        let mut p = payment(n, status);
        p.created_index = ci;
        p.id = ci;
        p.groupid = groupid;
        p.partid = ci;
        p.amount_msat = Some(1000 + ci);
        p.updated_index = (status != Status::Pending).then(|| {
            updated += 1;
            updated
        });
        parts.push(p);
    }
    // Updates land out of created order, as parts resolve.
    let mut order: Vec<(u64, usize)> = (0..parts.len()).map(|i| (next(), i)).collect();
    order.sort();
    let mut u = 0;
    for (_, i) in order {
        if parts[i].updated_index.is_some() {
            u += 1;
            parts[i].updated_index = Some(u);
        }
    }
    *node.parts.lock().unwrap() = parts;
    node
}

fn whole(node: &FakeNode, index: Index) -> Vec<Value> {
    let parts = node.parts.lock().unwrap().clone();
    let mut by: HashMap<Id, Vec<Payment>> = HashMap::new();
    for p in parts {
        by.entry((p.payment_hash, p.groupid)).or_default().push(p);
    }
    let mut v: Vec<(Place, Vec<Payment>)> =
        by.into_values().map(|ps| (place(index, &ps), ps)).collect();
    v.sort_by_key(|(p, _)| *p);
    v.iter().map(|(_, ps)| entry(ps)).collect()
}

fn key(index: Index, e: &Value) -> u64 {
    let name = match index {
        Index::Updated => "updated_index",
        _ => "created_index",
    };
    e.get(name).and_then(Value::as_u64).unwrap_or(0)
}

#[tokio::test]
async fn pages_of_any_size_add_up_to_the_whole_in_either_order() {
    let node = node();
    for index in [Index::Created, Index::Updated] {
        let all = whole(&node, index);
        let everything = Query {
            index,
            start: None,
            limit: None,
            reverse: false,
            status: None,
        };
        assert_eq!(page(&node, everything).await.unwrap(), all, "{index:?}");
        for limit in [1, 2, 5, 7, 100] {
            for reverse in [false, true] {
                let mut got = Vec::new();
                let mut start = None;
                loop {
                    let q = Query {
                        index,
                        start,
                        limit: Some(limit),
                        reverse,
                        status: None,
                    };
                    let p = page(&node, q).await.unwrap();
                    assert!(p.len() <= limit as usize);
                    let Some(last) = p.last() else { break };
                    let k = key(index, last);
                    got.extend(p.iter().cloned());
                    start = if reverse {
                        match k.checked_sub(1) {
                            Some(s) => Some(s),
                            None => break,
                        }
                    } else {
                        Some(k + 1)
                    };
                }
                let mut want = all.clone();
                if reverse {
                    want.reverse();
                }
                assert_eq!(got, want, "{index:?} limit {limit} reverse {reverse}");
            }
        }
    }
}

#[tokio::test]
async fn status_keeps_whole_payments_of_that_status() {
    let node = node();
    let all = whole(&node, Index::Created);
    for status in [Status::Complete, Status::Pending, Status::Failed] {
        let q = Query {
            index: Index::Created,
            start: None,
            limit: Some(3),
            reverse: false,
            status: Some(status),
        };
        let want: Vec<Value> = all
            .iter()
            .filter(|e| e["status"] == status.to_string())
            .take(3)
            .cloned()
            .collect();
        assert!(!want.is_empty(), "{status:?}");
        assert_eq!(page(&node, q).await.unwrap(), want, "{status:?}");
    }
}
