"""Parameter errors: paystate against lightningd's built-ins on the same
node, with random parameter sets (named and positional, any JSON in any
slot), in developer mode and in production mode (restarted without
--developer and dev-* options, as operators run lightningd)."""
import json
import random

from util import (call, paystate_node, raw_read, raw_send, raw_socket,
                  selfpay, wait_recorded)

UNKNOWN = "ee" * 32
WAIT = ["payment_hash", "timeout", "partid", "groupid"]
DEL = ["payment_hash", "status", "partid", "groupid"]


def junk(rng, hashes):
    return rng.choice([
        None, True, False, 0, 1, 5, "5", "007", -1, 1.5, 2.5e-07, 1e+16,
        2 ** 64, 2 ** 64 - 1, 2 ** 32, "", "abc", "x" * 300, [], [1, "a"],
        {"x": 1}, {"a": [None, {}]}, "complete", "failed", "pending",
        "é\tü", UNKNOWN.upper(), UNKNOWN[:63], UNKNOWN + "0",
    ] + hashes)


def random_params(rng, names, hashes):
    """Positional or named, valid and invalid values, unknown names,
    surplus elements, shuffled order."""
    slots = [junk(rng, hashes) if rng.random() < 0.4 else
             (rng.choice(hashes) if i == 0 else
              rng.choice(["complete", "failed"]) if names[i] == "status" else
              rng.choice([0, 1, 2, "1"]))
             for i in range(len(names))]
    if rng.random() < 0.5:
        return slots[:rng.randint(0, len(names) + 2)] + \
            [junk(rng, hashes) for _ in range(rng.randint(0, 1))]
    named = {n: v for n, v in zip(names, slots) if rng.random() < 0.7}
    if rng.random() < 0.2:
        named["bogus"] = junk(rng, hashes)
    items = list(named.items())
    rng.shuffle(items)
    return dict(items)


def raw_call(node, method, params_text):
    """One call with the params exactly as written (pyln-client would drop
    a named None); the answer's result or error object."""
    s = raw_socket(node)
    try:
        raw_send(s, method, params_text)
        resp = raw_read(s)
    finally:
        s.close()
    return ("result", resp["result"]) if "result" in resp else \
        ("error", resp["error"])


RAW = ['{"payment_hash": null}', '{"payment_hash": "%s", "timeout": null}',
       '{"timeout": null, "bogus": 1}', '[null, null]', '["%s", null, null, 7]',
       '{"payment_hash": "%s", "partid": {"x":1,  "y" : [ ]}}', '"x"', '7',
       '{"payment_hash": "%s", "timeout": 12345678901234567890123}']


def compare(node, other, method, params, mismatches):
    a = call(other, method.replace("paystate-", ""), params)
    b = call(node, method, params)
    if a != b:
        mismatches.append((method, params, a, b))


def run_sets(l1, l2, hashes, seed, n):
    """l1 has paystate with takeover off; l2 has paystate with takeover on
    (the built-in names are paystate's there). Hash-dependent answers are
    compared on l1 only; on l2 only sets with the unknown hash."""
    rng = random.Random(seed)
    mismatches = []
    for _ in range(n):
        for method, names in (("waitsendpay", WAIT), ("delpay", DEL)):
            # delpay only ever sees the unknown hash: nothing is deleted.
            pool = hashes if method == "waitsendpay" else [UNKNOWN]
            params = random_params(rng, names, pool)
            compare(l1, l1, "paystate-" + method, params, mismatches)
            if UNKNOWN in json.dumps(params) or method == "delpay":
                compare(l2, l1, method, params, mismatches)
    for text in RAW:
        text = text.replace("%s", hashes[0])
        for method in ("waitsendpay", "delpay"):
            a = raw_call(l1, method, text)
            b = raw_call(l1, "paystate-" + method, text)
            if a != b and not other_spacing(a, b):
                mismatches.append((method, text, a, b))
    return mismatches


def other_spacing(a, b):
    """The one documented difference (README, "Differences from
    lightningd"): an object or array token, quoted in developer mode, is
    written with pyln-client's spacing, not the client's own."""
    sep = ": invalid token '"
    if a[0] != "error" or b[0] != "error" or set(a[1]) != set(b[1]):
        return False
    (ha, _, ta), (hb, _, tb) = (a[1]["message"].partition(sep),
                                b[1]["message"].partition(sep))
    if ha != hb or not ta.startswith(("{", "[")):
        return False
    return json.loads(ta[:-1]) == json.loads(tb[:-1])


def nodes(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    l2 = paystate_node(node_factory, plugin_path, takeover=True)
    hashes = [selfpay(l1), selfpay(l1, wrong_secret=True), UNKNOWN]
    wait_recorded(l1, complete=1, failed=1)
    return l1, l2, hashes


def production(node):
    """Restarts the node as operators run it: no --developer, no dev-*."""
    node.stop()
    node.daemon.early_opts = [o for o in node.daemon.early_opts
                              if o != "--developer"]
    for k in [k for k in node.daemon.opts if k.startswith("dev-")]:
        del node.daemon.opts[k]
    node.start()


def test_random_parameter_sets_developer_mode(node_factory, plugin_path):
    l1, l2, hashes = nodes(node_factory, plugin_path)
    # Tokens quoted as written: integers beyond 64 bits and floats too.
    assert run_sets(l1, l2, hashes, seed=1, n=150) == []
    kind, err = call(l1, "paystate-waitsendpay", {"payment_hash": "zz"})
    assert err["message"] == \
        "payment_hash: should be a 32 byte hex value: invalid token '\"zz\"'"


def test_random_parameter_sets_production_mode(node_factory, plugin_path):
    l1, l2, hashes = nodes(node_factory, plugin_path)
    production(l1)
    production(l2)
    assert run_sets(l1, l2, hashes, seed=2, n=150) == []
    kind, err = call(l1, "paystate-waitsendpay", {"payment_hash": "zz"})
    assert err["message"] == ("payment_hash: should be a 32 byte hex value: "
                              "invalid token (see logs for details)")
    # The token goes to the log, as lightningd logs it for its own.
    l1.daemon.wait_for_log(r"plugin-paystate: Invalid parameter payment_hash "
                           r"\(should be a 32 byte hex value\): token '\"zz\"'")
