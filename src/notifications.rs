//! `sendpay_success` and `sendpay_failure`: each records a part's terminal
//! state in the ledger. Malformed payloads are logged and skipped.

use crate::app::App;
use crate::domain::Part;
use crate::handover;
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
    let mut part = match parsed {
        Ok(p) => p,
        Err(why) => {
            log::warn!("Skipping malformed {} notification ({why})", topic.name());
            return;
        }
    };
    let key = part.key();
    // The outcome is lightningd's word, final whether or not the write below
    // succeeds: waiters get it now, before any round trip, and in the form
    // lightningd's own waiters get it (for a failure: the payload as sent).
    let woken = app.ledger.wake(&key, || match topic {
        Topic::Success => part.waitsendpay_answer(),
        Topic::Failure => {
            Part::failure_notification_answer(params).map_or_else(|| part.waitsendpay_answer(), Err)
        }
    });
    if woken > 0 {
        handover::after_answers(app.unread).await;
    }
    if topic == Topic::Failure {
        fill_from_node(app, &mut part).await;
    }
    let part = Arc::new(part);
    let outcome = {
        let _guard = app.ledger.lock(&key.payment_hash).await;
        app.ledger.record(part).await
    };
    match outcome {
        Ok(Recorded::New) => log::debug!("Recorded {} of {key}", topic.name()),
        Ok(Recorded::Duplicate) => log::debug!("Duplicate {} of {key} ignored", topic.name()),
        Ok(Recorded::Deleting) => log::debug!("{} of {key} ignored: being deleted", topic.name()),
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

/// A failure notification carries neither `updated_index` nor
/// `completed_at`, which lightningd's later answers show; take them from the
/// node's table (best effort).
async fn fill_from_node<D: Datastore, N: Node>(app: &App<D, N>, part: &mut Part) {
    if part.payment.updated_index.is_some() && part.payment.completed_at.is_some() {
        return;
    }
    let key = part.key();
    match app.node.parts_of(key.payment_hash).await {
        Ok(parts) => {
            if let Some(p) = parts.into_iter().find(|p| p.key() == key) {
                part.payment.updated_index = part.payment.updated_index.or(p.updated_index);
                part.payment.completed_at = part.payment.completed_at.or(p.completed_at);
            }
        }
        Err(e) => log::debug!("Could not read {key} from the node: {}", e.message),
    }
}
