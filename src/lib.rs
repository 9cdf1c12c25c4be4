//! paystate: Core Lightning's `waitsendpay` and `delpay`, served by a plugin
//! from a payment ledger kept in the node's datastore.
//!
//! - [`domain`]: payment parts, statuses and failures.
//! - [`params`]: lightningd-style parameter parsing.
//! - [`store`], [`node`]: the ports to the node's datastore and payment table;
//!   [`rpc`] implements both over lightningd's socket.
//! - [`ledger`]: the in-memory index over the datastore, and the waiters.
//! - [`commands`], [`hook`]: the command handlers and the `rpc_command` hook.
//! - [`catchup`]: start-up catch-up with the node; [`migrate`]: earlier
//!   datastore layouts.
//! - [`notifications`]: the `sendpay_success`/`sendpay_failure` handlers;
//!   [`handover`]: their waiters' answers reach lightningd before their writes.

pub mod app;
pub mod catchup;
pub mod commands;
pub mod domain;
pub mod error;
pub mod handover;
pub mod hook;
pub mod ledger;
pub mod migrate;
pub mod node;
pub mod notifications;
pub mod params;
pub mod rpc;
pub mod store;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod ledger_tests;
