//! lightningd's payments table (the `sendpays`): its rows ([`part`]), its
//! indexes and their moves, the parts' lifecycle; the built-in
//! `listsendpays`, `waitsendpay` (immediate part) and `delpay` as
//! lightningd answers them are in [`builtins`] (see
//! `../shared/cln-fixtures`).

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

mod builtins;
mod part;

pub use part::{fail, with_details, Failure, Key, NewPart, Part, Status};

/// What the built-in `waitsendpay` does right away.
pub enum Wait {
    Answer(Result<Value, Value>),
    /// Pending: wait for the part, at most this many seconds.
    Pending(Key, Option<u32>),
}

/// A move of one of the `sendpays` indexes, with the details lightningd
/// gives a `wait` that was pending for it.
#[derive(Debug, Clone)]
pub struct IndexEvent {
    /// `created`, `updated` or `deleted`.
    pub index: &'static str,
    pub value: u64,
    /// `{status, partid, groupid, payment_hash}`, as lightningd's
    /// `sendpay_index_inc` puts them.
    pub details: Value,
}

#[derive(Debug, Default, Clone)]
pub struct Table {
    /// By created_index.
    pub parts: BTreeMap<u64, Part>,
    /// Key to created_index, so lookups stay fast on a big table.
    index: HashMap<Key, u64>,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Index moves not yet announced to pending waits.
    pub events: Vec<IndexEvent>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Table {
    fn moved(&mut self, index: &'static str, value: u64, part: &Part) {
        self.events.push(IndexEvent {
            index,
            value,
            details: json!({"status": part.status.as_str(), "partid": part.partid,
                "groupid": part.groupid, "payment_hash": part.payment_hash}),
        });
    }

    /// The current value of a `sendpays` index.
    pub fn index_value(&self, index: &str) -> Option<u64> {
        match index {
            "created" => Some(self.created),
            "updated" => Some(self.updated),
            "deleted" => Some(self.deleted),
            _ => None,
        }
    }

    pub fn get(&self, key: &Key) -> Option<&Part> {
        self.index.get(key).and_then(|c| self.parts.get(c))
    }

    fn get_mut(&mut self, key: &Key) -> Option<&mut Part> {
        self.index.get(key).and_then(|c| self.parts.get_mut(c))
    }

    /// What `sendpay` does to the table: a new pending part.
    pub fn create(&mut self, n: NewPart) -> Result<Value, String> {
        let key = (n.payment_hash.clone(), n.groupid, n.partid);
        if self.get(&key).is_some_and(|p| p.status != Status::Failed) {
            return Err(format!("part {key:?} exists already"));
        }
        if let Some(old) = self.index.remove(&key) {
            self.parts.remove(&old);
        }
        self.created += 1;
        let part = Part {
            created_index: self.created,
            payment_hash: n.payment_hash,
            groupid: n.groupid,
            partid: n.partid,
            updated_index: None,
            destination: n.destination,
            amount_msat: n.amount_msat,
            amount_sent_msat: n.amount_sent_msat,
            created_at: n.created_at.unwrap_or_else(now),
            completed_at: None,
            status: Status::Pending,
            payment_preimage: None,
            label: n.label,
            bolt11: n.bolt11,
            description: n.description,
            bolt12: n.bolt12,
            failure: None,
        };
        let out = part.listing();
        self.moved("created", self.created, &part);
        self.index.insert(part.key(), part.created_index);
        self.parts.insert(part.created_index, part);
        Ok(out)
    }

    /// Completes a pending part; returns the `sendpay_success` payload.
    pub fn succeed(
        &mut self,
        key: &Key,
        preimage: &str,
        completed_at: Option<u64>,
    ) -> Result<Value, String> {
        self.updated += 1;
        let updated = self.updated;
        let p = self.get_mut(key).ok_or("no such part")?;
        if p.status != Status::Pending {
            return Err(format!("part is {}", p.status.as_str()));
        }
        p.status = Status::Complete;
        p.payment_preimage = Some(preimage.into());
        p.updated_index = Some(updated);
        p.completed_at = Some(completed_at.unwrap_or_else(now));
        let (listing, part) = (p.listing(), p.clone());
        self.moved("updated", updated, &part);
        Ok(listing)
    }

    /// Fails a pending part; returns the `sendpay_failure` payload, which
    /// (as a real lightningd sends it) shows the part as it was before:
    /// `status: "pending"`, no `updated_index` nor `completed_at`.
    pub fn fail(&mut self, key: &Key, failure: Option<Failure>) -> Result<Option<Value>, String> {
        self.updated += 1;
        let updated = self.updated;
        let p = self.get_mut(key).ok_or("no such part")?;
        if p.status != Status::Pending {
            return Err(format!("part is {}", p.status.as_str()));
        }
        let before = p.listing();
        p.status = Status::Failed;
        p.updated_index = Some(updated);
        p.completed_at = Some(now());
        p.failure = failure.clone();
        let part = p.clone();
        self.moved("updated", updated, &part);
        Ok(failure.map(
            |f| json!({"code": f.code, "message": f.message, "data": with_details(before, &f)}),
        ))
    }
}
