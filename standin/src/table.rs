//! lightningd's payments table (the `sendpays`), with the built-in
//! `listsendpays`, `waitsendpay` (immediate part) and `delpay` as
//! lightningd answers them (see `../shared/cln-fixtures`).

use crate::params::{self, Fail};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Complete,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Complete => "complete",
            Status::Failed => "failed",
        }
    }
}

/// Why a part failed, as lightningd stores it for `waitsendpay`.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: i64,
    pub message: String,
    /// The routing failure object (or `onionreply`), in lightningd's order.
    pub details: Map<String, Value>,
}

impl Failure {
    /// 204: a failure along the route (a routing failure object).
    #[allow(clippy::too_many_arguments)]
    pub fn routing(
        code: i64,
        failcodename: &str,
        failcode: u32,
        details_text: &str,
        erring_index: u32,
        erring_node: &str,
        erring_channel: Option<&str>,
        erring_direction: Option<u32>,
        raw_message: Option<&str>,
    ) -> Failure {
        let mut d = Map::new();
        d.insert("erring_index".into(), json!(erring_index));
        d.insert("failcode".into(), json!(failcode));
        d.insert("failcodename".into(), json!(failcodename));
        d.insert("erring_node".into(), json!(erring_node));
        if let Some(c) = erring_channel {
            d.insert("erring_channel".into(), json!(c));
        }
        if let Some(dir) = erring_direction {
            d.insert("erring_direction".into(), json!(dir));
        }
        if let Some(raw) = raw_message {
            d.insert("raw_message".into(), json!(raw));
        }
        Failure {
            code,
            message: format!("failed: {failcodename} ({details_text})"),
            details: d,
        }
    }

