//! Layout v2 (paystate 0.1) was v3 with 256 shards (`<hh>`: a hash's first
//! two hex digits) and a catch-up watermark under `["paystate", "v2",
//! "catchup"]`. Records move as they are, a hundred at a time: their
//! copies written in one batch, then the originals deleted in another.

use super::{create, created, delete, deleted, moved_from};
use crate::error::RpcError;
use crate::ledger::marks::Name;
use crate::store::{self, Datastore, Op};

fn v2(path: &[&str]) -> Vec<String> {
    let mut k = vec![store::ROOT.to_string(), "v2".into()];
    k.extend(path.iter().map(|s| s.to_string()));
    k
}

const RECORD: &str = "record";

/// Migrates every v2 entry; returns how many parts moved. Entries that are
/// not v2 parts are left where they are, with a warning.
pub async fn from_v2<D: Datastore>(ds: &D) -> Result<usize, RpcError> {
    // Lists the children of "v2" (reading each row under it): nothing on
    // a ledger that has none, once on one that has.
    if ds.list(v2(&[])).await?.is_empty() {
        return Ok(0);
    }
    let mut moved = 0;
    for shard in 0..=u8::MAX {
        let names = ds.list(v2(&["parts", &format!("{shard:02x}")])).await?;
        for chunk in names.chunks(100) {
            let (mut copies, mut originals) = (Vec::new(), Vec::new());
            for e in chunk {
                let Some(summary) = parse(&e.key) else {
                    continue;
                };
                let mut old = e.key.clone();
                old.push(RECORD.into());
                match ds.list(old.clone()).await?.pop().and_then(|r| r.value) {
                    Some(value) => {
                        copies.push(Op::Create {
                            key: summary.record_key(),
                            value,
                        });
                        originals.push(Op::Delete { key: old });
                    }
                    None => log::warn!("Not migrating {:?}: no record", e.key),
                }
            }
            for r in ds.apply(copies).await? {
                created(r)?;
            }
            moved += originals.len();
            for r in ds.apply(originals).await? {
                deleted(r)?;
            }
        }
    }
    for e in ds.list(v2(&["deleting"])).await? {
        if let Some(summary) = parse(&e.key) {
            create(ds, summary.v3_mark(), b"deleting".to_vec()).await?;
            delete(ds, e.key).await?;
        }
    }
    for e in ds.list(v2(&["catchup"])).await? {
        delete(ds, e.key).await?;
    }
    Ok(moved_from("v2", moved))
}

fn parse(key: &[String]) -> Option<Name> {
    let name = key.last().map(String::as_str).unwrap_or_default();
    Name::parse(name)
        .map_err(|why| log::warn!("Not migrating {key:?}: {why}"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Part, Status};
    use crate::fakes::{payment, FakeDatastore};
    use crate::ledger::Ledger;
    use std::sync::Arc;

    fn v2_name(s: &Name) -> Vec<String> {
        let name = s.spell();
        v2(&["parts", &name[..2], &name])
    }

    #[tokio::test]
    async fn a_v2_ledger_moves_whole_and_twice_is_harmless() {
        let ds = Arc::new(FakeDatastore::default());
        let done = Part {
            payment: payment(1, Status::Complete),
            failure: None,
        };
        let going = Name::of(&Part {
            payment: payment(2, Status::Failed),
            failure: None,
        });
        let many: Vec<Part> = (3..250)
            .map(|n| Part {
                payment: payment(n, Status::Complete),
                failure: None,
            })
            .collect();
        {
            let mut e = ds.entries.lock().unwrap();
            for p in many.iter().chain([&done]) {
                let mut k = v2_name(&Name::of(p));
                k.push(RECORD.into());
                e.insert(k, (0, super::super::v3::encode(p)));
            }
            e.insert(v2(&["deleting", &going.spell()]), (1, b"deleting".to_vec()));
            e.insert(v2(&["catchup"]), (5, br#"{"updated_index":9}"#.to_vec()));
        }
        assert_eq!(crate::migrate::run(&ds).await.unwrap(), 248);
        assert_eq!(from_v2(&ds).await.unwrap(), 0, "nothing left in v2");
        assert!(ds
            .entries
            .lock()
            .unwrap()
            .keys()
            .all(|k| k[1] == store::LAYOUT_VERSION));
        let (ledger, interrupted) = Ledger::load(ds).await.unwrap();
        assert_eq!(interrupted, vec![going.key], "a delete under way stays");
        ledger.load_all(10).await.unwrap();
        assert!(ledger.holds_attempt(&done.payment));
        assert_eq!(ledger.counts().complete, 248);
    }
}
