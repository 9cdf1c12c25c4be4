//! `sendpay_success` and `sendpay_failure`: each records a part's terminal
//! state in the ledger. Malformed payloads are logged and skipped.

use crate::app::App;
use crate::domain::Part;
use crate::ledger::Recorded;
use crate::node::Node;
use crate::store::Datastore;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Success,
    Failure,
}

impl Topic {
    pub fn name(self) -> &'static str {
        match self {
            Topic::Success => "sendpay_success",
            Topic::Failure => "sendpay_failure",
        }
    }
}

pub async fn handle<D: Datastore, N: Node>(app: &App<D, N>, topic: Topic, params: &Value) {
    let parsed = match topic {
        Topic::Success => Part::from_success_notification(params),
        Topic::Failure => Part::from_failure_notification(params),
    };
    let part = match parsed {
        Ok(p) => Arc::new(p),
        Err(why) => {
            log::warn!("Skipping malformed {} notification ({why})", topic.name());
            return;
        }
    };
    let key = part.key();
    // The outcome is lightningd's word, final whether or not the record is
    // ever written: waiters get it now, before anything else, and in the
    // form lightningd's own waiters get it (for a failure: the payload as
    // sent). Recording answers any waiter that registered meanwhile.
    let answer = || match topic {
        Topic::Success => part.waitsendpay_answer(),
        Topic::Failure => {
            Part::failure_notification_answer(params).map_or_else(|| part.waitsendpay_answer(), Err)
        }
    };
    app.ledger.wake(&key, answer);
    app.ledger.note_resolved();
    // A failure notification lacks `updated_index` and `completed_at`:
    // answers take them from the node's row, so the record need not.
    match app.ledger.record_as(part.clone(), answer).await {
        Ok(Recorded::New) => log::debug!("Recorded {} of {key}", topic.name()),
        Ok(Recorded::Duplicate) => log::debug!("Duplicate {} of {key} ignored", topic.name()),
        Ok(Recorded::Deleting) => log::debug!("{} of {key} ignored: deleted", topic.name()),
        // The part stays terminal in the node: the next waitsendpay on it,
        // or the next start-up, imports it.
        Err(e) => log::warn!(
            "Could not record {} of {key}: {} ({})",
            topic.name(),
            e.message,
            e.code
        ),
    }
}
