//! A part the node reports, brought into the ledger unless it holds it
//! already; parts the node no longer reports, forgotten; and the node's
//! table read a page at a time: what catch-up and the answers share.

use crate::app::App;
use crate::domain::{Part, Payment, Status};
use crate::error::RpcError;
use crate::ledger::{Held, Recorded};
use crate::node::{Node, Page};
use crate::store::Datastore;
use cln_rpc::primitives::Sha256;

/// Parts read from the node per `listsendpays` page: ~77 µs of
/// lightningd's CPU a part, but a page of 200 took 56 ms once at a
/// million parts (400 took 43 ms just after a restart at 100,000, its
/// caches cold); no call of paystate's is to take more than 50.
pub const PAGE: u32 = 128;

/// Imports one part the node reports, unless the ledger holds it already
/// (or is deleting it). `deletes_before` is [`Signals::node_deletes`] read
/// before the node was: if a delete happened since, the part is read again
/// (under the hash's lock), so a part just deleted is not brought back.
/// A failed part is recorded without its failure's details (they are not
/// in `listsendpays`, and answers take a failed part's error from the
/// node, which keeps it as long as it keeps the part). Returns the node's
/// row of the part the ledger now holds, or `None` if it is not to be
/// answered.
///
/// [`Signals::node_deletes`]: crate::signals::Signals::node_deletes
pub async fn import<D: Datastore, N: Node>(
    app: &App<D, N>,
    payment: Payment,
    deletes_before: u64,
) -> Result<Option<Payment>, RpcError> {
    let key = payment.key();
    let _guard = app.ledger.lock(&key.payment_hash).await;
    if app.ledger.holds_attempt(&payment) {
        return Ok(Some(payment));
    }
    let payment = if app.signals.node_deletes() == deletes_before {
        payment
    } else {
        let fresh = app.node.parts_of(key.payment_hash).await?;
        match fresh.into_iter().find(|p| p.key() == key) {
            Some(p) => p,
            None => return Ok(None),
        }
    };
    if payment.status == Status::Pending {
        return Ok(None);
    }
    let part = Part {
        payment: payment.clone(),
        failure: None,
    };
    match app.ledger.record(part).await? {
        Recorded::Deleting => Ok(None),
        Recorded::New => {
            log::info!("Imported {key} from the node");
            Ok(Some(payment))
        }
        Recorded::Duplicate => Ok(Some(payment)),
    }
}

/// Forgets the parts of `held` (what the ledger held before the node's
/// rows were read) whose `created_index` `in_node` says the rows lack: the
/// node deleted them since, by whatever means (a `delpay` of a whole hash
/// moves no index, so an answer that reads the hash's rows is where
/// paystate learns of it). `hash`: theirs, where the caller knows it (a
/// late notification of such a part is then kept out too).
pub fn forget_lost<D: Datastore, N: Node>(
    app: &App<D, N>,
    hash: Option<&Sha256>,
    held: &[Held],
    in_node: impl Fn(u64) -> bool,
) {
    for h in held.iter().filter(|h| !in_node(h.created_index)) {
        match hash {
            Some(hash) => {
                app.ledger
                    .forget(&h.key(*hash), Some(h.status), Some(h.created_index));
            }
            None => {
                app.ledger.forget_held(h);
            }
        }
    }
}

/// The node's whole table, a page at a time, handed to `each`, as fast as
/// the node answers (an answer's read, not catch-up's paced one).
pub async fn node_table<D: Datastore, N: Node>(
    app: &App<D, N>,
    mut each: impl FnMut(Payment),
) -> Result<(), RpcError> {
    let mut start = 0;
    loop {
        let page = app.node.page(Page::created(start, PAGE)).await?;
        let next = next_page(&page);
        page.into_iter().for_each(&mut each);
        match next {
            Some(n) => start = n,
            None => return Ok(()),
        }
    }
}

/// Where the page after this one of the node's table starts, by
/// `created_index`; `None` after the last (a page short of [`PAGE`]).
pub fn next_page(page: &[Payment]) -> Option<u64> {
    match page.last() {
        Some(last) if page.len() == PAGE as usize => Some(last.created_index + 1),
        _ => None,
    }
}
