"""paystate-failures on a real node: a few hundred failures through
several channels and nodes, counted against a recount made by asking the
node's own waitsendpay of every failed part."""
import secrets
import time
from collections import defaultdict

from pyln.client import RpcError
from pyln.testing.utils import only_one, wait_for

from util import TIMEOUT, call, invoice, route_to, wait_ledger_is_node

ROUNDS = 40


def fail_round(l1, l2, l3, inv2, inv3, groupid):
    """Four failures: at l2 and at l3 (a wrong payment secret), and at l2
    again forwarding (a fee too low, a channel it does not know)."""
    direct = route_to(l1, l2, 1000)
    # Through l2, a fee and a delay well above what l2 asks.
    to_l3 = only_one(l2.rpc.listpeerchannels(l3.info["id"])["channels"])
    via = [dict(direct[0], amount_msat=3000, delay=105),
           {"amount_msat": 1000, "id": l3.info["id"], "delay": 5,
            "channel": to_l3["short_channel_id"]}]
    cheap = [dict(via[0], amount_msat=1000), via[1]]
    unknown = [via[0], dict(via[1], channel="1x1x1")]
    sent = [(direct, inv2["payment_hash"], inv2["payment_secret"]),
            (via, inv3["payment_hash"], inv3["payment_secret"]),
            (cheap, secrets.token_hex(32), None),
            (unknown, secrets.token_hex(32), None)]
    for route, h, secret in sent:
        l1.rpc.sendpay(route, h, payment_secret=secrets.token_hex(32),
                       groupid=groupid, amount_msat=1000)
    for _, h, _ in sent:
        try:
            l1.rpc.waitsendpay(h, TIMEOUT, groupid=groupid)
            raise AssertionError("paid")
        except RpcError:
            pass


def recount(l1, since, until, by):
    """The rows counted from the node's own waitsendpay of each failed
    part whose completed_at is in the window."""
    rows = defaultdict(lambda: {"count": 0, "payments": set(),
                                "failcodes": defaultdict(int)})
    failed = l1.rpc.listsendpays(status="failed")["payments"]
    for p in failed:
        if not since <= p["completed_at"] < until:
            continue
        try:
            l1.rpc.waitsendpay(p["payment_hash"], 0, p.get("partid", 0),
                               p["groupid"])
            raise AssertionError("not failed")
        except RpcError as e:
            d = e.error["data"]
        key = {"channel": ("erring_channel", "erring_direction"),
               "node": ("erring_node",),
               "failcode": ("failcode",)}[by]
        row = rows[tuple(d.get(k) for k in key)]
        row["count"] += 1
        row["payments"].add((p["payment_hash"], p["groupid"]))
        row["failcodes"][d["failcode"]] += 1
    return {k: (r["count"], len(r["payments"]), dict(r["failcodes"]))
            for k, r in rows.items()}


def counted(l1, since, until, by):
    r = l1.rpc.call("paystate-failures",
                    {"since": since, "until": until, "by": by})
    key = {"channel": ("erring_channel", "erring_direction"),
           "node": ("erring_node",), "failcode": ("failcode",)}[by]
    out = {}
    for row in r["failures"]:
        codes = {c["failcode"]: c["count"] for c in row.get("failcodes", [])}
        if by == "failcode":
            codes = {row["failcode"]: row["count"]}
        out[tuple(row.get(k) for k in key)] = (row["count"],
                                               row["payments"], codes)
    return r, out


def test_failures_equal_a_recount_from_waitsendpay(node_factory,
                                                   plugin_path):
    l1, l2, l3 = node_factory.line_graph(
        3, wait_for_announce=True,
        opts=[{"plugin": plugin_path, "paystate-takeover": False}, {}, {}])
    began = int(time.time())
    inv2, inv3 = invoice(l2, 1000), invoice(l3, 1000)
    for g in range(1, ROUNDS // 2 + 1):
        fail_round(l1, l2, l3, inv2, inv3, g)
    # A boundary no failure shares a second with.
    boundary = int(time.time()) + 2
    wait_for(lambda: time.time() >= boundary + 1)
    for g in range(ROUNDS // 2 + 1, ROUNDS + 1):
        fail_round(l1, l2, l3, inv2, inv3, g)
    wait_ledger_is_node(l1)
    end = int(time.time()) + 2
    for since, until in ((began - 1, end), (began - 1, boundary),
                         (boundary, end)):
        for by in ("channel", "node", "failcode"):
            r, got = counted(l1, since, until, by)
            assert got == recount(l1, since, until, by), (since, until, by)
        assert r["failed_parts"] == sum(c for c, _, _ in got.values())
    whole, rows = counted(l1, began - 1, end, "channel")
    assert whole["failed_parts"] == 4 * ROUNDS
    assert len(rows) >= 3, rows
    assert ("1x1x1", 1) in rows or ("1x1x1", 0) in rows
    # The default window (the last day) holds them all.
    assert l1.rpc.call("paystate-failures")["failed_parts"] == 4 * ROUNDS
    assert call(l1, "paystate-failures", {"by": "peer"})[0] == "error"
    assert call(l1, "paystate-failures", {"since": 5, "until": 5})[0] == \
        "error"
