//! What arrives from lightningd or the datastore: notification payloads,
//! v3 names, v4 record keys and records. Each is parsed or refused with a
//! reason; never a panic. What parses keeps its identity through a round
//! trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::domain::Part;
use paystate::ledger::marks::Name;
use paystate::ledger::page;
use paystate::ledger::record::Record;
use paystate::store;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Record::decode(data) {
        assert_eq!(r.encode(), data, "a record decodes only from its one encoding");
    }
    // A page never panics, and what it reads is what it holds.
    let read = page::read(data);
    assert!(read.items <= data.len() / 2);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(n) = Name::parse(text) {
            assert_eq!(n.spell(), text, "a name parses only in its one spelling");
        }
        let key: Vec<String> = text.split('/').map(String::from).collect();
        if let Some(page) = store::page_of_key(&key) {
            assert_eq!(store::page_key(page), key, "a key parses only in its one spelling");
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for payload in [
        v.clone(),
        json!({ "sendpay_success": v }),
        json!({ "sendpay_failure": v }),
    ] {
        if let Ok(part) = Part::from_success_notification(&payload) {
            assert!(part.waitsendpay_answer().is_ok());
        }
        if let Ok(part) = Part::from_failure_notification(&payload) {
            let e = part.waitsendpay_answer().unwrap_err();
            assert_eq!(e.data.unwrap()["status"], "failed");
        }
    }
});
