"""paystate-waitpay on a real node: whole payments (one hash, one group)
held at the payee, waited on by several callers, each answer compared
with the node's own `listpays` entry for the payment."""
from pyln.client import RpcError
from pyln.testing.utils import wait_for
import pytest

from util import AMOUNT, call, held_pair, invoice, send_held, status, waiter


def listpays_entry(node, h, created_index):
    """The node's listpays entry for the group whose first part is that."""
    return [p for p in node.rpc.listpays(payment_hash=h)["pays"]
            if p["created_index"] == created_index][0]


def mpp(l1, l2, parts, groupid=1):
    total = parts * AMOUNT
    inv = invoice(l2, total)
    for partid in range(1, parts + 1):
        send_held(l1, l2, AMOUNT, partid=partid, total=total, inv=inv,
                  groupid=groupid)
    wait_for(lambda: l2.rpc.holdcount()["held"] == parts)
    return inv["payment_hash"]


def first_index(node, h, groupid=1):
    return min(p["created_index"]
               for p in node.rpc.listsendpays(payment_hash=h)["payments"]
               if p["groupid"] == groupid)


def test_callers_released_with_the_listpays_entry(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    h = mpp(l1, l2, 3)
    out = []
    threads = [waiter(l1, "paystate-waitpay", [h], out) for _ in range(4)]
    # Each caller waits on each of the three parts.
    wait_for(lambda: status(l1)["waiters"] == 12)
    assert not out
    l2.rpc.holdrelease()
    for t in threads:
        t.join(60)
    assert len(out) == 4 and all(kind == "result" for kind, _ in out), out
    wait_for(lambda: all(p["status"] == "complete" for p in
                         l1.rpc.listsendpays(payment_hash=h)["payments"]))
    want = listpays_entry(l1, h, first_index(l1, h))
    for _, got in out:
        # Answered at the first part's completion: a later part may move
        # the entry's updated_index and nothing else.
        assert got["updated_index"] <= want["updated_index"]
        assert dict(got, updated_index=0) == dict(want, updated_index=0)
    # Settled: answered at once, the node's entry exactly.
    assert call(l1, "paystate-waitpay", [h, 0]) == ("result", want)


def test_a_failed_group(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    h = mpp(l1, l2, 2)
    out = []
    t = waiter(l1, "paystate-waitpay", {"payment_hash": h, "timeout": 60},
               out)
    wait_for(lambda: status(l1)["waiters"] == 2)
    l2.rpc.holdfail()
    t.join(60)
    assert out == [("result", listpays_entry(l1, h, first_index(l1, h)))]
    assert out[0][1]["status"] == "failed"


def test_a_part_retried_within_its_group(node_factory, plugin_path):
    """One of two parts fails and is sent again in the same group: the
    payment stays pending through the failure, and completes with the
    retry."""
    l1, l2 = held_pair(node_factory, plugin_path)
    inv = invoice(l2, 2 * AMOUNT)
    h = inv["payment_hash"]
    for partid in (1, 2):
        send_held(l1, l2, AMOUNT, partid=partid, total=2 * AMOUNT, inv=inv,
                  groupid=1)
    wait_for(lambda: l2.rpc.holdcount()["held"] == 2)
    out = []
    t = waiter(l1, "paystate-waitpay", [h], out)
    wait_for(lambda: status(l1)["waiters"] == 2)
    l2.rpc.holdfail(1)
    wait_for(lambda: any(p["status"] == "failed" for p in
                         l1.rpc.listsendpays(payment_hash=h)["payments"]))
    # Still pending: the caller waits on the part left.
    wait_for(lambda: status(l1)["waiters"] == 1)
    assert call(l1, "paystate-waitpay", [h, 0]) == (
        "error", {"code": 200, "message": "Timed out while waiting"})
    assert not out
    send_held(l1, l2, AMOUNT, partid=3, total=2 * AMOUNT, inv=inv,
              groupid=1)
    wait_for(lambda: l2.rpc.holdcount()["held"] == 2)
    l2.rpc.holdrelease()
    t.join(60)
    assert len(out) == 1 and out[0][0] == "result", out
    wait_for(lambda: sum(p["status"] == "complete" for p in
                         l1.rpc.listsendpays(payment_hash=h)["payments"])
             == 2)
    want = listpays_entry(l1, h, first_index(l1, h))
    assert want["status"] == "complete" and want["number_of_parts"] == 2
    got = out[0][1]
    assert got["updated_index"] <= want["updated_index"]
    assert dict(got, updated_index=0) == dict(want, updated_index=0)
    assert call(l1, "paystate-waitpay", [h, 0]) == ("result", want)


def test_polls_timeouts_unknown_payments_and_parameters(
        node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    h = send_held(l1, l2)["payment_hash"]
    wait_for(lambda: l2.rpc.holdcount()["held"] == 1)
    timed_out = ("error", {"code": 200, "message": "Timed out while waiting"})
    assert call(l1, "paystate-waitpay", [h, 0]) == timed_out
    assert call(l1, "paystate-waitpay", {"payment_hash": h,
                                         "timeout": 1}) == timed_out
    with pytest.raises(RpcError, match="Never attempted payment for"):
        l1.rpc.call("paystate-waitpay", ["ee" * 32, 0])
    with pytest.raises(RpcError, match="Never attempted payment group 7"):
        l1.rpc.call("paystate-waitpay", [h, 0, 7])
    # timeout and groupid checked as waitsendpay checks its own.
    for params in ({"payment_hash": h, "timeout": "x"},
                   {"payment_hash": h, "timeout": -1},
                   {"payment_hash": h, "groupid": "y"},
                   {"payment_hash": "zz"}, {"timeout": 0}):
        assert call(l1, "paystate-waitpay", params) == \
            call(l1, "waitsendpay", params), params
    l2.rpc.holdrelease()
    wait_for(lambda: call(l1, "paystate-waitpay", [h, 0])[0] == "result")
    assert call(l1, "paystate-waitpay", [h, 0]) == \
        ("result", listpays_entry(l1, h, first_index(l1, h)))
