"""Thousands of callers at once on a real node: every kind of waiter
(the taken-over `waitsendpay`, `paystate-waitsendpay`, `paystate-waitpay`,
`paystate-waitanysendpay`) waits on held payments, and each gets the
node's answer when they are released, however many wait: no caller sees
paystate's connection to lightningd fail, and paystate's sockets and
memory stay bounded."""
from pyln.testing.utils import wait_for

from util import (held_pair, peak_rss_kib, plugin_proc, raw_answers,
                  raw_calls, send_held, sockets_of, status)

PAYMENTS = 20
EACH = 500


def test_two_thousand_waiters_of_every_kind(node_factory, plugin_path,
                                            executor):
    # Before v25.12 (no hook filters) `waitsendpay` stays lightningd's.
    l1, l2 = held_pair(node_factory, plugin_path, takeover=True)
    takeover = l1.rpc.call("paystate-status")["takeover"]
    since = l1.rpc.wait("sendpays", "updated", 0)["updated"]
    hashes = [send_held(l1, l2)["payment_hash"] for _ in range(PAYMENTS)]
    wait_for(lambda: l2.rpc.holdcount()["held"] == PAYMENTS)
    calls = []
    for i in range(EACH):
        h = hashes[i % PAYMENTS]
        calls += [("waitsendpay", {"payment_hash": h}),
                  ("paystate-waitsendpay", {"payment_hash": h}),
                  ("paystate-waitpay", {"payment_hash": h}),
                  ("paystate-waitanysendpay", {"lastpay_index": since})]
    socks, sent = raw_calls(l1, calls)
    # A part's waiter per waitsendpay of paystate's and per waitpay.
    wait_for(lambda: status(l1)["waiters"] == (3 if takeover else 2) * EACH)
    paystate = plugin_proc(l1)
    # Its pool, its batches', deletes' and created watch's sockets and
    # cln-plugin's own: not a socket per caller (each waitpay caller had
    # one of its own, 500 here).
    wait_for(lambda: sockets_of(paystate) <= 32)
    print("paystate: {} sockets while {} wait".format(sockets_of(paystate),
                                                      len(calls)))
    l2.rpc.holdrelease()
    answers = raw_answers(socks, sent, executor)
    assert len(answers) == len(calls)

    rows = {h: only_row(l1, h) for h in hashes}
    pays = {h: only_pay(l1, h) for h in hashes}
    failed = [(calls[i][0], a) for i, a in answers.items() if "error" in a]
    assert not failed, failed[:5]
    for i, a in answers.items():
        method, params = calls[i]
        got = a["result"]
        if method == "paystate-waitanysendpay":
            part = got["payment"]
            assert "failure" not in got, a
            assert part["updated_index"] > since, a
            assert part == rows[part["payment_hash"]], a
        elif method == "paystate-waitpay":
            want = pays[params["payment_hash"]]
            assert got == want, a
        else:
            assert got == rows[params["payment_hash"]], (method, a)
    assert sockets_of(paystate) <= 32
    # Thousands of callers are little state each (a few KiB).
    assert peak_rss_kib(paystate) < 64 * 1024, peak_rss_kib(paystate)
    print("paystate: {} sockets after, peak RSS {} KiB".format(
        sockets_of(paystate), peak_rss_kib(paystate)))


def only_row(node, h):
    [row] = node.rpc.listsendpays(payment_hash=h)["payments"]
    assert row["status"] == "complete", row
    return row


def only_pay(node, h):
    [pay] = node.rpc.listpays(payment_hash=h)["pays"]
    return pay
