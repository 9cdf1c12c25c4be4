//! Layout v1 (paystate's first development versions) kept each part as one
//! value under `["paystate", "v1", "parts", "<hh>", "<hash>-<groupid>-<partid>"]`,
//! JSON `{"payment", "failure"?, "deleting"?}`, and a catch-up watermark
//! under `["paystate", "v1", "catchup"]`.

use super::v3;
use super::{create, delete, moved_from};
use crate::domain::{Failure, Part, Payment};
use crate::error::RpcError;
use crate::ledger::marks::Name;
use crate::store::{self, Datastore};
use serde::Deserialize;

#[derive(Deserialize)]
struct V1Part {
    payment: Payment,
    #[serde(default)]
    failure: Option<Failure>,
    #[serde(default)]
    deleting: bool,
}

fn v1(section: &str) -> Vec<String> {
    vec![store::ROOT.into(), "v1".into(), section.into()]
}

/// Migrates every v1 entry; returns how many parts moved. Entries that are
/// not v1 parts are left where they are, with a warning.
pub async fn from_v1<D: Datastore>(ds: &D) -> Result<usize, RpcError> {
    let mut moved = 0;
    for shard in ds.list(v1("parts")).await? {
        for e in ds.list(shard.key).await? {
            let decoded = e
                .string()
                .ok_or_else(|| "not a string".to_string())
                .and_then(|s| serde_json::from_str::<V1Part>(s).map_err(|e| e.to_string()));
            let old = match decoded {
                Ok(p) if p.payment.status != crate::domain::Status::Pending => p,
                Ok(_) => {
                    log::warn!("Not migrating {:?}: a pending part", e.key);
                    continue;
                }
                Err(why) => {
                    log::warn!("Not migrating {:?}: {why}", e.key);
                    continue;
                }
            };
            let part = Part {
                payment: old.payment,
                failure: old.failure,
            };
            let name = Name::of(&part);
            create(ds, name.record_key(), v3::encode(&part)).await?;
            if old.deleting {
                create(ds, name.v3_mark(), b"deleting".to_vec()).await?;
            }
            delete(ds, e.key).await?;
            moved += 1;
        }
    }
    // v1's catch-up watermark: no longer kept (catch-up reads the node's
    // whole table by created_index).
    if let Some(e) = ds.list(v1("catchup")).await?.pop() {
        delete(ds, e.key).await?;
    }
    Ok(moved_from("v1", moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::fakes::{payment, FakeDatastore};
    use crate::ledger::Ledger;
    use serde_json::json;
    use std::sync::Arc;

    fn v1_key(p: &Payment) -> Vec<String> {
        let h = p.payment_hash.to_string();
        let mut k = v1("parts");
        k.extend([
            h[..2].to_string(),
            format!("{h}-{}-{}", p.groupid, p.partid),
        ]);
        k
    }

    #[tokio::test]
    async fn a_v1_ledger_moves_whole_and_twice_is_harmless() {
        let ds = Arc::new(FakeDatastore::default());
        let done = payment(1, Status::Complete);
        let going = payment(2, Status::Failed);
        {
            let mut e = ds.entries.lock().unwrap();
            e.insert(
                v1_key(&done),
                (0, json!({ "payment": done }).to_string().into_bytes()),
            );
            let failure = json!({"code": 204, "message": "failed", "details": {"failcode": 4103}});
            e.insert(
                v1_key(&going),
                (
                    3,
                    json!({"payment": going, "failure": failure, "deleting": true})
                        .to_string()
                        .into_bytes(),
                ),
            );
            e.insert(v1("catchup"), (5, br#"{"updated_index":9}"#.to_vec()));
        }
        assert_eq!(crate::migrate::run(&ds).await.unwrap(), 2);
        assert_eq!(from_v1(&ds).await.unwrap(), 0, "nothing left in v1");
        assert_eq!(crate::migrate::run(&ds).await.unwrap(), 0);
        assert!(ds
            .entries
            .lock()
            .unwrap()
            .keys()
            .all(|k| k[1] == store::LAYOUT_VERSION));
        let (ledger, interrupted) = Ledger::load(ds).await.unwrap();
        assert_eq!(
            interrupted,
            vec![going.key()],
            "a delete under way stays under way"
        );
        ledger.load_all(1).await.unwrap();
        let held = ledger.attempt(&done.key()).unwrap();
        assert_eq!(
            (held.created_index, held.status),
            (done.created_index, done.status)
        );
    }
}
