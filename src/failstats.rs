//! Failure statistics (`paystate-failures`): failed parts counted by the
//! channel, the node or the failure code lightningd reported for them.
//! Pure: the failed parts in, the rows out.

use crate::failcodes;
use crate::ledger::failures::Failed;
use crate::ledger::record::scid_string;
use crate::store::to_hex;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the rows count by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum By {
    /// `erring_channel` and `erring_direction`.
    #[default]
    Channel,
    /// `erring_node`.
    Node,
    /// `failcode` (with lightningd's `failcodename`).
    Failcode,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            By::Channel => "channel",
            By::Node => "node",
            By::Failcode => "failcode",
        }
    }
}

/// A row's key: the fields counted by, each absent where lightningd
/// reported none (or paystate imported the part without its failure).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Channel(Option<u64>, Option<u64>),
    Node(Option<[u8; 33]>),
    Failcode(Option<u64>),
}

#[derive(Default)]
struct Row {
    count: u64,
    payments: HashSet<u64>,
    first: u64,
    last: u64,
    failcodes: BTreeMap<u64, u64>,
}

/// The rows, most failures first (then by key): each with its count, the
/// distinct payments (hash and group) it holds, the first and last time
/// seen and, unless counted by failcode, the failcodes seen.
pub fn rows<'a>(by: By, failed: impl IntoIterator<Item = &'a Failed>) -> Vec<Value> {
    let mut rows: HashMap<Key, Row> = HashMap::new();
    for f in failed {
        let key = match by {
            By::Channel => Key::Channel(f.erring_channel, f.erring_direction),
            By::Node => Key::Node(f.erring_node),
            By::Failcode => Key::Failcode(f.failcode),
        };
        let at = f.at;
        let row = rows.entry(key).or_insert_with(|| Row {
            first: at,
            last: at,
            ..Row::default()
        });
        row.count += 1;
        row.payments.insert(f.payment);
        row.first = row.first.min(at);
        row.last = row.last.max(at);
        if let Some(code) = f.failcode {
            *row.failcodes.entry(code).or_default() += 1;
        }
    }
    let mut rows: Vec<(Key, Row)> = rows.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| b.count.cmp(&a.count).then_with(|| ka.cmp(kb)));
    rows.into_iter().map(|(k, r)| row_json(&k, &r)).collect()
}

fn row_json(key: &Key, row: &Row) -> Value {
    let mut m = Map::new();
    match key {
        Key::Channel(channel, direction) => {
            if let Some(c) = channel {
                m.insert("erring_channel".into(), json!(scid_string(*c)));
            }
            if let Some(d) = direction {
                m.insert("erring_direction".into(), json!(d));
            }
        }
        Key::Node(node) => {
            if let Some(n) = node {
                m.insert("erring_node".into(), json!(to_hex(n)));
            }
        }
        Key::Failcode(code) => {
            if let Some(c) = code {
                m.insert("failcode".into(), json!(c));
                if let Some(name) = failcodes::name(*c) {
                    m.insert("failcodename".into(), json!(name));
                }
            }
        }
    }
    m.insert("count".into(), json!(row.count));
    m.insert("payments".into(), json!(row.payments.len()));
    m.insert("first_at".into(), json!(row.first));
    m.insert("last_at".into(), json!(row.last));
    if !matches!(key, Key::Failcode(_)) {
        let codes: Vec<Value> = row
            .failcodes
            .iter()
            .map(|(code, count)| {
                let mut c = Map::new();
                c.insert("failcode".into(), json!(code));
                if let Some(name) = failcodes::name(*code) {
                    c.insert("failcodename".into(), json!(name));
                }
                c.insert("count".into(), json!(count));
                Value::Object(c)
            })
            .collect();
        m.insert("failcodes".into(), Value::Array(codes));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(hash: u8, groupid: u64, at: u64, channel: Option<u64>, code: u64) -> Failed {
        Failed {
            created_index: at,
            at,
            payment: u64::from(hash) << 32 | groupid,
            failcode: Some(code),
            erring_node: None,
            erring_channel: channel,
            erring_direction: channel.map(|_| 1),
        }
    }

    #[test]
    fn parts_are_counted_by_channel_with_their_payments_and_codes() {
        let scid = 103 << 40 | 1 << 16;
        let parts = [
            failed(1, 1, 10, Some(scid), 4103),
            failed(1, 1, 12, Some(scid), 4103),
            failed(2, 1, 11, Some(scid), 16399),
            failed(3, 1, 20, None, 8194),
        ];
        let rows = rows(By::Channel, &parts);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["erring_channel"], "103x1x0");
        assert_eq!(rows[0]["erring_direction"], 1);
        assert_eq!(rows[0]["count"], 3);
        assert_eq!(
            rows[0]["payments"], 2,
            "two parts of one payment are one payment"
        );
        assert_eq!(
            (rows[0]["first_at"].clone(), rows[0]["last_at"].clone()),
            (json!(10), json!(12))
        );
        assert_eq!(
            rows[0]["failcodes"],
            json!([
                {"failcode": 4103, "failcodename": "WIRE_TEMPORARY_CHANNEL_FAILURE", "count": 2},
                {"failcode": 16399, "failcodename": "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS", "count": 1},
            ])
        );
        assert!(
            rows[1].get("erring_channel").is_none(),
            "no channel reported"
        );
        let by_code = super::rows(By::Failcode, &parts);
        assert_eq!(by_code[0]["failcode"], 4103);
        assert_eq!(by_code[0]["count"], 2);
        assert!(by_code[0].get("failcodes").is_none());
        assert_eq!(by_code.len(), 3);
    }
}
