"""paystate-listpays on a real node, against the node's own `listpays`:
MPP payments, a failed group, a part retried in its group, several groups
of one hash, self-payments, one payment still held; whole and page by
page."""
from pyln.testing.utils import wait_for

from util import (AMOUNT, call, held_pair, invoice, selfpay, send_held,
                  wait_ledger_is_node)


def listpays(node, **params):
    return node.rpc.call("paystate-listpays", params)["pays"]


def payments(l1, l2):
    """Every kind of payment; returns when all but one are settled."""
    def held(n):
        wait_for(lambda: l2.rpc.holdcount()["held"] == n)

    # Three parts, completed.
    inv = invoice(l2, 3 * AMOUNT)
    for partid in (1, 2, 3):
        send_held(l1, l2, partid=partid, total=3 * AMOUNT, inv=inv,
                  groupid=1)
    held(3)
    l2.rpc.holdrelease()
    # A group failed, then the hash paid in a second group of two parts,
    # one of them failed and retried within the group.
    inv = invoice(l2, 2 * AMOUNT)
    for partid in (1, 2):
        send_held(l1, l2, partid=partid, total=2 * AMOUNT, inv=inv,
                  groupid=1)
    held(2)
    l2.rpc.holdfail()
    wait_for(lambda: all(
        p["status"] == "failed" for p in
        l1.rpc.listsendpays(payment_hash=inv["payment_hash"])["payments"]))
    for partid in (1, 2):
        send_held(l1, l2, partid=partid, total=2 * AMOUNT, inv=inv,
                  groupid=2)
    held(2)
    l2.rpc.holdfail(1)
    wait_for(lambda: any(
        p["status"] == "failed" and p["groupid"] == 2 for p in
        l1.rpc.listsendpays(payment_hash=inv["payment_hash"])["payments"]))
    send_held(l1, l2, partid=3, total=2 * AMOUNT, inv=inv, groupid=2)
    held(2)
    l2.rpc.holdrelease()
    for i in range(6):
        selfpay(l1, wrong_secret=(i % 2 == 0))
    # Held: still pending.
    send_held(l1, l2)
    held(1)
    wait_ledger_is_node(l1)


def test_listpays_whole_and_page_by_page(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    payments(l1, l2)
    want = l1.rpc.listpays()["pays"]
    assert len(want) == 10
    assert listpays(l1) == want
    assert listpays(l1, index="created") == want
    for limit in (1, 3, 4):
        for reverse in (False, True):
            walked, start = [], None
            while True:
                params = {"index": "created", "limit": limit,
                          "reverse": reverse}
                if start is not None:
                    params["start"] = start
                page = listpays(l1, **params)
                assert len(page) <= limit
                if not page:
                    break
                walked += page
                at = page[-1]["created_index"]
                if reverse and at == 1:
                    break
                start = at - 1 if reverse else at + 1
            assert walked == (want[::-1] if reverse else want), \
                (limit, reverse)
    # By the last update: the same entries (listpays orders them by
    # their first update in its page of parts).
    by_update = listpays(l1, index="updated")
    assert sorted(by_update, key=lambda p: p["created_index"]) == want
    ups = [p.get("updated_index", 0) for p in by_update]
    assert ups == sorted(ups)
    # status keeps whole payments of that status.
    for status in ("complete", "failed", "pending"):
        assert listpays(l1, status=status) == \
            [p for p in want if p["status"] == status], status
    h = want[1]["payment_hash"]
    assert listpays(l1, payment_hash=h) == \
        l1.rpc.listpays(payment_hash=h)["pays"]
    # lightningd's checks, as listpays makes them.
    for params in ({"limit": 2}, {"start": 3}, {"index": "nope"},
                   {"limit": "x", "index": "created"}):
        assert call(l1, "paystate-listpays", params) == \
            call(l1, "listpays", params), params
    l2.rpc.holdrelease()
