//! A page of records: the records of up to 64 `created_index` values,
//! appended one after the other as the parts become terminal, and the
//! marks of those deleted since, appended the same way. lightningd appends
//! to a datastore value in one call (`create-or-append`), so recording a
//! part, or many parts of one page, is one write, and so is a delete.
//!
//! An item is its slot (`created_index % 64`), its length, and that many
//! bytes: a record ([`Record`]), or none for a delete. What a page holds
//! is its items read in order: a slot's record until a delete of the slot
//! (a slot's record appended twice, after a crash, is one record).

use super::record::Record;
use crate::store::PAGE;
use std::collections::BTreeMap;

/// A record's item.
pub fn record_item(slot: u8, record: &Record) -> Vec<u8> {
    let bytes = record.encode();
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(slot);
    // A record is at most 90 bytes (record.rs).
    out.push(u8::try_from(bytes.len()).expect("a record fits an item"));
    out.extend(bytes);
    out
}

/// A delete's item.
pub fn delete_item(slot: u8) -> Vec<u8> {
    vec![slot, 0]
}

/// A page read: the records it holds by slot, how many items it has, and
/// what could not be read (the items after damage are not known).
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub records: BTreeMap<u8, Record>,
    pub items: usize,
    pub damage: Option<String>,
}

pub fn read(bytes: &[u8]) -> Read {
    let mut out = Read::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let [slot, len, ..] = rest[..] else {
            out.damage = Some("an item cut short".into());
            return out;
        };
        let len = usize::from(len);
        if u64::from(slot) >= PAGE {
            out.damage = Some(format!("slot {slot} past the page"));
            return out;
        }
        let Some(body) = rest.get(2..2 + len) else {
            out.damage = Some("an item cut short".into());
            return out;
        };
        if len == 0 {
            out.records.remove(&slot);
        } else {
            match Record::decode(body) {
                Ok(r) => {
                    out.records.insert(slot, r);
                }
                Err(why) => {
                    out.damage = Some(format!("slot {slot}: {why}"));
                    return out;
                }
            }
        }
        out.items += 1;
        rest = &rest[2 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Part, Status};
    use crate::fakes::payment;

    fn record(n: u8) -> Record {
        Record::of(&Part {
            payment: payment(n, Status::Complete),
            failure: None,
        })
    }

    #[test]
    fn items_fold_in_order() {
        let page = [
            record_item(1, &record(1)),
            record_item(2, &record(2)),
            delete_item(1),
            record_item(2, &record(2)),
            record_item(5, &record(5)),
        ]
        .concat();
        let r = read(&page);
        assert_eq!(r.damage, None);
        assert_eq!(r.items, 5);
        assert_eq!(r.records.keys().copied().collect::<Vec<_>>(), [2, 5]);
        assert_eq!(r.records[&5], record(5));
    }

    #[test]
    fn damage_keeps_what_came_before() {
        let good = record_item(3, &record(3));
        for (bad, why) in [
            ([good.clone(), vec![7]].concat(), "cut short"),
            ([good.clone(), vec![64, 0]].concat(), "past the page"),
            ([good.clone(), vec![4, 3, 1, 2]].concat(), "cut short"),
            ([good.clone(), vec![4, 1, 0xff]].concat(), "slot 4"),
        ] {
            let r = read(&bad);
            assert!(
                r.damage.as_deref().is_some_and(|d| d.contains(why)),
                "{:?}",
                r.damage
            );
            assert_eq!(r.records.keys().copied().collect::<Vec<_>>(), [3]);
        }
    }
}
