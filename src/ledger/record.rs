//! A part's record in layout v4: what the ledger needs of a terminal part
//! and the node's listings do not give, in a few bytes. Answers read
//! the node's rows; a record says that the part was terminal, how, when,
//! and for a failure what lightningd reported of it (the summary failure
//! statistics count).
//!
//! Bytes: a flags byte, the payment hash (32), `groupid` and `partid`
//! (LEB128), then each field the flags announce, in this order:
//! `completed_at`, `failcode`, `erring_index` (LEB128), `erring_node`
//! (33), `erring_channel` (a short channel id packed as lightningd packs
//! it, LEB128), `erring_direction` (LEB128). 36-90 bytes a part.

use crate::domain::{Part, PartKey, Status};
use cln_rpc::primitives::Sha256;
use serde_json::Value;
use std::str::FromStr;

const FAILED: u8 = 1;
const COMPLETED_AT: u8 = 1 << 1;
const FAILCODE: u8 = 1 << 2;
const ERRING_INDEX: u8 = 1 << 3;
const ERRING_NODE: u8 = 1 << 4;
const ERRING_CHANNEL: u8 = 1 << 5;
const ERRING_DIRECTION: u8 = 1 << 6;
const KNOWN: u8 = (1 << 7) - 1;

/// What lightningd reported of a failure: where and why it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureSummary {
    pub failcode: Option<u64>,
    pub erring_index: Option<u64>,
    pub erring_node: Option<[u8; 33]>,
    /// Packed as lightningd packs a short channel id: block << 40 | tx << 16 | output.
    pub erring_channel: Option<u64>,
    pub erring_direction: Option<u64>,
}

impl FailureSummary {
    fn is_empty(&self) -> bool {
        *self == FailureSummary::default()
    }
}

/// A terminal part as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: PartKey,
    pub status: Status,
    pub completed_at: Option<u64>,
    pub failure: FailureSummary,
}

