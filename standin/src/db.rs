//! lightningd's database, for the stand-in run with `Options::sqlite`: the
//! datastore and the payments table in SQLite, as lightningd keeps them
//! (`wallet/db.c`, `wallet/datastore.c`), every call one transaction
//! committed at its end, so a benchmark pays what a real node pays:
//! a commit per datastore write or delete, and a `listdatastore` that
//! reads every row under its key.
//!
//! The in-memory structures still decide every answer; this keeps the
//! rows behind them, and `listdatastore` is answered from the rows it reads.

use crate::table::Part;
use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// A datastore row: its generation and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub generation: u64,
    pub data: Vec<u8>,
}

pub struct Db {
    conn: Connection,
}

/// lightningd's key column: the key's strings joined with NUL bytes
/// (`db_bind_datastore_key`), so a parent sorts right before its children.
fn key_blob(key: &[String]) -> Vec<u8> {
    key.join("\0").into_bytes()
}

fn blob_key(blob: &[u8]) -> Vec<String> {
    blob.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A database failure is reported, not raised: the only one expected is a
/// call still under way while a dropped node's folder is removed, and the
/// maps beside the rows still answer. Tests compare the rows with the maps.
fn report<T>(what: &str, r: rusqlite::Result<T>) -> Option<T> {
    r.map_err(|e| eprintln!("stand-in db: {what}: {e}")).ok()
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        // lightningd's sqlite3 settings: rollback journal, full sync.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS datastore (
                 key BLOB, data BLOB, generation BIGINT, PRIMARY KEY (key));
             CREATE TABLE IF NOT EXISTS payments (
                 id BIGSERIAL, payment_hash BLOB, partid BIGINT, groupid BIGINT,
                 status INTEGER, listing TEXT, failure TEXT,
                 PRIMARY KEY (id), UNIQUE (payment_hash, partid, groupid));",
        )?;
        Ok(Db { conn })
    }

    /// lightningd opens a transaction around every command it serves and
    /// commits it at the command's end.
    pub fn begin(&self) {
        report("begin", self.conn.execute_batch("BEGIN"));
    }

    pub fn commit(&self) {
        report("commit", self.conn.execute_batch("COMMIT"));
    }

    pub fn put_entry(&self, key: &[String], r: &Record) {
        report(
            "datastore write",
            self.conn.execute(
                "INSERT OR REPLACE INTO datastore (key, data, generation) VALUES (?1, ?2, ?3)",
                params![key_blob(key), r.data, r.generation as i64],
            ),
        );
    }

    pub fn delete_entry(&self, key: &[String]) {
        report(
            "datastore delete",
            self.conn.execute(
                "DELETE FROM datastore WHERE key = ?1",
                params![key_blob(key)],
            ),
        );
    }

    /// lightningd's `listdatastore` read: every row from `key` on, data
    /// included, until the first key outside it (`wallet_datastore_first`
    /// and `_next`); children are folded into the answer afterwards.
    pub fn entries_under(&self, key: &[String]) -> Vec<(Vec<String>, Record)> {
        let read = || -> rusqlite::Result<Vec<(Vec<String>, Record)>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT key, data, generation FROM datastore WHERE key >= ?1 ORDER BY key",
            )?;
            let mut rows = stmt.query(params![key_blob(key)])?;
            let mut out = vec![];
            while let Some(row) = rows.next()? {
                let k = blob_key(&row.get::<_, Vec<u8>>(0)?);
                if !k.starts_with(key) {
                    break;
                }
                let r = Record {
                    data: row.get(1)?,
                    generation: row.get::<_, i64>(2)? as u64,
                };
                out.push((k, r));
            }
            Ok(out)
        };
        report("datastore read", read()).unwrap_or_default()
    }

    /// Writes a part's row as it now is in the table, or removes it.
    pub fn put_part(&self, key: &(String, u64, u64), part: Option<&Part>) {
        let (hash, groupid, partid) = key;
        let done = match part {
            Some(p) => self.conn.execute(
                "INSERT OR REPLACE INTO payments
                     (id, payment_hash, partid, groupid, status, listing, failure)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.created_index as i64,
                    hash.as_bytes(),
                    *partid as i64,
                    *groupid as i64,
                    p.status as i64,
                    p.listing().to_string(),
                    p.failure.as_ref().map(|_| p.stored_error().to_string()),
                ],
            ),
            None => self.conn.execute(
                "DELETE FROM payments WHERE payment_hash = ?1 AND partid = ?2 AND groupid = ?3",
                params![hash.as_bytes(), *partid as i64, *groupid as i64],
            ),
        };
        report("payments write", done);
    }

    /// The bytes a table holds with its indexes: the pages of each of
    /// their b-trees, as sqlite's `dbstat` counts them (what a real
    /// node's database file grows by).
    pub fn table_bytes(&self, table: &str) -> u64 {
        let n = self.conn.query_row(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN
                 (SELECT name FROM sqlite_master WHERE tbl_name = ?1)",
            params![table],
            |r| r.get::<_, i64>(0),
        );
        report("dbstat", n).unwrap_or(0) as u64
    }

    /// How many rows a table has (for tests).
    pub fn count(&self, table: &str) -> u64 {
        let n = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .optional();
        report("count", n).flatten().unwrap_or(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rows_under_a_key_in_lightningd_order() {
        let dir = std::env::temp_dir().join(format!("standin-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("lightningd.sqlite3")).unwrap();
        let rec = |g| Record {
            generation: g,
            data: vec![1, 2],
        };
        db.begin();
        for key in [
            k(&["p", "b"]),
            k(&["p", "a", "x"]),
            k(&["pp"]),
            k(&["p", "a", "y"]),
        ] {
            db.put_entry(&key, &rec(0));
        }
        db.commit();
        let under: Vec<_> = db
            .entries_under(&k(&["p"]))
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(
            under,
            vec![k(&["p", "a", "x"]), k(&["p", "a", "y"]), k(&["p", "b"])]
        );
        db.delete_entry(&k(&["p", "a", "x"]));
        assert_eq!(db.entries_under(&k(&["p", "a"])).len(), 1);
        assert_eq!(db.count("datastore"), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
