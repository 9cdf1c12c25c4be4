//! paystate's own calls to lightningd: the ids they carry (so that the
//! hook knows them when they come back through it) and how long
//! lightningd took to answer them (kept by the node adapter as it calls,
//! shown by `paystate-status`).

use std::sync::Mutex;

/// Every request paystate sends carries an id starting with this.
pub const INTERNAL_ID_PREFIX: &str = "paystate-internal:";

/// The slowest call paystate has made to lightningd in this run: its
/// method and how long lightningd took to answer (round trip). lightningd
/// serves one command at a time, so this bounds how long paystate ever
/// kept it from the node's other commands.
#[derive(Default)]
pub struct CallStats {
    slowest: Mutex<Option<(String, std::time::Duration)>>,
}

impl CallStats {
    pub fn record(&self, method: &str, took: std::time::Duration) {
        let mut s = self.slowest.lock().unwrap_or_else(|p| p.into_inner());
        if !s.as_ref().is_some_and(|(_, t)| took <= *t) {
            *s = Some((method.to_string(), took));
        }
    }

    pub fn slowest(&self) -> Option<(String, std::time::Duration)> {
        self.slowest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
