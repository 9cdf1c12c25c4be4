//! Payment parts, their statuses and failures: lightningd's payment model,
//! free of storage and transport.

use crate::error::{codes, RpcError};
use cln_rpc::primitives::Sha256;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// What `waitsendpay` answers for a terminal part: the payment, or the
/// failure as an error.
pub type Answer = Result<Value, RpcError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a payment part in lightningd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    pub payment_hash: Sha256,
    pub groupid: u64,
    pub partid: u64,
}

impl fmt::Display for PartKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.payment_hash, self.groupid, self.partid)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One part in `listsendpays` format. Fields are declared in the order
/// lightningd prints them; fields paystate does not know are kept as they
/// came (lightningd adds fields over time) and printed after the known ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub created_index: u64,
    pub id: u64,
    pub payment_hash: Sha256,
    pub groupid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_index: Option<u64>,
    /// lightningd omits `partid` when it is 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_msat: Option<u64>,
    pub amount_sent_msat: u64,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_preimage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bolt11: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bolt12: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erroronion: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Payment {
    pub fn key(&self) -> PartKey {
        PartKey {
            payment_hash: self.payment_hash,
            groupid: self.groupid,
            partid: self.partid,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a payment always serializes")
    }
}

/// The fields of a failure's `data` that describe the failure rather than
/// the payment: the routing failure object, or `onionreply` for code 202.
pub const FAILURE_FIELDS: [&str; 8] = [
    "erring_index",
    "failcode",
    "failcodename",
    "erring_node",
    "erring_channel",
    "erring_direction",
    "raw_message",
    "onionreply",
];

/// The time now, UNIX seconds, as lightningd stamps its rows.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a part failed, as lightningd reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// The failure fields of `data`, in the order lightningd sent them.
    #[serde(default)]
    pub details: Map<String, Value>,
    /// When paystate learned of it (UNIX seconds): a `sendpay_failure`
    /// carries no `completed_at`, and failure statistics count by time.
    /// lightningd stamps its row in the same instant.
    #[serde(skip)]
    pub seen_at: Option<u64>,
}

/// A part in a terminal state: complete, or failed with its failure (when
/// the reason is known).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// Notifications arrive wrapped in an object named after their topic;
/// lightningd before v24.x sent the payload bare.
fn unwrap_topic<'a>(params: &'a Value, topic: &str) -> &'a Value {
    match params.get(topic) {
        Some(inner @ Value::Object(_)) => inner,
        _ => params,
    }
}

fn payment_from(value: &Value) -> Result<Payment, String> {
    Payment::deserialize(value).map_err(|e| e.to_string())
}

impl Part {
    /// A `sendpay_success` notification's payload.
    pub fn from_success_notification(params: &Value) -> Result<Part, String> {
        let mut payment = payment_from(unwrap_topic(params, "sendpay_success"))?;
        if payment.payment_preimage.is_none() {
            return Err("complete payment without payment_preimage".into());
        }
        payment.status = Status::Complete;
        Ok(Part {
            payment,
            failure: None,
        })
    }

    /// A `sendpay_failure` notification's payload. lightningd sends
    /// `data.status: "pending"` for some failures: the part has failed all
    /// the same, and is recorded so.
    pub fn from_failure_notification(params: &Value) -> Result<Part, String> {
        Self::from_error(unwrap_topic(params, "sendpay_failure"))
    }

    /// What lightningd's own waiters on the part are answered when this
    /// `sendpay_failure` arrives: its payload as it stands, an error object
    /// (the part as it was before failing: `status: "pending"`, no
    /// `updated_index` or `completed_at`).
    pub fn failure_notification_answer(params: &Value) -> Option<RpcError> {
        serde_json::from_value(unwrap_topic(params, "sendpay_failure").clone()).ok()
    }

    /// A failure as an error object `{code, message, data}`: the
    /// notification's payload, or the node's own `waitsendpay` error.
    pub fn from_error(error: &Value) -> Result<Part, String> {
        let code = error
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .ok_or("failure without an integer code")?;
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .ok_or("failure without a message")?
            .to_string();
        let Some(Value::Object(data)) = error.get("data") else {
            return Err("failure without a data object".into());
        };
        let mut data = data.clone();
        let mut details = Map::new();
        // Keep lightningd's order of the failure fields, not ours.
        let keys: Vec<String> = data.keys().cloned().collect();
        for k in keys {
            if FAILURE_FIELDS.contains(&k.as_str()) {
                let v = data.shift_remove(&k).expect("key just listed");
                details.insert(k, v);
            }
        }
        let mut payment = payment_from(&Value::Object(data))?;
        payment.status = Status::Failed;
        Ok(Part {
            payment,
            failure: Some(Failure {
                code,
                message,
                details,
                seen_at: None,
            }),
        })
    }

    pub fn key(&self) -> PartKey {
        self.payment.key()
    }

    pub fn status(&self) -> Status {
        self.payment.status
    }

