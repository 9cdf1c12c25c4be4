//! Loading the index from the datastore, one shard (a hash's first three
//! hex digits) at a time: lightningd answers `listdatastore` by reading every row under
//! the key, records included, so listing the shards' parent of a large
//! ledger would keep its one thread busy for seconds.

use super::index::IndexEntry;
use super::Ledger;
use crate::error::RpcError;
use crate::store::{self, Datastore, Summary};
use cln_rpc::primitives::Sha256;

/// The index's shards: a hash's first three hex digits (the datastore
/// layout's `<hhh>`).
pub const SHARDS: usize = 4096;

/// The shard holding `hash`.
pub fn shard_of(hash: &Sha256) -> u16 {
    let b: &[u8] = hash.as_ref();
    (u16::from(b[0]) << 4) | u16::from(b[1] >> 4)
}

impl<D: Datastore> Ledger<D> {
    /// Loads the index of the shard holding `hash`, once: every per-hash
    /// answer calls this first, so answers are right before the whole
    /// index is in.
    pub async fn ensure(&self, hash: &Sha256) -> Result<(), RpcError> {
        self.ensure_shard(shard_of(hash)).await
    }

    /// Loads one shard of the index, once (`shard`: below [`SHARDS`]).
    pub async fn ensure_shard(&self, shard: u16) -> Result<(), RpcError> {
        self.shards[shard as usize]
            .get_or_try_init(|| self.load_shard(shard))
            .await
            .map(drop)
    }

    async fn load_shard(&self, shard: u16) -> Result<(), RpcError> {
        let listed = self.store.list(shard_key(shard)).await?;
        self.index_shard(listed);
        Ok(())
    }

    /// Loads several shards of the index with one round trip (those not
    /// loaded yet): a first start lists 4,096 shards, mostly empty.
    /// Returns how many entries were listed.
    pub async fn ensure_shards(&self, shards: &[u16]) -> Result<usize, RpcError> {
        let todo: Vec<u16> = shards
            .iter()
            .copied()
            .filter(|s| !self.shard_loaded(*s))
            .collect();
        if todo.is_empty() {
            return Ok(0);
        }
        let listings = self
            .store
            .list_many(todo.iter().map(|s| shard_key(*s)).collect())
            .await?;
        let count = listings.iter().map(Vec::len).sum();
        for (shard, listed) in todo.into_iter().zip(listings) {
            self.shards[shard as usize]
                .get_or_init(|| async { self.index_shard(listed) })
                .await;
        }
        Ok(count)
    }

    /// One shard's listing into the index.
    fn index_shard(&self, listed: Vec<store::Entry>) {
        let mut st = self.state();
        for e in listed {
            let Some(s) = name_of(&e, false) else {
                continue;
            };
            match st.index.parts.get(&s.key) {
                // Recorded in this run, or marked deleting: known better.
                Some(old) if old.created_index == s.created_index => continue,
                // Two attempts of one part: only a foreign writer makes
                // this; the later attempt is the part lightningd knows.
                Some(old) if old.created_index > s.created_index => {
                    log::warn!("Ignoring {}: a later attempt is recorded", s.name());
                    continue;
                }
                _ => {}
            }
            if st.tombstones.buries(&s.key, s.created_index) {
                continue; // deleted in this run; its record's delete is queued
            }
            st.index.insert(s.key, IndexEntry::stored(&s, false));
        }
    }

    /// Loads the whole index at once (for a listing of every part; the
    /// background load, paced, is catch-up's).
    pub async fn load_all(&self) -> Result<(), RpcError> {
        let shards: Vec<u16> = (0..SHARDS as u16).collect();
        for some in shards.chunks(8) {
            self.ensure_shards(some).await.map(drop)?;
        }
        Ok(())
    }

    /// Whether one shard of the index is loaded.
    pub fn shard_loaded(&self, shard: u16) -> bool {
        self.shards[shard as usize].initialized()
    }

    /// Loads the whole index from one listing of the shards' parent and one
    /// of each shard in use: the cheapest way for a small ledger. The
    /// parent's listing costs lightningd a read of every record under it,
    /// so this is only for a ledger known to be small.
    pub async fn load_small(&self) -> Result<(), RpcError> {
        for shard in self.store.list(store::parts_prefix()).await? {
            let name = shard.key.last().map(String::as_str).unwrap_or_default();
            let Ok(b) = u16::from_str_radix(name, 16) else {
                log::warn!("Skipping datastore entry {:?}: not a shard", shard.key);
                continue;
            };
            if name.len() == 3 && name == name.to_ascii_lowercase() {
                self.ensure_shard(b).await?;
            }
        }
        // The shards with no part at all are loaded too: they are empty.
        for shard in self.shards.iter() {
            let _ = shard.set(());
        }
        Ok(())
    }

    /// How many of the index's shards are loaded.
    pub fn shards_loaded(&self) -> usize {
        self.shards.iter().filter(|s| s.initialized()).count()
    }
}

fn shard_key(shard: u16) -> Vec<String> {
    let mut key = store::parts_prefix();
    key.push(format!("{shard:03x}"));
    key
}

/// The part a listed name stands for; anything else is logged and skipped.
/// Parts are keys with children (their record); deleting marks are values.
pub(super) fn name_of(e: &store::Entry, is_mark: bool) -> Option<Summary> {
    if e.generation.is_some() != is_mark {
        log::warn!("Skipping datastore entry {:?}: not paystate's", e.key);
        return None;
    }
    let name = e.key.last().map(String::as_str).unwrap_or_default();
    Summary::parse(name)
        .map_err(|why| log::warn!("Skipping datastore entry {:?}: {why}", e.key))
        .ok()
}
