"""waitsendpay: paystate's answers against the built-in's on the same node
(takeover off: `waitsendpay` is lightningd's, `paystate-waitsendpay` is
paystate's), for complete, failed, pending and unknown parts."""
import pytest
from pyln.testing.utils import only_one, wait_for
from util import (AMOUNT, call, held_pair, invoice, paystate_node, selfpay,
                  send_held, status, wait_recorded, waiter)


def both(node, params):
    """The built-in's and paystate's answers to the same params."""
    return (call(node, "waitsendpay", params),
            call(node, "paystate-waitsendpay", params))


def test_complete_and_failed_self_payments(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    ok = selfpay(l1)
    bad = selfpay(l1, wrong_secret=True)
    wait_recorded(l1, complete=1, failed=1)
    for params in ([ok], {"payment_hash": ok, "timeout": 0},
                   [bad], {"payment_hash": bad, "partid": 0, "groupid": 1},
                   [ok.upper(), "5"], [bad, 0, 3], [ok, 0, 0, 7],
                   ["ee" * 32], {"payment_hash": "ee" * 32, "partid": 2}):
        builtin, ours = both(l1, params)
        assert builtin == ours, params
    kind, err = call(l1, "paystate-waitsendpay", [bad])
    assert (kind, err["code"]) == ("error", 203)
    assert "data" not in call(l1, "paystate-waitsendpay", ["ee" * 32])[1]


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_pending_part_polls_times_out_and_is_released(
        node_factory, plugin_path, outcome):
    l1, l2 = held_pair(node_factory, plugin_path)
    inv = send_held(l1, l2)
    h = inv["payment_hash"]
    wait_for(lambda: l2.rpc.holdcount()["held"] == 1)
    for params in ([h, 0], {"payment_hash": h, "timeout": 1}):
        builtin, ours = both(l1, params)
        assert builtin == ours == ("error", {
            "code": 200, "message": "Timed out while waiting"}), params
    answers = {"waitsendpay": [], "paystate-waitsendpay": []}
    threads = [waiter(l1, m, [h], out) for m, out in answers.items()]
    wait_for(lambda: status(l1)["waiters"] == 1)
    (l2.rpc.holdrelease if outcome == "success" else l2.rpc.holdfail)()
    for t in threads:
        t.join(60)
    builtin, ours = answers["waitsendpay"][0], answers["paystate-waitsendpay"][0]
    assert builtin == ours
    assert builtin[0] == ("result" if outcome == "success" else "error")
    # And afterwards, polled, the same again.
    wait_recorded(l1, complete=1 if outcome == "success" else 0,
                  failed=1 if outcome == "failure" else 0)
    builtin, ours = both(l1, [h])
    assert builtin == ours


def test_mpp_parts_and_groupid_default(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    total = 2 * AMOUNT
    inv = invoice(l2, total)
    h = inv["payment_hash"]
    for partid in (1, 2):
        send_held(l1, l2, AMOUNT, partid=partid, total=total, inv=inv,
                  groupid=1)
    wait_for(lambda: l2.rpc.holdcount()["held"] == 2)
    l2.rpc.holdrelease()
    for partid in (1, 2):
        l1.rpc.waitsendpay(h, partid=partid, groupid=1)
    wait_recorded(l1, complete=2)
    for params in ([h, 0, 1], [h, 0, 2], [h, 0, 1, 1], [h, 0, 2, 1],
                   [h, 0, 0], [h, 0, 1, 2], [h, None, 2, None]):
        builtin, ours = both(l1, params)
        assert builtin == ours, params


def test_route_failure_from_a_peer_that_is_gone(node_factory, plugin_path):
    l1, l2, l3 = node_factory.line_graph(3, opts=[
        {"plugin": plugin_path, "paystate-takeover": False}, {}, {}])
    inv = invoice(l3)
    # By hand (getroute is deprecated): generous fee and CLTV margins, so
    # that l2's only objection is the missing next peer.
    scid = [only_one(a.rpc.listpeerchannels(b.info["id"])["channels"])[
        "short_channel_id"] for a, b in ((l1, l2), (l2, l3))]
    route = [{"id": l2.info["id"], "channel": scid[0],
              "amount_msat": AMOUNT + 1000, "delay": 40},
             {"id": l3.info["id"], "channel": scid[1],
              "amount_msat": AMOUNT, "delay": 20}]
    l3.stop()
    l1.rpc.sendpay(route, inv["payment_hash"],
                   payment_secret=inv["payment_secret"])
    l1.wait_for_htlcs()
    wait_recorded(l1, failed=1)
    builtin, ours = both(l1, [inv["payment_hash"]])
    kind, err = builtin
    assert kind == "error" and err["code"] == 204, err
    assert err["data"]["erring_node"] == l2.info["id"]
    assert err["data"]["status"] == "failed"
    assert builtin == ours