    /// The part in `listsendpays` format.
    pub fn listing(&self) -> Value {
        self.payment.to_json()
    }

    /// What `waitsendpay` answers for this part: the payment for a complete
    /// part, the stored error for a failed one.
    pub fn waitsendpay_answer(&self) -> Answer {
        match (self.payment.status, &self.failure) {
            (Status::Failed, Some(f)) => {
                let mut data = match self.listing() {
                    Value::Object(m) => m,
                    _ => unreachable!("a payment serializes to an object"),
                };
                for (k, v) in &f.details {
                    data.insert(k.clone(), v.clone());
                }
                Err(RpcError::new(f.code, f.message.clone()).with_data(Value::Object(data)))
            }
            (Status::Failed, None) => Err(RpcError::new(
                codes::PAY_UNSPECIFIED_ERROR,
                "Payment failure reason unknown",
            )),
            _ => Ok(self.listing()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failure_payload() -> Value {
        json!({"sendpay_failure": {"code": 204, "message": "failed: WIRE_UNKNOWN_NEXT_PEER (reply from remote)",
          "data": {"created_index": 4, "id": 4,
            "payment_hash": "40281a958944128e4c57c7183df837be6eb7f872739b25a98993cd6f19682e4f",
            "groupid": 1, "destination": "03cecbfdc68544cc596223b68ce0710c9e5d2c9cb317ee07822d95079acc703d31",
            "amount_msat": 500000, "amount_sent_msat": 501000, "created_at": 1795254167, "status": "pending",
            "erring_index": 1, "failcode": 16394, "failcodename": "WIRE_UNKNOWN_NEXT_PEER",
            "erring_node": "033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a",
            "erring_channel": "1x1x1", "erring_direction": 0, "raw_message": "400a", "future_field": [1]}}})
    }

    #[test]
    fn failure_with_pending_status_is_failed_and_keeps_every_field() {
        let part = Part::from_failure_notification(&failure_payload()).unwrap();
        assert_eq!(part.status(), Status::Failed);
        let f = part.failure.as_ref().unwrap();
        assert_eq!(f.code, 204);
        let keys: Vec<&str> = f.details.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "erring_index",
                "failcode",
                "failcodename",
                "erring_node",
                "erring_channel",
                "erring_direction",
                "raw_message"
            ]
        );
        assert_eq!(part.payment.extra.get("future_field"), Some(&json!([1])));
        let err = part.waitsendpay_answer().unwrap_err();
        assert_eq!(err.code, 204);
        assert_eq!(
            err.message,
            "failed: WIRE_UNKNOWN_NEXT_PEER (reply from remote)"
        );
        let data = err.data.unwrap();
        assert_eq!(data["status"], "failed");
        assert_eq!(data["raw_message"], "400a");
        assert_eq!(data["future_field"], json!([1]));
        assert!(
            data.get("partid").is_none(),
            "partid 0 is omitted as lightningd does"
        );
    }

    #[test]
    fn listing_keeps_lightningd_field_order() {
        let v = json!({"sendpay_success": {"created_index": 6, "id": 6,
            "payment_hash": "e9021d8a49213d956f3c7d5c0f6914228502c05122aab7b68dacc4a36b59beb6", "groupid": 1,
            "updated_index": 6, "partid": 1, "destination": "033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a",
            "amount_msat": 100000, "amount_sent_msat": 100000, "created_at": 1795254170, "completed_at": 1795254170,
            "status": "complete", "payment_preimage": "8feb3e53ed1c3d05c0eadb666e49048ba6ebf09718f5d5b5189a5d1471b3ed9d"}});
        let part = Part::from_success_notification(&v).unwrap();
        let out = part.waitsendpay_answer().unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            serde_json::to_string(&v["sendpay_success"]).unwrap()
        );
    }

    #[test]
    fn malformed_payloads_are_rejected_with_a_reason() {
        let mut bad_hash = failure_payload();
        bad_hash["sendpay_failure"]["data"]["payment_hash"] = json!("xyz");
        assert!(Part::from_failure_notification(&bad_hash).is_err());
        let mut negative = failure_payload();
        negative["sendpay_failure"]["data"]["groupid"] = json!(-1);
        assert!(Part::from_failure_notification(&negative).is_err());
        let mut no_code = failure_payload();
        no_code["sendpay_failure"]
            .as_object_mut()
            .unwrap()
            .remove("code");
        assert!(Part::from_failure_notification(&no_code).is_err());
        assert!(Part::from_success_notification(&json!({"sendpay_success": {"id": 1}})).is_err());
        assert!(Part::from_success_notification(&json!(null)).is_err());
    }

    #[test]
    fn failure_without_reason_answers_209() {
        let mut part = Part::from_failure_notification(&failure_payload()).unwrap();
        part.failure = None;
        let err = part.waitsendpay_answer().unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (209, "Payment failure reason unknown")
        );
    }
}
