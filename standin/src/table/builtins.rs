//! The built-ins that read and delete the table's rows, as lightningd
//! answers them: `listsendpays`, `waitsendpay` (its immediate answer),
//! `delpay`.

use super::{fail, Key, Part, Status, Table, Wait};
use crate::params;
use serde_json::{json, Value};

impl Table {
    pub fn listsendpays(&self, params: &Value) -> Result<Value, Value> {
        let p = params::collect(
            params,
            &[
                ("bolt11", false),
                ("payment_hash", false),
                ("status", false),
                ("index", false),
                ("start", false),
                ("limit", false),
            ],
        )
        .map_err(fail)?;
        let bolt11 = p[0]
            .as_ref()
            .map(|v| params::string("bolt11", v))
            .transpose()
            .map_err(fail)?;
        let hash = p[1]
            .as_ref()
            .map(|v| params::sha256("payment_hash", v))
            .transpose()
            .map_err(fail)?;
        if bolt11.is_some() && hash.is_some() {
            return Err(fail(params::invalid(
                "Can only specify one of {bolt11} or {payment_hash}",
            )));
        }
        let status = match &p[2] {
            None => None,
            Some(v) => Some(match v.as_str() {
                Some("pending") => Status::Pending,
                Some("complete") => Status::Complete,
                Some("failed") => Status::Failed,
                _ => {
                    return Err(fail(params::invalid(format!(
                        "status: should be an invoice status: invalid token '{v}'"
                    ))))
                }
            }),
        };
        let index = match &p[3] {
            None => None,
            Some(v) => match v.as_str() {
                Some(i @ ("created" | "updated" | "deleted")) => Some(i.to_string()),
                _ => {
                    return Err(fail(params::invalid(format!(
                        "index: unknown index: invalid token '{v}'"
                    ))))
                }
            },
        };
        let start = p[4]
            .as_ref()
            .map(|v| params::u64("start", v))
            .transpose()
            .map_err(fail)?;
        let limit = p[5]
            .as_ref()
            .map(|v| params::u32("limit", v))
            .transpose()
            .map_err(fail)?;
        // lightningd's checks, in its order (`json_listsendpays`).
        if start.unwrap_or(0) != 0 && index.is_none() {
            return Err(fail(params::invalid(
                "Can only specify {start} with {index}",
            )));
        }
        if limit.is_some() && index.is_none() {
            return Err(fail(params::invalid(
                "Can only specify {limit} with {index}",
            )));
        }
        if (hash.is_some() || bolt11.is_some()) && start.unwrap_or(0) != 0 {
            return Err(fail(params::invalid(
                "Cannot use start with bolt11 or payment_hash",
            )));
        }
        let mut parts: Vec<&Part> = self
            .parts
            .values()
            .filter(|x| hash.as_ref().is_none_or(|h| &x.payment_hash == h))
            .filter(|x| bolt11.is_none() || x.bolt11 == bolt11)
            .filter(|x| status.is_none_or(|s| x.status == s))
            .collect();
        // lightningd lists a hash's parts whatever the index and limit.
        let by_hash = hash.is_some() || bolt11.is_some();
        match index.as_deref().filter(|_| !by_hash) {
            // `WHERE updated_index >= ? ORDER BY updated_index`: a part
            // never updated is at 0 (the column's default), so `start=0`
            // lists the pending parts first, in rowid order.
            Some("updated") => {
                parts.retain(|x| x.updated_index.unwrap_or(0) >= start.unwrap_or(0));
                parts.sort_by_key(|x| (x.updated_index.unwrap_or(0), x.created_index));
            }
            Some(_) => {
                parts.retain(|x| x.created_index >= start.unwrap_or(0));
                parts.sort_by_key(|x| x.created_index);
            }
            None => parts.sort_by_key(|x| x.created_index),
        }
        if let Some(l) = limit.filter(|_| !by_hash) {
            parts.truncate(l as usize);
        }
        Ok(json!({"payments": parts.iter().map(|x| x.listing()).collect::<Vec<_>>()}))
    }

    /// `raw`: the request's `params` as the client wrote them.
    /// `check waitsendpay`: its parameters only, as lightningd's `param`
    /// stops there in check mode.
    pub fn check_waitsendpay(&self, raw: &str, developer: bool) -> Result<Value, Value> {
        match self.waitsendpay(raw, developer) {
            Wait::Answer(Err(e)) if e["code"] == -32602 => Err(e),
            _ => Ok(json!({"command_to_check": "waitsendpay"})),
        }
    }

