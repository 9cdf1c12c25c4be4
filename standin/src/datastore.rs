//! lightningd's datastore: a tree of keys where a key holds a value or has
//! children, never both; every value has a generation.

use crate::db::Db;
pub use crate::db::Record;
use crate::params::{self, Fail};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct Datastore {
    pub entries: BTreeMap<Vec<String>, Record>,
}

fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The one optional `key` parameter of `listdatastore` and `datastoreusage`
/// (absent: the root).
fn optional_key(params: &Value) -> Result<Vec<String>, Fail> {
    let p = params::collect(params, &[("key", false)])?;
    Ok(p[0]
        .as_ref()
        .map(|k| params::key("key", k))
        .transpose()?
        .unwrap_or_default())
}

fn entry_json(key: &[String], r: &Record) -> Value {
    let mut v = json!({"key": key, "generation": r.generation, "hex": hex(&r.data)});
    if let Ok(s) = std::str::from_utf8(&r.data) {
        v["string"] = json!(s);
    }
    v
}

/// `listdatastore`'s answer from the entries at or under `key`, in key
/// order: the key's own value, else its immediate children (a value, or
/// a bare parent key).
fn fold<'a>(key: &[String], entries: impl Iterator<Item = (&'a Vec<String>, &'a Record)>) -> Value {
    let mut out: BTreeMap<Vec<String>, Value> = BTreeMap::new();
    for (k, r) in entries {
        if k.as_slice() == key {
            return json!({"datastore": [entry_json(k, r)]});
        }
        let child = k[..key.len() + 1].to_vec();
        let v = if child.len() == k.len() {
            entry_json(k, r)
        } else {
            json!({ "key": child })
        };
        out.entry(child).or_insert(v);
    }
    json!({"datastore": out.into_values().collect::<Vec<_>>()})
}