    /// 202: the onion reply could not be parsed.
    pub fn malformed(onionreply: &str) -> Failure {
        let mut d = Map::new();
        d.insert("onionreply".into(), json!(onionreply));
        Failure {
            code: 202,
            message: "Malformed error reply".into(),
            details: d,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub created_index: u64,
    pub payment_hash: String,
    pub groupid: u64,
    pub partid: u64,
    pub updated_index: Option<u64>,
    pub destination: Option<String>,
    pub amount_msat: Option<u64>,
    pub amount_sent_msat: u64,
    pub created_at: u64,
    pub completed_at: Option<u64>,
    pub status: Status,
    pub payment_preimage: Option<String>,
    pub label: Option<String>,
    pub bolt11: Option<String>,
    pub description: Option<String>,
    pub bolt12: Option<String>,
    /// The stored reason of a failed part (`None`: not stored, answers 209).
    pub failure: Option<Failure>,
}

/// What a test gives to create a part (what `sendpay` is told).
#[derive(Debug, Clone, Default)]
pub struct NewPart {
    pub payment_hash: String,
    pub groupid: u64,
    pub partid: u64,
    pub amount_msat: Option<u64>,
    pub amount_sent_msat: u64,
    pub destination: Option<String>,
    pub label: Option<String>,
    pub bolt11: Option<String>,
    pub description: Option<String>,
    pub bolt12: Option<String>,
    pub created_at: Option<u64>,
}

pub type Key = (String, u64, u64);

impl Part {
    pub fn key(&self) -> Key {
        (self.payment_hash.clone(), self.groupid, self.partid)
    }

    /// The part as `listsendpays` shows it, in lightningd's field order.
    pub fn listing(&self) -> Value {
        let mut m = Map::new();
        m.insert("created_index".into(), json!(self.created_index));
        m.insert("id".into(), json!(self.created_index));
        m.insert("payment_hash".into(), json!(self.payment_hash));
        m.insert("groupid".into(), json!(self.groupid));
        if let Some(u) = self.updated_index {
            m.insert("updated_index".into(), json!(u));
        }
        if self.partid != 0 {
            m.insert("partid".into(), json!(self.partid));
        }
        if let Some(d) = &self.destination {
            m.insert("destination".into(), json!(d));
        }
        if let Some(a) = self.amount_msat {
            m.insert("amount_msat".into(), json!(a));
        }
        m.insert("amount_sent_msat".into(), json!(self.amount_sent_msat));
        m.insert("created_at".into(), json!(self.created_at));
        if let Some(c) = self.completed_at {
            m.insert("completed_at".into(), json!(c));
        }
        m.insert("status".into(), json!(self.status.as_str()));
        for (k, v) in [
            ("payment_preimage", &self.payment_preimage),
            ("label", &self.label),
            ("bolt11", &self.bolt11),
            ("description", &self.description),
            ("bolt12", &self.bolt12),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// The error lightningd's `waitsendpay` answers for this failed part.
    pub fn stored_error(&self) -> Value {
        match &self.failure {
            Some(f) => {
                json!({"code": f.code, "message": f.message, "data": with_details(self.listing(), f)})
            }
            None => json!({"code": 209, "message": "Payment failure reason unknown"}),
        }
    }
}

pub fn with_details(mut listing: Value, f: &Failure) -> Value {
    let m = listing.as_object_mut().expect("a listing is an object");
    for (k, v) in &f.details {
        m.insert(k.clone(), v.clone());
    }
    listing
}

pub fn fail(f: Fail) -> Value {
    json!({"code": f.0, "message": f.1})
}

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

    pub fn listsendpays(&self, params: &Value) -> Result<Value, Value> {
        let p = params::collect(
            params,
            &[
                ("bolt11", false),
                ("payment_hash", false),
                ("status", false),
                ("index", false),
                ("start", false),
                ("limit", false),
            ],
        )
        .map_err(fail)?;
        let bolt11 = p[0]
            .as_ref()
            .map(|v| params::string("bolt11", v))
            .transpose()
            .map_err(fail)?;
        let hash = p[1]
            .as_ref()
            .map(|v| params::sha256("payment_hash", v))
            .transpose()
            .map_err(fail)?;
        if bolt11.is_some() && hash.is_some() {
            return Err(fail(params::invalid(
                "Can only specify one of {bolt11} or {payment_hash}",
            )));
        }
        let status = match &p[2] {
            None => None,
            Some(v) => Some(match v.as_str() {
                Some("pending") => Status::Pending,
                Some("complete") => Status::Complete,
                Some("failed") => Status::Failed,
                _ => {
                    return Err(fail(params::invalid(format!(
                        "status: should be an invoice status: invalid token '{v}'"
                    ))))
                }
            }),
        };
        let index = match &p[3] {
            None => None,
            Some(v) => match v.as_str() {
                Some(i @ ("created" | "updated" | "deleted")) => Some(i.to_string()),
                _ => {
                    return Err(fail(params::invalid(format!(
                        "index: unknown index: invalid token '{v}'"
                    ))))
                }
            },
        };
        let start = p[4]
            .as_ref()
            .map(|v| params::u64("start", v))
            .transpose()
            .map_err(fail)?;
        let limit = p[5]
            .as_ref()
            .map(|v| params::u32("limit", v))
            .transpose()
            .map_err(fail)?;
        // lightningd's checks, in its order (`json_listsendpays`).
        if start.unwrap_or(0) != 0 && index.is_none() {
            return Err(fail(params::invalid(
                "Can only specify {start} with {index}",
            )));
        }
        if limit.is_some() && index.is_none() {
            return Err(fail(params::invalid(
                "Can only specify {limit} with {index}",
            )));
        }
        if (hash.is_some() || bolt11.is_some()) && start.unwrap_or(0) != 0 {
            return Err(fail(params::invalid(
                "Cannot use start with bolt11 or payment_hash",
            )));
        }
        let mut parts: Vec<&Part> = self
            .parts
            .values()
            .filter(|x| hash.as_ref().is_none_or(|h| &x.payment_hash == h))
            .filter(|x| bolt11.is_none() || x.bolt11 == bolt11)
            .filter(|x| status.is_none_or(|s| x.status == s))
            .collect();
        // lightningd lists a hash's parts whatever the index and limit.
        let by_hash = hash.is_some() || bolt11.is_some();
        match index.as_deref().filter(|_| !by_hash) {
            Some("updated") => {
                parts.retain(|x| x.updated_index.is_some_and(|u| u >= start.unwrap_or(0)));
                parts.sort_by_key(|x| x.updated_index);
            }
            Some(_) => {
                parts.retain(|x| x.created_index >= start.unwrap_or(0));
                parts.sort_by_key(|x| x.created_index);
            }
            None => parts.sort_by_key(|x| x.created_index),
        }
        if let Some(l) = limit.filter(|_| !by_hash) {
            parts.truncate(l as usize);
        }
        Ok(json!({"payments": parts.iter().map(|x| x.listing()).collect::<Vec<_>>()}))
    }

    /// `raw`: the request's `params` as the client wrote them.
    /// `check waitsendpay`: its parameters only, as lightningd's `param`
    /// stops there in check mode.
    pub fn check_waitsendpay(&self, raw: &str, developer: bool) -> Result<Value, Value> {
        match self.waitsendpay(raw, developer) {
            Wait::Answer(Err(e)) if e["code"] == -32602 => Err(e),
            _ => Ok(json!({"command_to_check": "waitsendpay"})),
        }
    }

    pub fn waitsendpay(&self, raw: &str, developer: bool) -> Wait {
        const SPEC: [(&str, bool); 4] = [
            ("payment_hash", true),
            ("timeout", false),
            ("partid", false),
            ("groupid", false),
        ];
        let (mut hash, mut timeout, mut partid, mut groupid) = (None, None, 0, None);
        let parsed = params::walk(raw, &SPEC, |i, tok| {
            let name = SPEC[i].0;
            match i {
                0 => hash = Some(params::param_sha256(developer, name, tok)?),
                1 => timeout = Some(params::param_number(developer, name, tok)?),
                2 => partid = params::param_u64(developer, name, tok)?,
                _ => groupid = Some(params::param_u64(developer, name, tok)?),
            }
            Ok(())
        });
        if let Err(f) = parsed {
            return Wait::Answer(Err(fail(f)));
        }
        let hash = hash.expect("required");
        let groupid = groupid.unwrap_or_else(|| {
            self.parts
                .values()
                .filter(|x| x.payment_hash == hash)
                .map(|x| x.groupid)
                .max()
                .unwrap_or(0)
        });
        let key = (hash.clone(), groupid, partid);
        match self.get(&key) {
            None => Wait::Answer(Err(
                json!({"code": 208, "message": format!("Never attempted payment part {partid} for '{hash}'")}),
            )),
            Some(p) => match p.status {
                Status::Complete => Wait::Answer(Ok(p.listing())),
                Status::Failed => Wait::Answer(Err(p.stored_error())),
                Status::Pending if timeout == Some(0) => Wait::Answer(Err(
                    json!({"code": 200, "message": "Timed out while waiting"}),
                )),
                Status::Pending => Wait::Pending(key, timeout),
            },
        }
    }

    /// `raw`: the request's `params` as the client wrote them. Returns the
    /// answer and the keys of the parts it deleted.
    /// `check_only`: `check delpay`, every lookup made and nothing deleted
    /// (`json_delpay` stops right before the delete in check mode).
    pub fn delpay(
        &mut self,
        raw: &str,
        developer: bool,
        check_only: bool,
    ) -> Result<(Value, Vec<Key>), Value> {
        const SPEC: [(&str, bool); 4] = [
            ("payment_hash", true),
            ("status", true),
            ("partid", false),
            ("groupid", false),
        ];
        let (mut hash, mut status, mut partid, mut groupid) = (None, None, None, None);
        params::walk(raw, &SPEC, |i, tok| {
            let name = SPEC[i].0;
            let bad = |what| params::badparam(developer, name, what, tok);
            match i {
                0 => hash = Some(params::param_sha256(developer, name, tok)?),
                // `param_payment_status_nopending`.
                1 => {
                    status = Some(match tok.text() {
                        "complete" => Status::Complete,
                        "failed" => Status::Failed,
                        "pending" => return Err(bad("Cannot delete pending status")),
                        _ => return Err(bad("should be an invoice status")),
                    })
                }
                2 => partid = Some(params::param_u64(developer, name, tok)?),
                _ => groupid = Some(params::param_u64(developer, name, tok)?),
            }
            Ok(())
        })
        .map_err(fail)?;
        let (hash, status) = (hash.expect("required"), status.expect("required"));
        if partid.is_some() != groupid.is_some() {
            return Err(fail(params::invalid(
                "Must set both partid and groupid, or neither",
            )));
        }
        let mut parts: Vec<&Part> = self
            .parts
            .values()
            .filter(|x| x.payment_hash == hash)
            .collect();
        if parts.is_empty() {
            return Err(
                json!({"code": 208, "message": format!("Unknown payment with payment_hash: {hash}")}),
            );
        }
        if let (Some(pi), Some(gi)) = (partid, groupid) {
            parts.retain(|x| x.partid == pi && x.groupid == gi);
            if parts.is_empty() {
                return Err(
                    json!({"code": 208, "message": "No payment for that payment_hash with that partid and groupid"}),
                );
            }
        }
        // lightningd names the status of the last part it passed over.
        let other = parts
            .iter()
            .rev()
            .map(|x| x.status)
            .find(|s| *s != status)
            .unwrap_or(parts[0].status);
        let doomed: Vec<Key> = parts
            .iter()
            .filter(|x| x.status == status)
            .map(|x| x.key())
            .collect();
        if doomed.is_empty() {
            // lightningd's code here is 208 (its documentation says 211).
            return Err(json!({"code": 208, "message": format!(
                "Payment with hash {hash} has {} status but it different from the one provided {}",
                other.as_str(), status.as_str())}));
        }
        if check_only {
            return Ok((json!({"command_to_check": "delpay"}), vec![]));
        }
        let listed: Vec<Value> = parts
            .iter()
            .filter(|x| x.status == status)
            .map(|x| x.listing())
            .collect();
        for k in &doomed {
            if let Some(c) = self.index.remove(k) {
                let part = self.parts.remove(&c).expect("indexed");
                // lightningd moves `deleted` for a delete of one part only
                // (`wallet_payment_delete`: "FIXME: Increment deleted
                // appropriately!" for the rest).
                if partid.is_some() {
                    self.deleted += 1;
                    self.moved("deleted", self.deleted, &part);
                }
            }
        }
        Ok((json!({ "payments": listed }), doomed))
    }
}
