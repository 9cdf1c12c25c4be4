//! Property tests of the parameter parsing of both commands: any JSON in
//! any slot, named or positional, yields an answer or a -32602 with a
//! message; never a panic, never another code.

use paystate::commands::{delpay, waitsendpay};
use paystate::params::Mode;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn hexish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{64}",
        "[0-9A-F]{64}",
        "[0-9a-f]{63}",
        "[0-9a-f]{65}",
        "[0-9a-zA-Z]{64}",
        "[0-9]{1,25}",
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?",
        ".{0,40}",
        Just("pending".to_string()),
        Just("complete".to_string()),
        Just("failed".to_string()),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        hexish().prop_map(Value::String),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const NAMES: [&str; 4] = ["payment_hash", "timeout", "partid", "groupid"];
const DELPAY_NAMES: [&str; 4] = ["payment_hash", "status", "partid", "groupid"];

fn check<T>(r: Result<T, paystate::error::RpcError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        prop_assert_eq!(e.code, -32602);
        prop_assert!(!e.message.is_empty());
        prop_assert!(e.data.is_none());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_params_value_is_answered_or_refused_with_32602(params in any_json()) {
        for mode in [Mode::DEVELOPER, Mode::PRODUCTION] {
            check(waitsendpay::parse(&params, mode))?;
            check(delpay::parse(&params, mode))?;
        }
    }

    #[test]
    fn production_answers_as_developer_without_the_token(params in any_json()) {
        let dev = waitsendpay::parse(&params, Mode::DEVELOPER).map(|r| format!("{r:?}"));
        let prod = waitsendpay::parse(&params, Mode::PRODUCTION).map(|r| format!("{r:?}"));
        match (dev, prod) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => match a.message.split_once(": invalid token '") {
                Some((head, _)) => prop_assert_eq!(b.message, format!("{head}: invalid token (see logs for details)")),
                None => prop_assert_eq!(a.message, b.message),
            },
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn named_and_positional_agree(slots in prop::collection::vec(prop::option::of(any_json()), 0..5)) {
        for (names, parse) in [
            (NAMES, (|v: &Value| waitsendpay::parse(v, Mode::DEVELOPER).map(|r| format!("{r:?}"))) as fn(&Value) -> _),
            (DELPAY_NAMES, |v: &Value| delpay::parse(v, Mode::DEVELOPER).map(|r| format!("{r:?}"))),
        ] {
            let positional = Value::Array(slots.iter().map(|s| s.clone().unwrap_or(Value::Null)).collect());
            let mut named = Map::new();
            // A positional null is an absent parameter; a named one is a
            // bad token, so it is left out here (as pyln-client does).
            for (n, s) in names.iter().zip(&slots) {
                if let Some(v) = s.as_ref().filter(|v| !v.is_null()) {
                    named.insert(n.to_string(), v.clone());
                }
            }
            let (a, b) = (parse(&positional), parse(&Value::Object(named)));
            check(a.clone())?;
            if slots.len() <= 4 {
                // Same slots, same outcome, except the message for "too many".
                prop_assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn valid_params_parse_to_their_values(
        hash in "[0-9a-fA-F]{64}",
        timeout in prop::option::of(any::<u32>()),
        partid in any::<u64>(),
        groupid in any::<u64>(),
        as_strings in any::<bool>(),
    ) {
        let num = |n: u64| if as_strings { json!(n.to_string()) } else { json!(n) };
        let mut p = json!({"payment_hash": hash, "partid": num(partid), "groupid": num(groupid)});
        if let Some(t) = timeout {
            p["timeout"] = num(t.into());
        }
        let r = waitsendpay::parse(&p, Mode::DEVELOPER).unwrap();
        prop_assert_eq!(r.payment_hash.to_string(), hash.to_lowercase());
        prop_assert_eq!((r.timeout, r.partid, r.groupid), (timeout, partid, Some(groupid)));
        let d = delpay::parse(&json!([hash, "failed", num(partid), num(groupid)]), Mode::DEVELOPER).unwrap();
        prop_assert_eq!(d.part, Some((partid, groupid)));
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn huge_strings_and_deep_nesting_do_not_hurt(len in 0usize..1_100_000, depth in 0usize..64) {
        let mut v = json!("x".repeat(len));
        for _ in 0..depth {
            v = json!([v]);
        }
        check(waitsendpay::parse(&json!({"payment_hash": v.clone()}), Mode::PRODUCTION))?;
        check(delpay::parse(&json!([hash_of(len), v]), Mode::DEVELOPER))?;
    }
}

fn hash_of(n: usize) -> String {
    format!("{n:064x}")
}
