//! Deletes in progress as versions before 0.3 marked them (a mark per
//! part, named as layout v3 named parts): a crash left them unfinished,
//! and start-up finishes them. This version writes no marks; v3's move to
//! v4 carries them under `["paystate", "v4", "deleting", "<name>"]`.

use crate::domain::{Part, PartKey, Status};
use crate::error::RpcError;
use crate::store::{self, Datastore};
use cln_rpc::primitives::Sha256;
use std::str::FromStr;

/// A key under layout v3.
pub fn v3(path: &[&str]) -> Vec<String> {
    let mut k = vec![store::ROOT.to_string(), "v3".into()];
    k.extend(path.iter().map(|s| s.to_string()));
    k
}

/// What a v3 name spells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    pub key: PartKey,
    pub created_index: u64,
    pub status: Status,
}

impl Name {
    pub fn of(part: &Part) -> Name {
        Name {
            key: part.key(),
            created_index: part.payment.created_index,
            status: part.status(),
        }
    }

    /// `<payment_hash>-<groupid>-<partid>-<created_index>-<status>`.
    pub fn spell(&self) -> String {
        let k = &self.key;
        format!(
            "{}-{}-{}-{}-{}",
            k.payment_hash, k.groupid, k.partid, self.created_index, self.status
        )
    }

    pub fn parse(name: &str) -> Result<Name, String> {
        let fields: Vec<&str> = name.split('-').collect();
        let [hash, groupid, partid, created_index, status] = fields[..] else {
            return Err(format!(
                "{name:?} is not <hash>-<groupid>-<partid>-<created_index>-<status>"
            ));
        };
        let number = |what: &str, s: &str| {
            // Canonical decimal only, as written: `u64::from_str` takes "+1"
            // and "01", which would give one part two names.
            let canonical = s == "0" || !s.starts_with('0');
            if s.is_empty() || !canonical || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{what} {s:?} in {name:?} is not a number"));
            }
            s.parse::<u64>()
                .map_err(|e| format!("{what} {s:?} in {name:?}: {e}"))
        };
        if hash.len() != 64 || hash.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("{hash:?} in {name:?} is not a payment hash"));
        }
        let payment_hash = Sha256::from_str(hash)
            .map_err(|e| format!("{hash:?} in {name:?} is not a payment hash: {e}"))?;
        let status = match status {
            "complete" => Status::Complete,
            "failed" => Status::Failed,
            other => return Err(format!("status {other:?} in {name:?} is not terminal")),
        };
        Ok(Name {
            key: PartKey {
                payment_hash,
                groupid: number("groupid", groupid)?,
                partid: number("partid", partid)?,
            },
            created_index: number("created_index", created_index)?,
            status,
        })
    }

    /// Where v3 kept the part's record.
    pub fn record_key(&self) -> Vec<String> {
        let name = self.spell();
        v3(&["parts", &name[..3], &name, "record"])
    }

    /// Where a delete of the part in progress is marked (v3's key; v4
    /// keeps marks under [`mark_key`]).
    pub fn v3_mark(&self) -> Vec<String> {
        v3(&["deleting", &self.spell()])
    }
}

/// Where layout v4 keeps a mark an earlier version wrote.
pub fn mark_key(name: &Name) -> Vec<String> {
    let mut k = marks_prefix();
    k.push(name.spell());
    k
}

pub fn marks_prefix() -> Vec<String> {
    let mut k = store::layout_prefix();
    k.push("deleting".into());
    k
}

/// The deletes an earlier version marked and a crash interrupted: each
/// part, and its mark.
pub async fn interrupted_deletes<D: Datastore>(
    ds: &D,
) -> Result<Vec<(PartKey, Vec<String>)>, RpcError> {
    Ok(ds
        .list(marks_prefix())
        .await?
        .into_iter()
        .filter_map(|e| {
            let name = e.key.last().map(String::as_str).unwrap_or_default();
            match Name::parse(name) {
                Ok(n) if e.value.is_some() => Some((n.key, e.key)),
                Ok(_) => {
                    log::warn!("Skipping datastore entry {:?}: not a mark", e.key);
                    None
                }
                Err(why) => {
                    log::warn!("Skipping datastore entry {:?}: {why}", e.key);
                    None
                }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::payment;

    #[test]
    fn a_name_spells_the_part_and_parses_back() {
        let part = Part {
            payment: payment(7, Status::Failed),
            failure: None,
        };
        let n = Name::of(&part);
        let name = n.spell();
        assert!(name.ends_with(&format!("-{}-failed", part.payment.created_index)));
        assert_eq!(Name::parse(&name), Ok(n));
        assert_eq!(n.record_key()[3], name[..3]);
    }

    #[test]
    fn foreign_names_are_refused_with_a_reason() {
        let h = "ab".repeat(32);
        for bad in [
            "".to_string(),
            format!("{h}-1-0-5"),
            format!("{h}-1-0-5-pending"),
            format!("{h}-1-0-+5-complete"),
            format!("{h}-01-0-5-complete"),
            format!("{h}-x-0-5-complete"),
            format!("{}-1-0-5-complete", "AB".repeat(32)),
            format!("{}-1-0-5-complete", &h[..63]),
            format!("{h}-1-0-99999999999999999999-complete"),
        ] {
            assert!(Name::parse(&bad).is_err(), "{bad:?} parsed");
        }
        assert!(Name::parse(&format!("{h}-1-0-5-complete")).is_ok());
    }
}
