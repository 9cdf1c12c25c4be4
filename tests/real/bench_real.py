"""Real-node benchmark: paystate's cost on real lightningd nodes, as ratios
to the built-ins measured on the same kind of node in the same run.

Not a test (nothing here passes or fails on a timing). Run it with

    .venv/bin/pytest tests/real/bench_real.py -s -q

Plugins log at info, as operators run them (pyln-testing's default is
trace). PAYSTATE_BENCH_PARTS (default 600) sets the history sizes;
PAYSTATE_BENCH_BIG (default 0: skipped) the ledger size of the large
restart, seeded straight into the datastore while the node is stopped.
"""
import hashlib
import json
import os
import re
import select
import socket
import sqlite3
import statistics
import time

from pyln.testing.utils import wait_for
from test_waitsendpay import HOLD, send_held
from util import paystate_node, rpc_path, selfpay, status

PARTS = int(os.environ.get("PAYSTATE_BENCH_PARTS", "600"))
BIG = int(os.environ.get("PAYSTATE_BENCH_BIG", "0"))
ROWS = []


def row(name, builtin, paystate, unit="", note=""):
    ratio = "{:.2f}x".format(paystate / builtin) if builtin else ""
    fmt = "{:.2f}".format
    ROWS.append("{:<58} {:>10} {:>10} {:>7} {}".format(
        name, fmt(builtin) + unit if builtin is not None else "-",
        fmt(paystate) + unit, ratio, note))


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t


def median_ms(samples):
    return statistics.median(samples) * 1000


def history(node, n):
    """n self-payments, one in three failed; their hashes."""
    return [selfpay(node, wrong_secret=(i % 3 == 0)) for i in range(n)]


PASSTHROUGH = os.path.join(os.path.dirname(__file__), "plugins",
                           "passthrough.py")


def as_operators_run(node):
    """Starts a node made with start=False with its plugins logging at
    info, as operators run them: pyln-testing sets cln-plugin's
    CLN_PLUGIN_LOG to trace, which sends lightningd a log line with every
    message paystate receives, ahead of its answers on the same pipe."""
    node.daemon.env["CLN_PLUGIN_LOG"] = "info"
    node.start()
    return node


def new_node(node_factory, options=None):
    return as_operators_run(node_factory.get_node(options=options,
                                                  start=False))


def paystate(node_factory, plugin_path, takeover=True):
    return as_operators_run(paystate_node(node_factory, plugin_path,
                                          takeover=takeover, start=False))