impl Datastore {
    /// Children sort right after their parent, so the first key above
    /// `key` tells (a range look-up, as lightningd's SQL does).
    fn has_children(&self, key: &[String]) -> bool {
        self.entries
            .range::<[String], _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(key))
    }

    pub fn datastore(&mut self, params: &Value, db: Option<&Db>) -> Result<Value, Fail> {
        let (key, record) = self.checked_write(params)?;
        let out = entry_json(&key, &record);
        if let Some(db) = db {
            db.put_entry(&key, &record);
        }
        self.entries.insert(key, record);
        Ok(out)
    }

    /// `check datastore`: the write's checks, as lightningd makes them
    /// (the key's first row and its parents read), nothing written.
    pub fn check_datastore(&self, params: &Value) -> Result<Value, Fail> {
        self.checked_write(params)?;
        Ok(json!({"command_to_check": "datastore"}))
    }

    /// A `datastore` call's key and the record it would write, or its error.
    fn checked_write(&self, params: &Value) -> Result<(Vec<String>, Record), Fail> {
        let p = params::collect(
            params,
            &[
                ("key", true),
                ("string", false),
                ("hex", false),
                ("mode", false),
                ("generation", false),
            ],
        )?;
        let key = params::key("key", p[0].as_ref().unwrap())?;
        let data = match (&p[1], &p[2]) {
            (Some(s), None) => params::string("string", s)?.into_bytes(),
            (None, Some(h)) => h.as_str().and_then(unhex).ok_or_else(|| {
                params::invalid(format!("hex: should be a hex value: invalid token '{h}'"))
            })?,
            (Some(_), Some(_)) => return Err(params::invalid("Cannot have both hex and string")),
            (None, None) => return Err(params::invalid("Must have either hex or string")),
        };
        let mode = match &p[3] {
            Some(m) => params::string("mode", m)?,
            None => "must-create".into(),
        };
        if ![
            "must-create",
            "must-replace",
            "create-or-replace",
            "must-append",
            "create-or-append",
        ]
        .contains(&mode.as_str())
        {
            return Err(params::invalid(format!(
                "mode: should be a valid mode: invalid token '\"{mode}\"'"
            )));
        }
        let generation = p[4]
            .as_ref()
            .map(|g| params::u64("generation", g))
            .transpose()?;
        if generation.is_some() && mode != "must-replace" && mode != "must-append" {
            return Err(params::invalid(
                "generation only valid with must-replace or must-append",
            ));
        }
        if self.has_children(&key) {
            return Err((1205, "Key has children already".into()));
        }
        for i in 1..key.len() {
            if self.entries.contains_key(&key[..i]) {
                return Err((1206, format!("Parent key [{}] exists", key[..i].join(","))));
            }
        }
        let existing = self.entries.get(&key).cloned();
        let record = match (existing, mode.as_str()) {
            (Some(_), "must-create") => return Err((1202, "Key already exists".into())),
            (None, "must-replace" | "must-append") => {
                return Err((1203, "Key does not exist".into()))
            }
            (Some(old), _) => {
                if generation.is_some_and(|g| g != old.generation) {
                    return Err((1204, "generation is different".into()));
                }
                let data = if mode.ends_with("append") {
                    [old.data, data].concat()
                } else {
                    data
                };
                Record {
                    generation: old.generation + 1,
                    data,
                }
            }
            (None, _) => Record {
                generation: 0,
                data,
            },
        };
        Ok((key, record))
    }

    /// With `db`, answered from the rows lightningd's query reads (every
    /// row under the key, data included); else from the map.
    pub fn listdatastore(&self, params: &Value, db: Option<&Db>) -> Result<Value, Fail> {
        let key = optional_key(params)?;
        Ok(match db {
            Some(db) => fold(&key, db.entries_under(&key).iter().map(|(k, r)| (k, r))),
            None => fold(
                &key,
                self.entries
                    .range(key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key)),
            ),
        })
    }

    pub fn deldatastore(&mut self, params: &Value, db: Option<&Db>) -> Result<Value, Fail> {
        let p = params::collect(params, &[("key", true), ("generation", false)])?;
        let key = params::key("key", p[0].as_ref().unwrap())?;
        let generation = p[1]
            .as_ref()
            .map(|g| params::u64("generation", g))
            .transpose()?;
        let Some(r) = self.entries.get(&key) else {
            return Err((1200, "Key does not exist".into()));
        };
        if generation.is_some_and(|g| g != r.generation) {
            return Err((1201, "generation is different".into()));
        }
        let out = entry_json(&key, r);
        if let Some(db) = db {
            db.delete_entry(&key);
        }
        self.entries.remove(&key);
        Ok(out)
    }

    pub fn datastoreusage(&self, params: &Value) -> Result<Value, Fail> {
        let key = optional_key(params)?;
        let total: usize = self
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(&key))
            .map(|(k, r)| k.iter().map(String::len).sum::<usize>() + r.data.len())
            .sum();
        Ok(json!({"datastoreusage": {"key": format!("[{}]", key.join(",")), "total_bytes": total}}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One datastore, with or without the database behind it.
    struct T<'a> {
        ds: Datastore,
        db: Option<&'a Db>,
    }

    impl T<'_> {
        fn put(&mut self, p: &Value) -> Result<Value, Fail> {
            self.ds.datastore(p, self.db)
        }
        fn list(&mut self, p: &Value) -> Result<Value, Fail> {
            self.ds.listdatastore(p, self.db)
        }
        fn del(&mut self, p: &Value) -> Result<Value, Fail> {
            self.ds.deldatastore(p, self.db)
        }
    }

    #[test]
    fn in_memory() {
        modes_generations_and_children(None);
    }

    #[test]
    fn in_sqlite() {
        let dir = std::env::temp_dir().join(format!("standin-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("lightningd.sqlite3")).unwrap();
        modes_generations_and_children(Some(&db));
        assert_eq!(db.count("datastore"), 1, "rows kept beside the map");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn modes_generations_and_children(db: Option<&Db>) {
        let mut t = T {
            ds: Datastore::default(),
            db,
        };
        let r = t.put(&json!({"key": ["p", "a"], "string": "v1"})).unwrap();
        assert_eq!(
            r,
            json!({"key": ["p", "a"], "generation": 0, "hex": "7631", "string": "v1"})
        );
        assert_eq!(
            t.put(&json!({"key": ["p", "a"], "string": "v2"}))
                .unwrap_err()
                .0,
            1202
        );
        let r = t.put(&json!({"key": ["p", "a"], "string": "v2", "mode": "must-replace", "generation": 0})).unwrap();
        assert_eq!(r["generation"], 1);
        assert_eq!(
            t.put(
                &json!({"key": ["p", "a"], "string": "v3", "mode": "must-replace", "generation": 0})
            )
            .unwrap_err()
            .0,
            1204
        );
        assert_eq!(
            t.put(&json!({"key": ["p"], "string": "x"})).unwrap_err().0,
            1205
        );
        assert_eq!(
            t.put(&json!({"key": ["p", "a", "b"], "string": "x"}))
                .unwrap_err()
                .0,
            1206
        );
        assert_eq!(
            t.put(&json!({"key": ["p", "z"], "string": "x", "mode": "must-replace"}))
                .unwrap_err()
                .0,
            1203
        );
        t.put(&json!({"key": ["p", "q", "deep"], "hex": "00ff"}))
            .unwrap();
        // Immediate children only: a value, or a bare parent key.
        let l = t.list(&json!({"key": ["p"]})).unwrap();
        assert_eq!(l["datastore"][0]["key"], json!(["p", "a"]));
        assert_eq!(l["datastore"][1], json!({"key": ["p", "q"]}));
        let one = t.list(&json!({"key": ["p", "a"]})).unwrap();
        assert_eq!(one["datastore"][0]["string"], "v2");
        assert_eq!(one["datastore"].as_array().unwrap().len(), 1);
        let root = t.list(&json!({})).unwrap();
        assert_eq!(root["datastore"], json!([{"key": ["p"]}]));
        assert_eq!(
            t.del(&json!({"key": ["p", "a"], "generation": 0}))
                .unwrap_err()
                .0,
            1201
        );
        t.del(&json!({"key": ["p", "a"]})).unwrap();
        assert_eq!(t.del(&json!({"key": ["p", "a"]})).unwrap_err().0, 1200);
    }
}
