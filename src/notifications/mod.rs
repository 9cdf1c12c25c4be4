//! `sendpay_success` and `sendpay_failure`: each answers the part's
//! waiters, in the order lightningd sent them, then records the part's
//! terminal state in the ledger ([`queue`] keeps their order). Malformed
//! payloads are logged and skipped.

use crate::app::App;
use crate::domain::{Answer, Part};
use crate::ledger::Recorded;
use crate::node::Node;
use crate::store::Datastore;
use serde_json::Value;
use std::sync::Arc;

pub mod queue;

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

/// Both steps, one after the other (the unit tests' way).
pub async fn handle<D: Datastore, N: Node>(app: &App<D, N>, topic: Topic, params: &Value) {
    if let Some(part) = resolve(app, topic, params) {
        record(app, topic, part, params).await;
    }
}

/// The first step, to be taken for each notification in the order
/// lightningd sent them (never awaits): the part's waiters get its
/// outcome. So a waiter woken by one notification finds every waiter of an
/// earlier one answered already (`paystate-waitpay` relies on it). Returns
/// the part, to be recorded; `None` for a malformed payload (logged).
pub fn resolve<D: Datastore, N: Node>(
    app: &App<D, N>,
    topic: Topic,
    params: &Value,
) -> Option<Arc<Part>> {
    let parsed = match topic {
        Topic::Success => Part::from_success_notification(params),
        Topic::Failure => Part::from_failure_notification(params),
    };
    let part = match parsed {
        Ok(mut p) => {
            if let Some(f) = &mut p.failure {
                f.seen_at = Some(crate::domain::now());
            }
            Arc::new(p)
        }
        Err(why) => {
            log::warn!("Skipping malformed {} notification ({why})", topic.name());
            return None;
        }
    };
    // The outcome is lightningd's word, final whether or not the record is
    // ever written: waiters get it now, before anything else, and in the
    // form lightningd's own waiters get it.
    app.ledger
        .wake(&part.key(), || answer(topic, &part, params));
    app.signals.note_resolved();
    Some(part)
}

/// The second step: the part recorded in the ledger, which answers any
/// waiter that registered since [`resolve`].
pub async fn record<D: Datastore, N: Node>(
    app: &App<D, N>,
    topic: Topic,
    part: Arc<Part>,
    params: &Value,
) {
    let key = part.key();
    // A failure notification lacks `updated_index` and `completed_at`:
    // answers take them from the node's row; the record keeps the time
    // paystate learned of it (`seen_at`), for failure statistics.
    match app
        .ledger
        .record_as(part.clone(), || answer(topic, &part, params))
        .await
    {
        Ok(Recorded::New) => log::debug!("Recorded {} of {key}", topic.name()),
        Ok(Recorded::Duplicate) => log::debug!("Duplicate {} of {key} ignored", topic.name()),
        Ok(Recorded::Deleting) => log::debug!("{} of {key} ignored: deleted", topic.name()),
        // The part stays terminal in the node: the next waitsendpay on it,
        // or the reconciliation this asks for, imports it.
        Err(e) => {
            log::warn!(
                "Could not record {} of {key}: {} ({})",
                topic.name(),
                e.message,
                e.code
            );
            app.signals.ask_reconciliation();
        }
    }
}

/// A waiter's answer: for a failure, the payload as lightningd sent it.
fn answer(topic: Topic, part: &Part, params: &Value) -> Answer {
    match topic {
        Topic::Success => part.waitsendpay_answer(),
        Topic::Failure => {
            Part::failure_notification_answer(params).map_or_else(|| part.waitsendpay_answer(), Err)
        }
    }
}