def test_bench(node_factory, plugin_path):
    plain = new_node(node_factory)
    relay = new_node(node_factory, options={"plugin": PASSTHROUGH})
    taken = paystate(node_factory, plugin_path)
    beside = paystate(node_factory, plugin_path, takeover=False)
    # paystate with takeover off: its hook answers `continue` at once, a
    # Rust relay (the passthrough plugin is a Python one).
    hooked = paystate(node_factory, plugin_path, takeover=False)

    # Making payments, with and without paystate, interleaved in chunks.
    spent = {"plain": 0.0, "taken": 0.0}
    for _ in range(PARTS // 50):
        spent["plain"] += timed(history, plain, 50)
        spent["taken"] += timed(history, taken, 50)
    wait_for(lambda: status(taken)["parts"]["complete"]
             + status(taken)["parts"]["failed"] >= PARTS // 50 * 50)
    made = PARTS // 50 * 50
    row("making {} self-payments (s)".format(made),
        spent["plain"], spent["taken"], "s",
        "{:.2f} ms more a payment".format(
            (spent["taken"] - spent["plain"]) * 1000 / made))

    # lightningd's floors: what one datastore write and delete cost (a
    # durable ledger adds at least one write per terminal part, and one
    # delete per deleted part), and a plugin round trip (any command a
    # plugin serves) against a built-in answered from memory.
    floors = {k: [] for k in ("write", "delete", "getinfo", "plugin")}
    value = "x" * 600
    for i in range(100):
        key = ["bench", str(i)]
        floors["write"].append(timed(plain.rpc.datastore, key=key,
                                     string=value, mode="must-create"))
        floors["delete"].append(timed(plain.rpc.deldatastore, key))
        floors["getinfo"].append(timed(beside.rpc.getinfo))
        floors["plugin"].append(timed(beside.rpc.call, "paystate-status"))
    g = median_ms(floors["getinfo"])
    row("floor: one datastore write, 600 bytes (ms, median)", g,
        median_ms(floors["write"]), "ms", "vs getinfo")
    row("floor: one deldatastore (ms, median)", g,
        median_ms(floors["delete"]), "ms", "vs getinfo")
    row("floor: a plugin method's round trip (ms, median)", g,
        median_ms(floors["plugin"]), "ms", "paystate-status vs getinfo")

    # Polls (timeout 0) of a complete part, interleaved round by round.
    h_plain, h_taken, h_beside, h_relay, h_hooked = (
        selfpay(plain), selfpay(taken), selfpay(beside), selfpay(relay),
        selfpay(hooked))
    wait_for(lambda: status(beside)["parts"]["complete"] == 1)
    polls = {k: [] for k in ("builtin", "takeover", "method", "takeover_g",
                             "relay", "hooked")}
    for _ in range(300):
        polls["builtin"].append(timed(plain.rpc.waitsendpay, h_plain, 0))
        polls["relay"].append(timed(relay.rpc.waitsendpay, h_relay, 0))
        polls["hooked"].append(timed(hooked.rpc.waitsendpay, h_hooked, 0))
        polls["takeover"].append(timed(taken.rpc.waitsendpay, h_taken, 0))
        polls["takeover_g"].append(timed(taken.rpc.waitsendpay, h_taken, 0,
                                         0, 1))
        polls["method"].append(timed(beside.rpc.call, "paystate-waitsendpay",
                                     [h_beside, 0]))
    b = median_ms(polls["builtin"])
    row("poll timeout 0 via takeover (ms, median)", b,
        median_ms(polls["takeover"]), "ms")
    row("poll timeout 0 via takeover, with groupid (ms, median)", b,
        median_ms(polls["takeover_g"]), "ms")
    row("poll timeout 0 via paystate-waitsendpay (ms, median)", b,
        median_ms(polls["method"]), "ms")
    row("floor: poll relayed by a do-nothing hook (ms, median)", b,
        median_ms(polls["relay"]), "ms", "Python (pyln-client)")
    row("floor: poll relayed by paystate's hook, takeover off (ms, median)",
        b, median_ms(polls["hooked"]), "ms", "Rust (cln-plugin)")

    # One delpay of one part, sequential calls, alternating nodes.
    def parts(node):
        return [p for p in node.rpc.listsendpays()["payments"]
                if p["status"] != "pending"]
    history(hooked, 100)
    dels = {"plain": [], "taken": [], "hooked": []}
    for a, b_, c in zip(parts(plain)[:100], parts(taken)[:100],
                        parts(hooked)[:100]):
        for name, node, p in (("plain", plain, a), ("taken", taken, b_),
                              ("hooked", hooked, c)):
            dels[name].append(timed(node.rpc.delpay, p["payment_hash"],
                                    p["status"], p.get("partid", 0),
                                    p["groupid"]))
    row("delpay of one part (ms, median of 100)", median_ms(dels["plain"]),
        median_ms(dels["taken"]), "ms")
    row("floor: that delpay relayed by paystate's hook, takeover off (ms)",
        median_ms(dels["plain"]), median_ms(dels["hooked"]), "ms",
        "Rust (cln-plugin)")

    # CLN's own autoclean over what is left (>= 500 parts each), and over
    # as many on a node whose delpay is relayed through a plugin's hook
    # that lets it through at once (lightningd's cost of a hooked command).
    history(relay, len(parts(taken)))
    history(hooked, len(parts(taken)))
    left = (len(parts(plain)), len(parts(taken)))
    time.sleep(2)
    clean = {}
    for name, node in (("plain", plain), ("relay", relay), ("hooked", hooked),
                       ("taken", taken)):
        t = time.perf_counter()
        node.rpc.call("autoclean-once", ["failedpays", 1])
        node.rpc.call("autoclean-once", ["succeededpays", 1])
        clean[name] = time.perf_counter() - t
        assert parts(node) == []
    row("autoclean-once failed+succeeded over {} parts (s)".format(left[1]),
        clean["plain"], clean["taken"], "s")
    row("floor: the same autoclean, delpay relayed by a do-nothing hook (s)",
        clean["plain"], clean["relay"], "s", "Python (pyln-client)")
    row("floor: the same, relayed by paystate's hook, takeover off (s)",
        clean["plain"], clean["hooked"], "s", "Rust (cln-plugin)")
    assert status(taken)["parts"]["complete"] == 0

    # Datastore bytes per part.
    history(beside, 60)
    wait_for(lambda: sum(status(beside)["parts"].values()) >= 61)
    n = sum(status(beside)["parts"].values())
    usage = beside.rpc.call("datastoreusage", {"key": ["paystate"]})
    row("datastore bytes per part", None,
        usage["datastoreusage"]["total_bytes"] / n, "B")

    hist = first_start(node_factory, plugin_path)

    wake(node_factory, plugin_path)
    if BIG:
        big_restart(node_factory, plugin_path)
    phases = (("under autoclean's concurrent deletes, queueing included",
               taken),
              ("on a quiet node", beside),
              ("over a first start and restart", hist))
    for name, node in phases:
        slowest = status(node)["slowest_call"]
        row("slowest call paystate made {} (ms)".format(name), None,
            slowest["ms"], "ms", slowest["method"])
    print("\n{:<58} {:>10} {:>10} {:>7}".format("figure", "built-in",
                                                "paystate", "ratio"))
    print("\n".join(ROWS))


def first_start(node_factory, plugin_path):
    """First start over a history, and restart; the node's other commands
    (getinfo) while the history is imported, against after. Returns the
    node."""
    hist = new_node(node_factory)
    history(hist, PARTS)
    t = time.perf_counter()
    hist.rpc.plugin_start(plugin_path)
    first_answer = timed(hist.rpc.call, "paystate-status")
    during = []
    while status(hist)["catchup"]["state"] != "done":
        during.append(timed(hist.rpc.getinfo))
    took = time.perf_counter() - t
    row("first start over {} parts: caught up (s)".format(PARTS), None,
        took, "s", "{:.0f} parts/s; first answer after {:.0f} ms".format(
            PARTS / took, first_answer * 1000))
    # The same loop after (a status call, then getinfo), like for like.
    after = []
    for _ in range(max(200, len(during))):
        status(hist)
        after.append(timed(hist.rpc.getinfo))
    row("getinfo while that history is imported (ms, median)",
        median_ms(after), median_ms(during), "ms",
        "vs after; means {:.2f}x".format(
            statistics.mean(during) / statistics.mean(after)))
    hist.rpc.plugin_stop("paystate")
    t = time.perf_counter()
    hist.rpc.plugin_start(plugin_path)
    hist.rpc.call("paystate-status")
    row("restart with {} parts: answering (s)".format(PARTS), None,
        time.perf_counter() - t, "s")
    return hist


def wake(node_factory, plugin_path):
    """How long after the built-in's waiter paystate's waiter is answered,
    on one pending part released by success. Both requests go out on raw
    sockets and one thread notes when each answer's first byte arrives
    (Python threads would add the GIL's switching to the gap). The same
    measure on two built-in waiters is the floor beside it."""
    l1 = paystate(node_factory, plugin_path, takeover=False)
    l2 = new_node(node_factory, options={"plugin": HOLD})
    node_factory.join_nodes([l1, l2])
    gaps = {"waitsendpay": [], "paystate-waitsendpay": []}
    for i in range(60):
        second = "paystate-waitsendpay" if i % 2 else "waitsendpay"
        inv = send_held(l1, l2)
        h = inv["payment_hash"]
        wait_for(lambda: l2.rpc.holdcount()["held"] == 1)
        socks = [raw_request(l1, m, h) for m in ("waitsendpay", second)]
        if second != "waitsendpay":
            wait_for(lambda: status(l1)["waiters"] == 1)
        time.sleep(0.05)
        l2.rpc.holdrelease()
        first_byte = {}
        while len(first_byte) < 2:
            ready, _, _ = select.select(
                [s for s in socks if s not in first_byte], [], [], 30)
            assert ready, "no answer within 30 s"
            now = time.perf_counter()
            for s in ready:
                first_byte[s] = now
        for s in socks:
            answer = read_answer(s)
            assert "result" in answer, answer
        gaps[second].append(first_byte[socks[1]] - first_byte[socks[0]])
    row("wake-up: second waiter's answer after the built-in's (ms, "
        "median of 30)", median_ms(gaps["waitsendpay"]),
        median_ms(gaps["paystate-waitsendpay"]), "ms",
        "built-in column: a second built-in waiter")


def raw_request(node, method, payment_hash):
    s = socket.socket(socket.AF_UNIX)
    s.connect(rpc_path(node))
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": method, "method": method,
                          "params": [payment_hash]}).encode())
    return s