impl Record {
    /// What the ledger keeps of a terminal part. A failure field lightningd
    /// sent in a form paystate cannot read is left out, with a warning.
    pub fn of(part: &Part) -> Record {
        let mut failure = FailureSummary::default();
        if let Some(f) = &part.failure {
            let d = &f.details;
            let number = |name: &str| field(part, name, d.get(name), Value::as_u64);
            failure.failcode = number("failcode");
            failure.erring_index = number("erring_index");
            failure.erring_direction = number("erring_direction");
            failure.erring_node = field(part, "erring_node", d.get("erring_node"), |v| {
                let b = crate::store::from_hex(v.as_str()?)?;
                b.try_into().ok()
            });
            failure.erring_channel = field(part, "erring_channel", d.get("erring_channel"), |v| {
                scid(v.as_str()?)
            });
        }
        Record {
            key: part.key(),
            status: part.status(),
            completed_at: part
                .payment
                .completed_at
                .or(part.failure.as_ref().and_then(|f| f.seen_at)),
            failure,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let f = &self.failure;
        let mut flags = 0;
        let mut tail = Vec::new();
        let mut put = |bit: u8, v: Option<u64>, tail: &mut Vec<u8>| {
            if let Some(v) = v {
                flags |= bit;
                leb128(tail, v);
            }
        };
        put(COMPLETED_AT, self.completed_at, &mut tail);
        put(FAILCODE, f.failcode, &mut tail);
        put(ERRING_INDEX, f.erring_index, &mut tail);
        if let Some(node) = f.erring_node {
            tail.extend_from_slice(&node);
        }
        put(ERRING_CHANNEL, f.erring_channel, &mut tail);
        put(ERRING_DIRECTION, f.erring_direction, &mut tail);
        if f.erring_node.is_some() {
            flags |= ERRING_NODE;
        }
        if self.status == Status::Failed {
            flags |= FAILED;
        }
        let mut out = Vec::with_capacity(36 + tail.len());
        out.push(flags);
        out.extend_from_slice(self.key.payment_hash.as_ref());
        leb128(&mut out, self.key.groupid);
        leb128(&mut out, self.key.partid);
        out.extend_from_slice(&tail);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, String> {
        let mut r = Reader(bytes);
        let flags = r.byte()?;
        if flags & !KNOWN != 0 {
            return Err(format!("unknown flags {flags:#04x}"));
        }
        // Sha256's constructor from bytes is a trait's, in a crate
        // paystate does not name: its hex form parses the same.
        let hash =
            Sha256::from_str(&crate::store::to_hex(r.take(32)?)).expect("32 bytes are a hash");
        let key = PartKey {
            payment_hash: hash,
            groupid: r.leb128()?,
            partid: r.leb128()?,
        };
        let has = |bit: u8| flags & bit != 0;
        let completed_at = has(COMPLETED_AT).then(|| r.leb128()).transpose()?;
        let mut failure = FailureSummary {
            failcode: has(FAILCODE).then(|| r.leb128()).transpose()?,
            erring_index: has(ERRING_INDEX).then(|| r.leb128()).transpose()?,
            ..FailureSummary::default()
        };
        if has(ERRING_NODE) {
            failure.erring_node = Some(r.take(33)?.try_into().expect("33 bytes taken"));
        }
        failure.erring_channel = has(ERRING_CHANNEL).then(|| r.leb128()).transpose()?;
        failure.erring_direction = has(ERRING_DIRECTION).then(|| r.leb128()).transpose()?;
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the record", r.0.len()));
        }
        let status = match has(FAILED) {
            true => Status::Failed,
            false if failure.is_empty() => Status::Complete,
            false => return Err("a complete part with a failure".into()),
        };
        Ok(Record {
            key,
            status,
            completed_at,
            failure,
        })
    }
}

/// A failure field read with `read`; present and unreadable, it is left
/// out with a warning (the record is a summary: the node keeps the rest).
fn field<T>(
    part: &Part,
    name: &str,
    v: Option<&Value>,
    read: impl Fn(&Value) -> Option<T>,
) -> Option<T> {
    let v = v?;
    let out = read(v);
    if out.is_none() {
        log::warn!(
            "Not keeping {name} {v} of {}: not a form paystate reads",
            part.key()
        );
    }
    out
}

/// `BLOCKxTXxOUTPUT`, packed as lightningd packs it.
fn scid(s: &str) -> Option<u64> {
    let mut it = s.split('x').map(|n| n.parse::<u64>().ok());
    let (block, tx, out) = (it.next()??, it.next()??, it.next()??);
    if it.next().is_some() || block >= 1 << 24 || tx >= 1 << 24 || out >= 1 << 16 {
        return None;
    }
    Some(block << 40 | tx << 16 | out)
}

/// A packed short channel id as lightningd prints it.
pub fn scid_string(packed: u64) -> String {
    format!(
        "{}x{}x{}",
        packed >> 40,
        (packed >> 16) & 0xff_ffff,
        packed & 0xffff
    )
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("the record ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// LEB128, in its shortest form only (one number, one spelling).
    fn leb128(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("a number past 64 bits".into());
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err("a number not in its shortest form".into());
                }
                return Ok(v);
            }
        }
        Err("a number past 64 bits".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Failure;
    use crate::fakes::payment;
    use serde_json::json;

    fn failed(details: Value) -> Part {
        let mut payment = payment(9, Status::Failed);
        payment.partid = 300;
        Part {
            payment,
            failure: Some(Failure {
                code: 204,
                message: "failed".into(),
                details: details.as_object().unwrap().clone(),
                seen_at: None,
            }),
        }
    }

    #[test]
    fn a_failure_keeps_its_summary_and_reads_back() {
        let node = "03".to_string() + &"ab".repeat(32);
        let part = failed(
            json!({"erring_index": 1, "failcode": 16394, "failcodename": "WIRE_UNKNOWN_NEXT_PEER",
            "erring_node": node, "erring_channel": "103x1x0", "erring_direction": 1, "raw_message": "400a"}),
        );
        let r = Record::of(&part);
        assert_eq!(r.failure.failcode, Some(16394));
        assert_eq!(
            r.failure.erring_channel.map(scid_string).as_deref(),
            Some("103x1x0")
        );
        assert_eq!(crate::store::to_hex(&r.failure.erring_node.unwrap()), node);
        let bytes = r.encode();
        assert!(bytes.len() < 90, "{} bytes", bytes.len());
        assert_eq!(Record::decode(&bytes), Ok(r));
    }

    #[test]
    fn a_complete_part_is_a_few_bytes() {
        let part = Part {
            payment: payment(5, Status::Complete),
            failure: None,
        };
        let r = Record::of(&part);
        let bytes = r.encode();
        assert!(bytes.len() <= 42, "{} bytes", bytes.len());
        assert_eq!(Record::decode(&bytes).unwrap(), r);
        assert_eq!(r.key, part.key());
    }

    #[test]
    fn unreadable_failure_fields_are_left_out() {
        let r = Record::of(&failed(
            json!({"failcode": "x", "erring_channel": "1x2", "erring_node": "zz"}),
        ));
        assert_eq!(r.failure, FailureSummary::default());
        assert_eq!(Record::decode(&r.encode()).unwrap().status, Status::Failed);
    }

    #[test]
    fn damaged_records_are_refused() {
        let good = Record::of(&failed(json!({"failcode": 8, "erring_index": 2}))).encode();
        for bad in [
            vec![],
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            [vec![0x80], good[1..].to_vec()].concat(),
            // A complete part with a failure field.
            [vec![good[0] & !FAILED], good[1..].to_vec()].concat(),
        ] {
            assert!(Record::decode(&bad).is_err(), "{bad:?}");
        }
        let mut long = vec![0u8];
        long.extend([0; 32]);
        long.extend([0x81, 0x00, 0]); // groupid 1, spelled in two bytes
        assert!(Record::decode(&long).is_err());
    }
}
