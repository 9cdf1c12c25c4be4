//! Loading, names and routing: the manifest, takeover on and off, the
//! paystate-* names, named and positional params, and the plugin's own
//! calls through its own hook.

mod common;
use common::*;
use lightningd_standin::{Lightningd, Options};
use serde_json::{json, Value};

#[tokio::test]
async fn manifest_registers_own_names_and_the_filtered_hook() {
    let ld = Lightningd::new(options()).await.unwrap();
    let manifest = ld.start_plugin(true).await.unwrap();
    let names: Vec<&str> = manifest["rpcmethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for n in [
        "paystate-waitsendpay",
        "paystate-waitpay",
        "paystate-waitanysendpay",
        "paystate-delpay",
        "paystate-listsendpays",
        "paystate-status",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    for builtin in lightningd_standin::BUILTINS {
        assert!(
            !names.contains(builtin),
            "never register the built-in {builtin}: lightningd crashes"
        );
    }
    let hooks = manifest["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["name"], "rpc_command");
    // delpay is never hooked: a hooked command forfeits autoclean's
    // batched commits. paystate's own names are plain methods.
    assert_eq!(hooks[0]["filters"], json!(["waitsendpay"]));
    let mut subs: Vec<&str> = manifest["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    subs.sort();
    assert_eq!(subs, ["sendpay_failure", "sendpay_success", "shutdown"]);
    let opt = manifest["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "paystate-takeover")
        .unwrap();
    assert_eq!(
        (&opt["type"], &opt["default"]),
        (&json!("bool"), &json!(true))
    );
    assert_eq!(
        manifest["dynamic"], true,
        "can be started and stopped while the node runs"
    );
}

#[tokio::test]
async fn takeover_off_leaves_the_builtins_answering() {
    let ld = start_with(false).await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    ld.fail(&k, Some(route_failure())).await;
    until_ledger_has(&ld, 1).await;
    // lightningd's own delpay: 208 on a status mismatch.
    let e = delpay(&ld, json!({"payment_hash": h, "status": "complete"}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 208);
    // paystate's names still answer, with paystate's contract.
    let e = ld
        .call(
            "paystate-delpay",
            json!({"payment_hash": h, "status": "complete"}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 208);
    assert!(e.get("data").is_none());
    let st = ld
        .call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st["takeover"], false);
    // And the hook let the built-ins' calls through untouched.
    let r = ld
        .call("waitsendpay", json!({"payment_hash": h}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(r, ld.part(&k).unwrap().stored_error());
}

#[tokio::test]
async fn takeover_on_answers_builtin_names_like_the_paystate_names() {
    let ld = start().await;
    let h = hash(1);
    let k = pending(&ld, &h, 1, 0);
    ld.fail(&k, Some(route_failure())).await;
    until_ledger_has(&ld, 1).await;
    for (builtin, own, params) in [
        (
            "waitsendpay",
            "paystate-waitsendpay",
            json!({"payment_hash": h, "timeout": 0}),
        ),
        ("waitsendpay", "paystate-waitsendpay", json!([h, 0, 0, 1])),
        (
            "delpay",
            "paystate-delpay",
            json!({"payment_hash": h, "status": "complete"}),
        ),
        ("delpay", "paystate-delpay", json!([h, "complete"])),
    ] {
        let a = ld.call(builtin, params.clone()).await.unwrap();
        let b = ld.call(own, params.clone()).await.unwrap();
        // Exactly equal: no `"data": null` on the paystate-* names either.
        assert_eq!(a, b, "{builtin} {params}");
    }
    let e = delpay(&ld, json!([h, "complete"])).await.unwrap_err();
    assert_eq!(code(&e), 208);
    assert!(ld.part(&k).is_some(), "nothing deleted");
    ld.assert_no_violations();
}

#[tokio::test]
async fn the_callers_id_is_kept_whatever_its_type() {
    let ld = start().await;
    let mut c = ld.client().await.unwrap();
    for id in [json!(7), json!("cli:waitsendpay#99"), json!("weird/id#1")] {
        let r = c
            .call_with_id(id.clone(), "waitsendpay", json!([hash(1), 0]))
            .await
            .unwrap();
        assert_eq!(code(&r.unwrap_err()), 208);
    }
}

#[tokio::test]
async fn paystates_own_calls_pass_through_its_hook_without_deadlock() {
    let ld = Lightningd::new(options()).await.unwrap();
    let k = pending(&ld, &hash(1), 1, 0);
    ld.fail(&k, Some(destination_failure())).await;
    ld.start_plugin(true).await.unwrap();
    until_caught_up(&ld).await;
    // A failed part's error is the node's own: paystate asks the built-in
    // waitsendpay, which comes back through paystate's own hook.
    let e = ld
        .call("waitsendpay", json!({"payment_hash": hash(1)}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), 203);
    let done = pending(&ld, &hash(2), 1, 0);
    ld.succeed(&done, &preimage(2)).await;
    until_ledger_has(&ld, 2).await;
    ld.call(
        "paystate-delpay",
        json!({"payment_hash": hash(2), "status": "complete"}),
    )
    .await
    .unwrap()
    .unwrap();
    let calls = ld.plugin_calls();
    let builtins: Vec<&str> = calls
        .iter()
        .map(|(m, _)| m.as_str())
        .filter(|m| *m == "waitsendpay" || *m == "delpay")
        .collect();
    assert_eq!(builtins, ["waitsendpay", "delpay"]);
    let sent = ld.sent_to_plugin();
    let internal_hooks = sent
        .iter()
        .filter(|m| m["method"] == "rpc_command")
        .filter(|m| {
            m["params"]["rpc_command"]["id"]
                .as_str()
                .unwrap()
                .starts_with("paystate-internal:")
        })
        .count();
    assert_eq!(
        internal_hooks, 1,
        "the waitsendpay came back through the hook and was continued"
    );
}

#[tokio::test]
async fn on_a_release_without_hook_filters_no_command_passes_through_paystate() {
    let mut o: Options = options();
    o.ignore_hook_filters = true;
    o.env.push(("LIGHTNINGD_VERSION".into(), "v25.09.3".into()));
    let ld = Lightningd::new(o).await.unwrap();
    let manifest = ld.start_plugin(true).await.unwrap();
    assert_eq!(manifest["hooks"], json!([]), "no rpc_command hook");
    let k = pending(&ld, &hash(1), 1, 0);
    let success = ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let listed = ld.call("listsendpays", json!({})).await.unwrap().unwrap();
    assert_eq!(listed["payments"].as_array().unwrap().len(), 1);
    // The built-ins are lightningd's; paystate's names are paystate's.
    let w = json!({"payment_hash": hash(1)});
    assert_eq!(
        ld.call("waitsendpay", w.clone()).await.unwrap().unwrap(),
        success
    );
    assert_eq!(
        ld.call("paystate-waitsendpay", w).await.unwrap().unwrap(),
        success
    );
    let st = assert_no_hook(&ld).await;
    assert_eq!(st["release"], "v25.09.3");
    assert!(ld
        .logs()
        .iter()
        .any(|l| l.message.contains("takeover unavailable")));
}

#[tokio::test]
async fn listsendpays_and_status() {
    let ld = start().await;
    let (a, b, c) = (
        pending(&ld, &hash(1), 1, 0),
        pending(&ld, &hash(2), 1, 0),
        pending(&ld, &hash(3), 1, 0),
    );
    ld.succeed(&a, &preimage(1)).await;
    ld.fail(&b, Some(route_failure())).await;
    let _ = c;
    until_ledger_has(&ld, 2).await;
    let all = ld
        .call("paystate-listsendpays", json!({}))
        .await
        .unwrap()
        .unwrap();
    let idx: Vec<u64> = all["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["created_index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        idx,
        [1, 2],
        "by created_index; pending parts are not in the ledger"
    );
    let failed = ld
        .call("paystate-listsendpays", json!([null, "failed"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed["payments"].as_array().unwrap().len(), 1);
    assert_eq!(failed["payments"][0]["status"], "failed");
    let one = ld
        .call("paystate-listsendpays", json!({"payment_hash": hash(1)}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one["payments"][0], ld.part(&a).unwrap().listing());
    let e = ld
        .call("paystate-listsendpays", json!({"status": "nope"}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(code(&e), -32602);
    let st = until_caught_up(&ld).await;
    assert_eq!(
        st["parts"],
        json!({"complete": 1, "failed": 1, "deleting": 0})
    );
    assert_eq!(st["layout_version"], "v4");
    assert_eq!(st["waiters"], 0);
    assert_eq!(st["takeover"], true);
}

#[tokio::test]
async fn preimages_are_never_logged_above_debug() {
    let ld = start().await;
    let k = pending(&ld, &hash(1), 1, 0);
    ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    ld.call("waitsendpay", json!([hash(1)]))
        .await
        .unwrap()
        .unwrap();
    delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    // Log lines are notifications: they may arrive after the answers.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ld.logs().iter().any(|l| l.level == "info") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "logging reaches lightningd"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logs = ld.logs();
    for l in logs
        .iter()
        .filter(|l| l.level != "debug" && l.level != "trace")
    {
        assert!(
            !l.message.contains(&preimage(1)),
            "preimage logged at {}: {}",
            l.level,
            l.message
        );
    }
}

#[tokio::test]
async fn serves_on_a_lightning_dir_whose_socket_path_does_not_fit() {
    // As lightningd starts it: in the lightning-dir, `rpc-file` relative.
    let mut o = options();
    o.long_dir = true;
    let ld = lightningd_standin::Lightningd::start(o)
        .await
        .expect("plugin starts");
    assert!(ld.rpc_path().as_os_str().len() > 108, "{:?}", ld.rpc_path());
    let k = pending(&ld, &hash(1), 1, 0);
    let done = ld.succeed(&k, &preimage(1)).await;
    until_ledger_has(&ld, 1).await;
    let got = ld.call("waitsendpay", json!([hash(1)])).await.unwrap();
    assert_eq!(got.unwrap(), done);
    let r = delpay(&ld, json!([hash(1), "complete"])).await.unwrap();
    assert_eq!(r["payments"].as_array().unwrap().len(), 1);
    ld.assert_no_violations();
}

/// `paystate-takeover=false` comes after the manifest, too late to leave
/// the hook out; `PAYSTATE_TAKEOVER=false` in lightningd's environment is
/// read before it: no hook, so the node's own `waitsendpay` never passes
/// through paystate.
#[tokio::test]
async fn takeover_off_in_the_environment_declares_no_hook() {
    let mut o: Options = options();
    o.env.push(("PAYSTATE_TAKEOVER".into(), "false".into()));
    let ld = Lightningd::new(o).await.unwrap();
    let manifest = ld.start_plugin(true).await.unwrap();
    assert_eq!(manifest["hooks"], json!([]), "no rpc_command hook");
    let k = pending(&ld, &hash(1), 1, 0);
    let success = ld.succeed(&k, &preimage(1)).await;
    let w = json!({"payment_hash": hash(1)});
    assert_eq!(
        ld.call("waitsendpay", w.clone()).await.unwrap().unwrap(),
        success
    );
    assert_eq!(
        ld.call("paystate-waitsendpay", w).await.unwrap().unwrap(),
        success
    );
    assert_no_hook(&ld).await;
    assert!(ld.logs().iter().any(|l| l
        .message
        .contains("takeover off by PAYSTATE_TAKEOVER=false")));
}

/// Nothing went through a hook of paystate's, and it says it declared
/// none (takeover off); its status.
async fn assert_no_hook(ld: &Lightningd) -> Value {
    assert!(ld
        .sent_to_plugin()
        .iter()
        .all(|m| m["method"] != "rpc_command"));
    let st = ld
        .call("paystate-status", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&st["takeover"], &st["hook"]),
        (&json!(false), &json!(false))
    );
    st
}