def read_answer(s):
    buf = b""
    while not buf.endswith(b"\n\n"):
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    s.close()
    return json.loads(buf)


def datastore_leaves(node, key):
    """Every datastore entry with a value at or below key."""
    out = []
    for e in node.rpc.listdatastore(key)["datastore"]:
        if "generation" in e:
            out.append(e)
        else:
            out.extend(datastore_leaves(node, e["key"]))
    return out


def clone(entry, old_hash, new_hash, old_index, new_index):
    """A part's datastore entry, made over for another part: its hash (and
    shard), created_index and id substituted in key and value alike."""
    def fix(text):
        text = text.replace(old_hash, new_hash)
        for field in ("created_index", "id"):
            text = re.sub(r'("{}": ?){}\b'.format(field, old_index),
                          r"\g<1>{}".format(new_index), text)
        return text.replace("-{}-".format(old_index),
                            "-{}-".format(new_index))
    key = [new_hash[:len(k)] if old_hash.startswith(k) and len(k) < 64
           else fix(k) for k in entry["key"]]
    return key, fix(entry["string"])


def big_restart(node_factory, plugin_path):
    """A ledger of BIG parts written straight into the datastore (as
    paystate writes them: the entries of one real part, copied), then a
    restart: time to answering, and to the index being complete."""
    node = paystate(node_factory, plugin_path)
    h = selfpay(node)
    wait_for(lambda: status(node)["parts"]["complete"] == 1)
    index = node.rpc.listsendpays(payment_hash=h)["payments"][0][
        "created_index"]
    template = [e for e in datastore_leaves(node, ["paystate"])
                if h in json.dumps(e["key"])]
    assert template, "no datastore entry names the part"
    node.stop()
    db = sqlite3.connect(os.path.join(node.daemon.lightning_dir, "regtest",
                                      "lightningd.sqlite3"))
    rows = []
    for i in range(BIG):
        # Spread as real payment hashes are (over every shard).
        ph = hashlib.sha256(b"bench %d" % i).hexdigest()
        for e in template:
            key, value = clone(e, h, ph, index, 1000 + i)
            rows.append(("\0".join(key).encode(), value.encode()))
    db.executemany("INSERT INTO datastore (key, data, generation) "
                   "VALUES (?, ?, 0)", rows)
    # A node whose ledger holds that many parts has made at least as many
    # (their payments since deleted from its table, with takeover off):
    # its created index says so, as lightningd keeps it.
    var = "last_sendpays_created_index"
    db.execute("DELETE FROM vars WHERE name = ?", (var,))
    db.execute("INSERT INTO vars (name, intval) VALUES (?, ?)",
               (var, 1000 + BIG))
    db.commit()
    db.close()
    t = time.perf_counter()
    node.start()
    node.rpc.call("paystate-status")
    answering = time.perf_counter() - t
    wait_for(lambda: sum(status(node)["parts"].values()) >= BIG, timeout=900)
    row("restart with {} parts: answering (s)".format(BIG), None, answering,
        "s", "index complete after {:.1f} s".format(time.perf_counter() - t))
    slowest = status(node)["slowest_call"]
    row("slowest call paystate made at {} parts (ms)".format(BIG), None,
        slowest["ms"], "ms", slowest["method"])
    # The node's other commands while the index loads in the background.
    # One getinfo every 50 ms over the whole load, and as many after, so
    # that lightningd's own start-up work weighs on a few samples only.
    node.restart()
    during, after = [], []
    while status(node)["catchup"]["state"] != "done":
        during.append(timed(node.rpc.getinfo))
        time.sleep(0.05)
    for _ in range(len(during)):
        status(node)
        after.append(timed(node.rpc.getinfo))
        time.sleep(0.05)
    row("getinfo while the {}-part index loads (ms, median)".format(BIG),
        median_ms(after), median_ms(during), "ms",
        "vs after; means {:.2f}x".format(
            statistics.mean(during) / statistics.mean(after)))
