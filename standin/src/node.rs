//! The node's tables: payments, datastore, and (with `Options::sqlite`)
//! the SQLite database that keeps them; a call's transaction.

use crate::batching::{self, Commits};
use crate::table::Key;
use crate::{datastore, db, params, table};
use serde_json::Value;

#[derive(Default)]
pub(crate) struct Node {
    pub(crate) table: table::Table,
    pub(crate) datastore: datastore::Datastore,
    pub(crate) db: Option<db::Db>,
}

impl Node {
    /// One call's work: in the open batch's transaction (`batched`), or
    /// in one of its own (with `sqlite`, a real one), counted.
    pub(crate) fn call<T>(
        &mut self,
        commits: &Commits,
        batched: bool,
        f: impl FnOnce(&mut Node) -> T,
    ) -> T {
        if batched {
            return f(self);
        }
        commits.single();
        // A batch is open: its transaction is the one open (lightningd
        // serves one read at a time, the stand-in's tasks interleave).
        let own = !batching::in_batch(commits);
        if let Some(db) = self.db.as_ref().filter(|_| own) {
            db.begin();
        }
        let out = f(self);
        if let Some(db) = self.db.as_ref().filter(|_| own) {
            db.commit();
        }
        out
    }

    /// Writes the rows of these parts as the table now has them.
    pub(crate) fn save_parts<'a>(&self, keys: impl IntoIterator<Item = &'a Key>) {
        if let Some(db) = &self.db {
            for key in keys {
                db.put_part(key, self.table.get(key));
            }
        }
    }

    pub(crate) fn datastore_call(
        &mut self,
        method: &str,
        params: &Value,
    ) -> Result<Value, params::Fail> {
        let (ds, db) = (&mut self.datastore, self.db.as_ref());
        match method {
            "datastore" => ds.datastore(params, db),
            "check datastore" => ds.check_datastore(params),
            "listdatastore" => ds.listdatastore(params, db),
            "deldatastore" => ds.deldatastore(params, db),
            _ => ds.datastoreusage(params),
        }
    }
}