    pub fn waitsendpay(&self, raw: &str, developer: bool) -> Wait {
        const SPEC: [(&str, bool); 4] = [
            ("payment_hash", true),
            ("timeout", false),
            ("partid", false),
            ("groupid", false),
        ];
        let (mut hash, mut timeout, mut partid, mut groupid) = (None, None, 0, None);
        let parsed = params::walk(raw, &SPEC, |i, tok| {
            let name = SPEC[i].0;
            match i {
                0 => hash = Some(params::param_sha256(developer, name, tok)?),
                1 => timeout = Some(params::param_number(developer, name, tok)?),
                2 => partid = params::param_u64(developer, name, tok)?,
                _ => groupid = Some(params::param_u64(developer, name, tok)?),
            }
            Ok(())
        });
        if let Err(f) = parsed {
            return Wait::Answer(Err(fail(f)));
        }
        let hash = hash.expect("required");
        let groupid = groupid.unwrap_or_else(|| {
            self.parts
                .values()
                .filter(|x| x.payment_hash == hash)
                .map(|x| x.groupid)
                .max()
                .unwrap_or(0)
        });
        let key = (hash.clone(), groupid, partid);
        match self.get(&key) {
            None => Wait::Answer(Err(
                json!({"code": 208, "message": format!("Never attempted payment part {partid} for '{hash}'")}),
            )),
            Some(p) => match p.status {
                Status::Complete => Wait::Answer(Ok(p.listing())),
                Status::Failed => Wait::Answer(Err(p.stored_error())),
                Status::Pending if timeout == Some(0) => Wait::Answer(Err(
                    json!({"code": 200, "message": "Timed out while waiting"}),
                )),
                Status::Pending => Wait::Pending(key, timeout),
            },
        }
    }

    /// `raw`: the request's `params` as the client wrote them. Returns the
    /// answer and the keys of the parts it deleted.
    /// `check_only`: `check delpay`, every lookup made and nothing deleted
    /// (`json_delpay` stops right before the delete in check mode).
    pub fn delpay(
        &mut self,
        raw: &str,
        developer: bool,
        check_only: bool,
    ) -> Result<(Value, Vec<Key>), Value> {
        const SPEC: [(&str, bool); 4] = [
            ("payment_hash", true),
            ("status", true),
            ("partid", false),
            ("groupid", false),
        ];
        let (mut hash, mut status, mut partid, mut groupid) = (None, None, None, None);
        params::walk(raw, &SPEC, |i, tok| {
            let name = SPEC[i].0;
            let bad = |what| params::badparam(developer, name, what, tok);
            match i {
                0 => hash = Some(params::param_sha256(developer, name, tok)?),
                // `param_payment_status_nopending`.
                1 => {
                    status = Some(match tok.text() {
                        "complete" => Status::Complete,
                        "failed" => Status::Failed,
                        "pending" => return Err(bad("Cannot delete pending status")),
                        _ => return Err(bad("should be an invoice status")),
                    })
                }
                2 => partid = Some(params::param_u64(developer, name, tok)?),
                _ => groupid = Some(params::param_u64(developer, name, tok)?),
            }
            Ok(())
        })
        .map_err(fail)?;
        let (hash, status) = (hash.expect("required"), status.expect("required"));
        if partid.is_some() != groupid.is_some() {
            return Err(fail(params::invalid(
                "Must set both partid and groupid, or neither",
            )));
        }
        let mut parts: Vec<&Part> = self
            .parts
            .values()
            .filter(|x| x.payment_hash == hash)
            .collect();
        if parts.is_empty() {
            return Err(
                json!({"code": 208, "message": format!("Unknown payment with payment_hash: {hash}")}),
            );
        }
        if let (Some(pi), Some(gi)) = (partid, groupid) {
            parts.retain(|x| x.partid == pi && x.groupid == gi);
            if parts.is_empty() {
                return Err(
                    json!({"code": 208, "message": "No payment for that payment_hash with that partid and groupid"}),
                );
            }
        }
        // lightningd names the status of the last part it passed over.
        let other = parts
            .iter()
            .rev()
            .map(|x| x.status)
            .find(|s| *s != status)
            .unwrap_or(parts[0].status);
        let doomed: Vec<Key> = parts
            .iter()
            .filter(|x| x.status == status)
            .map(|x| x.key())
            .collect();
        if doomed.is_empty() {
            // lightningd's code here is 208 (its documentation says 211).
            return Err(json!({"code": 208, "message": format!(
                "Payment with hash {hash} has {} status but it different from the one provided {}",
                other.as_str(), status.as_str())}));
        }
        if check_only {
            return Ok((json!({"command_to_check": "delpay"}), vec![]));
        }
        let listed: Vec<Value> = parts
            .iter()
            .filter(|x| x.status == status)
            .map(|x| x.listing())
            .collect();
        for k in &doomed {
            if let Some(c) = self.index.remove(k) {
                let part = self.parts.remove(&c).expect("indexed");
                // lightningd moves `deleted` for a delete of one part only
                // (`wallet_payment_delete`: "FIXME: Increment deleted
                // appropriately!" for the rest).
                if partid.is_some() {
                    self.deleted += 1;
                    self.moved("deleted", self.deleted, &part);
                }
            }
        }
        Ok((json!({ "payments": listed }), doomed))
    }
}
