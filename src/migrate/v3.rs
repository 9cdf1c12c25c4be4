//! Layout v3 (paystate 0.2) kept each part's whole listing as JSON under
//! `["paystate", "v3", "parts", "<hhh>", "<name>", "record"]`, `<name>`
//! spelling `<payment_hash>-<groupid>-<partid>-<created_index>-<status>`
//! and `<hhh>` the hash's first three hex digits (4,096 shards), and marks
//! of deletes in progress under `["paystate", "v3", "deleting", "<name>"]`.
//! Records are read fifty at a time and their copies held, by v4 page,
//! up to a budget; then the copies are written (a page once for all its
//! records held) and only then the originals deleted. A crash in between
//! leaves originals whose copies may be written again: harmless (a record
//! appended twice is one, page.rs). Marks move as they are.
//!
//! lightningd's floor for this (bench: a client that only reads and
//! deletes each row) is some 750 parts/s: every v3 record costs it a
//! `listdatastore` and a `deldatastore`, each echoing the ~1.2 KB record
//! back as hex and as text. Held copies keep paystate's own writes to a
//! fraction of a call a part: the walk by hash scatters a shard's parts
//! over every page, so a copy written at once cost a page append each.

use super::{create, delete, deleted, moved_from};
use crate::domain::Part;
use crate::error::RpcError;
use crate::ledger::marks::{mark_key, v3, Name};
use crate::ledger::page;
use crate::ledger::record::Record;
use crate::store::{self, Datastore, Entry, Op};
use std::collections::BTreeMap;

/// A v3 record as JSON: the part, whole.
pub fn encode(part: &Part) -> Vec<u8> {
    serde_json::to_vec(part).expect("a part always serializes")
}

/// Shards listed in one round trip, at most (mostly empty on a small
/// ledger), and the names a listing is to bring: lightningd reads every
/// row under a shard, values and all (~130 µs a v3 row).
const SHARDS_AT_ONCE: usize = 64;
const NAMES_AT_ONCE: usize = 250;

/// Records read, or deleted, or pages written, a step: 50 calls to a
/// commit are some 20-30 ms of lightningd's time.
const MOVED_AT_ONCE: usize = 50;

/// Bytes of copies (and of the names of their originals) held before they
/// are written: at a million parts, each page is then written some 15
/// times instead of 64, for ~10 MiB of memory at most.
const HELD_BYTES: usize = 8 << 20;

/// Written once no v3 entry is left (or none was there): later starts
/// skip the walk of v3's shards.
fn moved_key() -> Vec<String> {
    let mut k = store::layout_prefix();
    k.push("v3-moved".into());
    k
}

/// Whether the mark says that no earlier layout's entry is left.
pub async fn all_moved<D: Datastore>(ds: &D) -> Result<bool, RpcError> {
    let done = moved_key();
    Ok(ds.list(done.clone()).await?.iter().any(|e| e.key == done))
}

/// Migrates every v3 entry; returns how many parts moved (`fresh`: v1 or
/// v2 records were just given v3's names).
/// Entries that are not v3 parts are left where they are, with a warning.
pub async fn from_v3<D: Datastore>(ds: &D, fresh: bool) -> Result<usize, RpcError> {
    let done = moved_key();
    // Whether there is anything to move: one row read (a walk of the
    // 4,096 shards took a first start without v3 1.2-1.7 s of a real
    // node's; on PostgreSQL each listing fetches every row after it).
    if !fresh && !ds.has_children(v3(&[])).await? {
        create(ds, done, b"v3 moved".to_vec()).await?;
        return Ok(0);
    }
    // Not a listing of "v3" itself: lightningd reads every row under a
    // key to list its children (1.3 s of its time, in one call, at 20,000
    // v3 records). The shards are listed instead, each reading its own
    // rows.
    let mut held = Held::default();
    let shards: Vec<Vec<String>> = (0..4096u16)
        .map(|s| v3(&["parts", &format!("{s:03x}")]))
        .collect();
    let (mut next, mut at_once) = (0, 1);
    while next < shards.len() {
        let some = &shards[next..shards.len().min(next + at_once)];
        next += some.len();
        let names: Vec<Entry> = paced(ds.list_many(some.to_vec())).await?.concat();
        // As many shards as make some NAMES_AT_ONCE names by these.
        let per_shard = names.len().div_ceil(some.len()).max(1);
        at_once = (NAMES_AT_ONCE / per_shard).clamp(1, (2 * at_once).min(SHARDS_AT_ONCE));
        for chunk in names.chunks(MOVED_AT_ONCE) {
            paced(read_records(ds, chunk, &mut held)).await?;
            if held.bytes >= HELD_BYTES {
                held.write_then_delete(ds).await?;
            }
        }
    }
    let moved = held.write_then_delete(ds).await?;
    for e in ds.list(v3(&["deleting"])).await? {
        let name = e.key.last().map(String::as_str).unwrap_or_default();
        match Name::parse(name) {
            Ok(n) => {
                create(ds, mark_key(&n), b"deleting".to_vec()).await?;
                delete(ds, e.key).await?;
            }
            Err(why) => log::warn!("Not migrating {:?}: {why}", e.key),
        }
    }
    create(ds, done, b"v3 moved".to_vec()).await?;
    Ok(moved_from("v3", moved))
}

/// `step`, then a rest half as long as it took, as catch-up's steps
/// rest, so that lightningd's other commands get their turn.
async fn paced<T>(step: impl std::future::Future<Output = T>) -> T {
    let began = tokio::time::Instant::now();
    let out = step.await;
    tokio::time::sleep(began.elapsed() / 2).await;
    out
}

