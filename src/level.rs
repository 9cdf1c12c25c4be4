//! The level mark: where the ledger stood level with the node's table
//! when paystate last stopped with lightningd.
//!
//! A restart's only way to learn what happened while paystate was away is
//! to walk the node's whole table (at a million parts, minutes of
//! lightningd's time). Yet across a restart of lightningd nothing happens
//! without paystate: lightningd stops its JSON-RPC and its channels before
//! it tells plugins to shut down, and paystate is started again with it.
//! So at lightningd's shutdown, if the ledger holds exactly the node's
//! terminal parts (every notification recorded, every delete followed, no
//! reconciliation owed), paystate writes the node's three `sendpays`
//! indexes under `["paystate", "v4", "level"]`. The next start takes the
//! mark (deleting it, so that a crash later leaves none) and, if the
//! node's indexes are where the mark says, skips the walk; the deletes
//! feed opens at the mark's `deleted` index, so that none made since is
//! missed.
//!
//! What no index shows (a `delpay` without `partid` and `groupid`, made
//! while paystate was stopped by `plugin stop`, or run without it) is why
//! the mark is written only when lightningd itself stops, and taken only
//! at lightningd's start: a `plugin stop` leaves no mark.

use crate::error::RpcError;
use crate::store::{self, Datastore};
use serde::{Deserialize, Serialize};

/// The node's `sendpays` indexes the ledger was level with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl Level {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("three numbers serialize")
    }

    /// The mark as written; an error names what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Level, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable level mark: {e}"))
    }

    /// Whether the node's table is as it was at the mark, as far as its
    /// indexes tell (a delete since is also the feed's to report, as
    /// missed: that asks for the pass again, harmlessly).
    pub fn holds(&self, now: Level) -> bool {
        *self == now
    }
}

/// Takes the mark from the datastore: returns it and deletes it, so that
/// only a clean stop after this start can leave one. One that cannot be
/// read is deleted too and taken as none (the walk is then made).
pub async fn take<D: Datastore>(store: &D) -> Result<Option<Level>, RpcError> {
    let key = store::level_key();
    let Some(entry) = store
        .list(key.clone())
        .await?
        .into_iter()
        .find(|e| e.key == key)
    else {
        return Ok(None);
    };
    store.delete(key, None).await?;
    match entry.value.as_deref().map(Level::decode) {
        Some(Ok(level)) => Ok(Some(level)),
        Some(Err(why)) => {
            log::warn!("{why}; reconciling with the node's whole table");
            Ok(None)
        }
        None => {
            log::warn!(
                "The level mark has children, not a value; reconciling with the node's whole table"
            );
            Ok(None)
        }
    }
}

/// Writes the mark (after [`take`] at this start, none is there).
pub async fn put<D: Datastore>(store: &D, level: Level) -> Result<(), RpcError> {
    store
        .create(store::level_key(), level.encode())
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::FakeDatastore;

    #[tokio::test]
    async fn a_mark_is_taken_once() {
        let ds = FakeDatastore::default();
        assert_eq!(take(&ds).await.unwrap(), None);
        let l = Level {
            created: 3,
            updated: 2,
            deleted: 1,
        };
        put(&ds, l).await.unwrap();
        assert_eq!(take(&ds).await.unwrap(), Some(l));
        assert_eq!(take(&ds).await.unwrap(), None);
    }

    #[test]
    fn a_mark_reads_back_and_holds_only_where_nothing_moved() {
        let l = Level {
            created: 1_000_000,
            updated: 999_998,
            deleted: 7,
        };
        assert_eq!(Level::decode(&l.encode()), Ok(l));
        assert!(l.holds(l));
        for moved in [
            Level {
                created: 1_000_001,
                ..l
            },
            Level {
                updated: 999_999,
                ..l
            },
            Level { deleted: 8, ..l },
        ] {
            assert!(!l.holds(moved), "{moved:?}");
        }
    }

    #[test]
    fn an_unreadable_mark_says_so() {
        let e = Level::decode(b"{\"created\":1}").unwrap_err();
        assert!(e.contains("level mark"), "{e}");
        assert!(Level::decode(b"\x00\x01").is_err());
    }
}
