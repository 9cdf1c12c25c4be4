//! paystate: Core Lightning's `waitsendpay` and `delpay`, served by a plugin
//! from a payment ledger kept in the node's datastore.
//!
//! - [`domain`]: payment parts, statuses and failures; [`pays`]: a whole
//!   payment as `listpays` shows it, and whole payments paged;
//!   [`failstats`]: failed parts counted by channel, node or failcode
//!   ([`failcodes`]: their names).
//! - [`params`]: lightningd-style parameter parsing.
//! - [`store`], [`node`]: the ports to the node's datastore and payment table;
//!   [`rpc`] implements both over lightningd's socket, timing its calls
//!   ([`calls`]).
//! - [`ledger`]: the in-memory index over the datastore, the waiters, and
//!   the writes behind; [`signals`]: what the tasks tell each other.
//! - [`commands`], [`hook`]: the command handlers (one table) and the
//!   `rpc_command` hook; [`output`]: what paystate writes to lightningd.
//! - [`notifications`]: `sendpay_success`/`sendpay_failure` recorded;
//!   [`follow`]: the node's deletes followed.
//! - [`catchup`]: start-up catch-up and reconciliation with the node
//!   ([`level`]: the mark that lets a restart skip it);
//!   [`import`]: a node row brought into the ledger (catch-up's and the
//!   answers');
//!   [`migrate`]: earlier datastore layouts.
//! - [`stop`]: a clean stop, and the level mark it leaves.
//! - [`release`]: what the lightningd paystate runs in can do; [`options`]:
//!   the takeover switch, as an option and in the environment.

pub mod app;
pub mod calls;
pub mod catchup;
pub mod commands;
pub mod domain;
pub mod error;
pub mod failcodes;
pub mod failstats;
pub mod follow;
pub mod hook;
pub mod import;
pub mod ledger;
pub mod level;
pub mod migrate;
pub mod node;
pub mod notifications;
pub mod options;
pub mod output;
pub mod params;
pub mod pays;
pub mod release;
pub mod rpc;
pub mod signals;
pub mod stop;
pub mod store;

#[cfg(test)]
mod fakes;
