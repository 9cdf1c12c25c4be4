//! A row of the payments table: a part, its status and stored failure, and
//! how lightningd lists it.

use crate::params::Fail;
use serde_json::{json, Map, Value};

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
