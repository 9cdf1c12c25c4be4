"""Deletes: the built-in `delpay` stays lightningd's (paystate hooks no
delete), `paystate-delpay` answers as it does, and whatever deletes a part
(either name, with or without partid and groupid, autoclean), with
takeover on and off, paystate answers it 208 at once and its ledger
records follow."""
import pytest
from pyln.testing.utils import only_one, wait_for
from util import (answer, call, held_pair, invoice, ledger_records,
                  node_terminal, paystate_node, selfpay, send_held, status,
                  wait_autoclean_age, wait_caught_up, wait_ledger_is_node,
                  wait_recorded)


def mixed(node):
    """A hash with a failed group 1 and a complete group 2."""
    inv = invoice(node)
    h = inv["payment_hash"]
    kind, _ = answer(node.rpc.sendpay, [], h, amount_msat=10000,
                     payment_secret="00" * 32, bolt11=inv["bolt11"],
                     groupid=1)
    assert kind == "error"
    node.rpc.sendpay([], h, amount_msat=10000, bolt11=inv["bolt11"],
                     payment_secret=inv["payment_secret"], groupid=2)
    return h


def listed(node, h):
    return node.rpc.listsendpays(payment_hash=h)["payments"]


def test_delpay_whole_hash_and_single_part(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    h = mixed(l1)
    ok = selfpay(l1)
    wait_recorded(l1, complete=2, failed=1)
    before = listed(l1, h)
    assert [p["status"] for p in before] == ["failed", "complete"]
    r = l1.rpc.delpay(h, "failed")
    assert r == {"payments": [before[0]]}
    assert listed(l1, h) == [before[1]]
    r = l1.rpc.delpay(payment_hash=h, status="complete", partid=0, groupid=2)
    assert r == {"payments": [before[1]]}
    assert listed(l1, h) == []
    assert l1.rpc.call("paystate-listsendpays", [h])["payments"] == []
    wait_ledger_is_node(l1)
    assert status(l1)["parts"] == {"complete": 1, "failed": 0, "deleting": 0}
    # Gone for waitsendpay too, as for lightningd.
    kind, err = call(l1, "waitsendpay", [h, 0, 0, 2])
    assert (kind, err["code"]) == ("error", 208)
    # The other payment was not touched.
    assert l1.rpc.waitsendpay(ok)["status"] == "complete"


def test_delpay_errors_match_the_builtin(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    h = mixed(l1)
    ok = selfpay(l1)
    wait_recorded(l1, complete=2, failed=1)
    for params in ([ok, "failed"], [ok, "failed", 0, 1], [ok, "complete", 1, 1],
                   [h, "complete", 0, 1], [h, "failed", 0, 2],
                   [h, "failed", 5, 5], ["ee" * 32, "complete"],
                   {"payment_hash": ok, "status": "pending"},
                   {"payment_hash": ok, "status": "complete", "partid": 0},
                   [ok, "complete", None, 1]):
        builtin = call(l1, "delpay", params)
        ours = call(l1, "paystate-delpay", params)
        assert builtin[0] == "error", params
        assert builtin == ours, params
    assert len(listed(l1, h)) == 2 and len(listed(l1, ok)) == 1


def test_pending_part_is_never_deleted(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path, takeover=True)
    inv = send_held(l1, l2)
    h = inv["payment_hash"]
    wait_for(lambda: l2.rpc.holdcount()["held"] == 1)
    for params in ([h, "complete"], [h, "failed"], [h, "complete", 0, 1]):
        kind, err = call(l1, "delpay", params)
        assert (kind, err["code"]) == ("error", 208), err
        assert "has pending status" in err["message"]
    assert only_one(listed(l1, h))["status"] == "pending"
    l2.rpc.holdrelease()
    l1.rpc.waitsendpay(h)
    assert l1.rpc.delpay(h, "complete")["payments"][0]["status"] == "complete"


@pytest.mark.parametrize("takeover", [True, False])
def test_autoclean_deletes_hundreds_and_the_ledger_follows(node_factory,
                                                           plugin_path,
                                                           takeover):
    l1 = paystate_node(node_factory, plugin_path, takeover=takeover)
    for i in range(300):
        selfpay(l1, wrong_secret=(i % 3 == 0))
    wait_recorded(l1, complete=200, failed=100)
    wait_caught_up(l1)
    wait_ledger_is_node(l1)
    wait_autoclean_age(l1)
    done = l1.rpc.call("autoclean-once", ["failedpays", 1])
    assert done["autoclean"]["failedpays"]["cleaned"] == 100
    done = l1.rpc.call("autoclean-once", ["succeededpays", 1])
    assert done["autoclean"]["succeededpays"]["cleaned"] == 200
    assert l1.rpc.listsendpays()["payments"] == []
    assert l1.rpc.call("paystate-listsendpays")["payments"] == []
    wait_ledger_is_node(l1)
    assert ledger_records(l1) == set()
    assert status(l1)["parts"] == {"complete": 0, "failed": 0, "deleting": 0}


def gone(node, p):
    """paystate answers a deleted part 208, by either name."""
    params = {"payment_hash": p["payment_hash"], "timeout": 0,
              "partid": p.get("partid", 0), "groupid": p["groupid"]}
    for method in ("paystate-waitsendpay", "waitsendpay"):
        kind, err = call(node, method, params)
        assert (kind, err["code"]) == ("error", 208), (method, p, err)
    assert node.rpc.call("paystate-listsendpays",
                         [p["payment_hash"]])["payments"] == []


@pytest.mark.parametrize("takeover", [True, False])
def test_every_way_of_deleting_is_followed(node_factory, plugin_path,
                                           takeover):
    l1 = paystate_node(node_factory, plugin_path, takeover=takeover)
    hashes = [selfpay(l1, wrong_secret=(i % 2 == 0)) for i in range(8)]
    wait_recorded(l1, complete=4, failed=4)
    wait_ledger_is_node(l1)
    parts = [only_one(listed(l1, h)) for h in hashes]

    def args(p):
        return [p["payment_hash"], p["status"], p.get("partid", 0),
                p["groupid"]]
    # The built-in, one part: lightningd moves its `deleted` index.
    l1.rpc.delpay(*args(parts[0]))
    # The built-in, a whole hash: no index moves; answers ask the node.
    l1.rpc.delpay(*args(parts[1])[:2])
    # paystate's name, one part and a whole hash.
    l1.rpc.call("paystate-delpay", args(parts[2]))
    l1.rpc.call("paystate-delpay", args(parts[3])[:2])
    for p in parts[:4]:
        gone(l1, p)
    # autoclean, over the rest (older than 1 s).
    wait_autoclean_age(l1)
    l1.rpc.call("autoclean-once", ["failedpays", 1])
    l1.rpc.call("autoclean-once", ["succeededpays", 1])
    for p in parts[4:]:
        gone(l1, p)
    assert node_terminal(l1) == set()
    # The records go with the next batch of writes, but for the whole
    # hash the built-in deleted without a word: the listing above found
    # it gone.
    wait_ledger_is_node(l1)
