//! A whole payment (one hash, one group) as `listpays` shows it: xpay's
//! `listsendpays_done` (`plugins/xpay/listpays.c`) for one group, from the
//! node's rows in the node's order; [`pages`]: whole payments a page at
//! a time.

pub mod pages;

use crate::domain::{Payment, Status};
use serde_json::{json, Map, Value};

/// Whether the payment is no longer pending: a part completed, or every
/// part is terminal (and none completed).
pub fn settled(parts: &[Payment]) -> bool {
    parts.iter().any(|p| p.status == Status::Complete)
        || parts.iter().all(|p| p.status != Status::Pending)
}

/// The payment's `listpays` entry; `parts` is one group's rows, in the
/// order `listsendpays` gives them (at least one).
pub fn entry(parts: &[Payment]) -> Value {
    let first = &parts[0];
    let mut e = Map::new();
    // The first invoice string and description any part has; the first
    // part's destination and label.
    if let Some((key, inv)) = parts.iter().find_map(|p| {
        (p.bolt11.as_ref().map(|s| ("bolt11", s))).or(p.bolt12.as_ref().map(|s| ("bolt12", s)))
    }) {
        e.insert(key.into(), json!(inv));
    }
    if let Some(d) = parts.iter().find_map(|p| p.description.as_ref()) {
        e.insert("description".into(), json!(d));
    }
    if let Some(d) = &first.destination {
        e.insert("destination".into(), json!(d));
    }
    e.insert("payment_hash".into(), json!(first.payment_hash));
    let any = |s: Status| parts.iter().any(|p| p.status == s);
    let status = match (any(Status::Complete), any(Status::Pending)) {
        (true, _) => "complete",
        (false, true) => "pending",
        _ => "failed",
    };
    e.insert("status".into(), json!(status));
    e.insert("created_at".into(), json!(first.created_at));
    let complete = || parts.iter().filter(|p| p.status == Status::Complete);
    if let Some(at) = complete().filter_map(|p| p.completed_at).min() {
        e.insert("completed_at".into(), json!(at));
    }
    if let Some(l) = &first.label {
        e.insert("label".into(), json!(l));
    }
    // The last complete part's preimage (each complete part sets it).
    if let Some(last) = complete().next_back() {
        if let Some(p) = &last.payment_preimage {
            e.insert("preimage".into(), json!(p));
        }
    }
    let live: Vec<&Payment> = parts
        .iter()
        .filter(|p| p.status != Status::Failed)
        .collect();
    // Known only if every live part says what it delivers.
    let amount: Option<u64> = live.iter().map(|p| p.amount_msat).sum();
    if let (Some(a), false) = (amount, live.is_empty()) {
        e.insert("amount_msat".into(), json!(a));
    }
    let sent: u64 = live.iter().map(|p| p.amount_sent_msat).sum();
    e.insert("amount_sent_msat".into(), json!(sent));
    if live.len() > 1 {
        e.insert("number_of_parts".into(), json!(live.len()));
    }
    let created = parts.iter().map(|p| p.created_index).min();
    e.insert("created_index".into(), json!(created));
    if let Some(u) = parts.iter().filter_map(|p| p.updated_index).max() {
        if u > 0 {
            e.insert("updated_index".into(), json!(u));
        }
    }
    Value::Object(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::payment;

    fn part(n: u64, partid: u64, status: Status) -> Payment {
        let mut p = payment(1, status);
        p.partid = partid;
        p.created_index = n;
        p.id = n;
        p.amount_msat = Some(1000);
        p.amount_sent_msat = 1001;
        p.updated_index = (status != Status::Pending).then_some(10 + n);
        p.completed_at = (status == Status::Complete).then_some(100 - n);
        p.payment_preimage = (status == Status::Complete).then(|| format!("{n:064x}"));
        p
    }

    #[test]
    fn a_payment_is_settled_by_a_complete_part_or_no_pending_one() {
        let (c, f, p) = (Status::Complete, Status::Failed, Status::Pending);
        assert!(settled(&[part(1, 0, c), part(2, 1, p)]));
        assert!(settled(&[part(1, 0, f), part(2, 1, f)]));
        assert!(!settled(&[part(1, 0, f), part(2, 1, p)]));
    }

    #[test]
    fn parts_add_up_as_listpays_adds_them() {
        let parts = [
            part(3, 0, Status::Failed),
            part(4, 1, Status::Complete),
            part(5, 2, Status::Complete),
        ];
        let e = entry(&parts);
        assert_eq!(e["status"], "complete");
        assert_eq!(e["amount_msat"], 2000, "failed parts are not counted");
        assert_eq!(e["amount_sent_msat"], 2002);
        assert_eq!(e["number_of_parts"], 2);
        assert_eq!(e["created_index"], 3);
        assert_eq!(e["updated_index"], 15);
        assert_eq!(e["completed_at"], 95, "the earliest completion");
        assert_eq!(
            e["preimage"],
            format!("{:064x}", 5),
            "the last complete part's"
        );
        let failed = entry(&parts[..1]);
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["amount_sent_msat"], 0);
        assert!(failed.get("amount_msat").is_none());
        assert!(failed.get("number_of_parts").is_none());
    }
}