/// Copies read and not yet written, by v4 page, and their originals.
#[derive(Default)]
struct Held {
    pages: BTreeMap<u64, Vec<u8>>,
    originals: Vec<Name>,
    bytes: usize,
    /// Originals deleted so far.
    moved: usize,
}

impl Held {
    fn add(&mut self, name: Name, record: &Record) {
        let (page, slot) = store::page_of(name.created_index);
        let item = page::record_item(slot, record);
        self.bytes += item.len() + std::mem::size_of::<Name>();
        self.pages.entry(page).or_default().extend(item);
        self.originals.push(name);
    }

    /// Writes the copies held (one append to each page), then deletes
    /// their originals; returns how many parts moved in all.
    async fn write_then_delete<D: Datastore>(&mut self, ds: &D) -> Result<usize, RpcError> {
        // Taken a step at a time, not cloned: up to HELD_BYTES of values.
        let mut copies = std::mem::take(&mut self.pages)
            .into_iter()
            .map(|(page, value)| Op::Append {
                key: store::page_key(page),
                value,
            })
            .peekable();
        while copies.peek().is_some() {
            let step: Vec<Op> = copies.by_ref().take(MOVED_AT_ONCE).collect();
            for r in paced(ds.apply(step)).await? {
                r?;
            }
        }
        let originals = std::mem::take(&mut self.originals);
        for chunk in originals.chunks(MOVED_AT_ONCE) {
            let deletes = chunk
                .iter()
                .map(|n| Op::Delete {
                    key: n.record_key(),
                })
                .collect();
            for r in paced(ds.apply(deletes)).await? {
                deleted(r)?;
            }
        }
        self.bytes = 0;
        self.moved += originals.len();
        Ok(self.moved)
    }
}

/// One batch of v3 names: their records read (one round trip) and their
/// copies held.
async fn read_records<D: Datastore>(
    ds: &D,
    names: &[Entry],
    held: &mut Held,
) -> Result<(), RpcError> {
    let parsed: Vec<(Name, Vec<String>)> = names
        .iter()
        .filter_map(|e| {
            let name = e.key.last().map(String::as_str).unwrap_or_default();
            match Name::parse(name) {
                Ok(n) => Some((n, n.record_key())),
                Err(why) => {
                    log::warn!("Not migrating {:?}: {why}", e.key);
                    None
                }
            }
        })
        .collect();
    let records = ds
        .list_many(parsed.iter().map(|(_, k)| k.clone()).collect())
        .await?;
    for ((name, key), listed) in parsed.into_iter().zip(records) {
        let part = listed
            .iter()
            .find(|e| e.key == key)
            .and_then(Entry::string)
            .ok_or_else(|| "no record".to_string())
            .and_then(|s| serde_json::from_str::<Part>(s).map_err(|e| e.to_string()))
            .and_then(|p| match Name::of(&p) == name {
                true => Ok(p),
                false => Err("its fields disagree with its name".into()),
            });
        match part {
            Ok(p) => held.add(name, &Record::of(&p)),
            Err(why) => log::warn!("Not migrating {key:?}: {why}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Failure, Status};
    use crate::fakes::{payment, FakeDatastore};
    use crate::ledger::Ledger;
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_v3_ledger_moves_with_its_failures_and_twice_is_harmless() {
        let ds = Arc::new(FakeDatastore::default());
        let failed = Part {
            payment: payment(2, Status::Failed),
            failure: Some(Failure {
                code: 204,
                message: "failed".into(),
                details: json!({"failcode": 4103, "erring_index": 1})
                    .as_object()
                    .unwrap()
                    .clone(),
                seen_at: None,
            }),
        };
        let going = Part {
            payment: payment(3, Status::Complete),
            failure: None,
        };
        let parts: Vec<Part> = (4..250)
            .map(|n| Part {
                payment: payment(n, Status::Complete),
                failure: None,
            })
            .chain([failed.clone(), going.clone()])
            .collect();
        {
            let mut e = ds.entries.lock().unwrap();
            for p in &parts {
                e.insert(Name::of(p).record_key(), (0, encode(p)));
            }
            e.insert(Name::of(&going).v3_mark(), (0, b"deleting".to_vec()));
            // Not a part: left where it is.
            e.insert(v3(&["parts", "abc", "junk", "record"]), (0, b"{}".to_vec()));
        }
        assert_eq!(from_v3(&ds, false).await.unwrap(), 248);
        assert_eq!(
            from_v3(&ds, false).await.unwrap(),
            0,
            "nothing left to move"
        );
        let left: Vec<Vec<String>> = ds
            .entries
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k[1] != store::LAYOUT_VERSION)
            .cloned()
            .collect();
        assert_eq!(left, [v3(&["parts", "abc", "junk", "record"])]);
        let stored = ds.entries.lock().unwrap()[&store::page_key(0)].1.clone();
        let r = page::read(&stored).records[&2].clone();
        assert_eq!(
            (r.key, r.status, r.failure.failcode),
            (failed.key(), Status::Failed, Some(4103))
        );
        let (ledger, interrupted) = Ledger::load(ds).await.unwrap();
        assert_eq!(interrupted, vec![going.key()], "a delete under way stays");
        ledger.load_all(10).await.unwrap();
        assert_eq!(ledger.counts().complete, 247);
        assert_eq!(ledger.counts().failed, 1);
    }
}
