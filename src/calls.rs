//! paystate's own calls to lightningd: the ids they carry (so that the
//! hook knows them when they come back through it) and how long
//! lightningd took to answer them (kept by the node adapter as it calls,
//! shown by `paystate-status`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Every request paystate sends carries an id starting with this.
pub const INTERNAL_ID_PREFIX: &str = "paystate-internal:";

/// What paystate's calls to lightningd took in this run (round trips,
/// lightningd's queue included): the slowest, which bounds how long
/// paystate ever kept lightningd (it serves one command at a time) from
/// the node's other commands, and each method's count and total, which
/// say where paystate's cost on the node goes.
#[derive(Default)]
pub struct CallStats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    slowest: Option<(String, Duration)>,
    totals: BTreeMap<String, Total>,
}

/// One method's calls: how many, and their time together.
#[derive(Clone, Copy, Debug, Default)]
pub struct Total {
    pub count: u64,
    pub took: Duration,
}

impl CallStats {
    /// A call of `method`, answered after `took`.
    pub fn record(&self, method: &str, took: Duration) {
        self.record_batch(&[method], took);
    }

    /// Requests written together (`methods`, in order), the last answered
    /// after `took`: the slowest counts the batch whole, and each method
    /// its share of the time, by its requests.
    pub fn record_batch(&self, methods: &[&str], took: Duration) {
        let Some(first) = methods.first() else {
            return;
        };
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !s.slowest.as_ref().is_some_and(|(_, t)| took <= *t) {
            let label = match methods.len() {
                1 => first.to_string(),
                n => format!("{first} (batch of {n})"),
            };
            s.slowest = Some((label, took));
        }
        let share = took / methods.len() as u32;
        for method in methods {
            let total = match s.totals.get_mut(*method) {
                Some(t) => t,
                None => s.totals.entry(method.to_string()).or_default(),
            };
            total.count += 1;
            total.took += share;
        }
    }

    pub fn slowest(&self) -> Option<(String, Duration)> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .slowest
            .clone()
    }

    /// Each method's total so far, by name.
    pub fn totals(&self) -> BTreeMap<String, Total> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .totals
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_slowest_and_each_methods_totals() {
        let stats = CallStats::default();
        let ms = Duration::from_millis;
        stats.record("listsendpays", ms(3));
        let batch = ["datastore", "datastore", "deldatastore", "datastore"];
        stats.record_batch(&batch, ms(12));
        stats.record("listsendpays", ms(2));
        stats.record_batch(&[], ms(99));
        let slowest = ("datastore (batch of 4)".to_string(), ms(12));
        assert_eq!(stats.slowest(), Some(slowest));
        let totals: Vec<(String, u64, Duration)> = stats
            .totals()
            .into_iter()
            .map(|(m, t)| (m, t.count, t.took))
            .collect();
        let want = [
            ("datastore", 3, 9),
            ("deldatastore", 1, 3),
            ("listsendpays", 2, 5),
        ]
        .map(|(m, c, t)| (m.to_string(), c, ms(t)));
        assert_eq!(totals, want);
    }
}
