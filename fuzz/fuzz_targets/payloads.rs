//! What arrives from lightningd or the datastore: notification payloads,
//! datastore names and records. Each is parsed or refused with a reason;
//! never a panic. What parses keeps its identity through a round trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::domain::Part;
use paystate::store::{self, Summary};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(s) = Summary::parse(text) {
            assert_eq!(s.name(), text, "a name parses only in its one spelling");
        }
        if let Ok(part) = store::decode(text) {
            let again = store::decode(&store::encode(&part)).expect("own encoding decodes");
            assert_eq!(Summary::of(&again), Summary::of(&part));
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
