//! One answer of `wait` on the `sendpays` subsystem (`lightningd/wait.c`):
//! the index's value, and the move's details when the wait was pending as
//! the index moved (a wait whose value is already reached gets the number
//! only).

use crate::domain::{PartKey, Status};
use crate::error::RpcError;
use serde_json::{json, Value};

/// A `wait` on the `sendpays` index `index` for `nextvalue` (0: answered at
/// once with the current value).
pub fn params(index: &str, nextvalue: u64) -> Value {
    json!({"subsystem": "sendpays", "indexname": index, "nextvalue": nextvalue})
}

/// The answer of a `wait` on index `index`.
pub struct Event {
    pub value: u64,
    /// The part that moved the index, and its status, where said.
    pub part: Option<(PartKey, Option<Status>)>,
}

impl Event {
    /// An answer without the index's value is an error naming it: taken
    /// for 0, it would reopen the deletes window at 1.
    pub fn of(answer: &Value, index: &str) -> Result<Event, RpcError> {
        let Some(value) = answer.get(index).and_then(Value::as_u64) else {
            return Err(RpcError::lightningd(format!(
                "lightningd's answer to wait on sendpays {index} lacks its value: {answer}"
            )));
        };
        // v25.05 and later put the details under the subsystem's name,
        // earlier releases under `details`.
        let details = answer.get("sendpays").or_else(|| answer.get("details"));
        let part = details.and_then(|d| {
            let key = PartKey {
                payment_hash: d.get("payment_hash")?.as_str()?.parse().ok()?,
                groupid: d.get("groupid")?.as_u64()?,
                partid: d.get("partid")?.as_u64()?,
            };
            let status = d
                .get("status")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            Some((key, status))
        });
        Ok(Event { value, part })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "73b852b95ffd6857a27299f67bde6dcc10ddcaa1562354a49dee265db9b7edf5";

    #[test]
    fn details_under_either_name_or_the_number_only() {
        for name in ["sendpays", "details"] {
            let e = Event::of(
                &json!({"subsystem": "sendpays", "deleted": 7, name: {
                    "status": "failed", "partid": 2, "groupid": 3, "payment_hash": H}}),
                "deleted",
            )
            .unwrap();
            let (key, status) = e.part.expect("details");
            assert_eq!((e.value, key.groupid, key.partid), (7, 3, 2));
            assert_eq!(key.payment_hash.to_string(), H);
            assert_eq!(status, Some(Status::Failed));
        }
        let e = Event::of(&json!({"subsystem": "sendpays", "created": 4}), "created").unwrap();
        assert_eq!((e.value, e.part.is_none()), (4, true));
    }

    #[test]
    fn an_answer_without_the_value_is_an_error_naming_it() {
        for bad in [
            json!({"subsystem": "sendpays"}),
            json!({"subsystem": "sendpays", "deleted": "7"}),
            json!({"subsystem": "sendpays", "created": 7}),
        ] {
            let e = Event::of(&bad, "deleted").err().expect("an error");
            assert!(e.message.contains("lacks its value"), "{}", e.message);
            assert!(e.message.contains("sendpays"), "{}", e.message);
        }
    }
}
