"""Real-node benchmark: paystate's cost on real lightningd nodes, as ratios
to nodes without paystate measured in the same run.

Not a test (nothing here passes or fails on a timing). Run it with

    cargo build --release --examples    # the floors' do-nothing plugins
    .venv/bin/pytest tests/real/bench_real.py -s -q

Plugins log at info, as operators run them (pyln-testing's default is
trace). Sizes: PAYSTATE_BENCH_PARTS (default 600) payments made,
PAYSTATE_BENCH_AUTOCLEAN (default 5000) parts autoclean deletes, in
PAYSTATE_BENCH_AUTOCLEAN_ROUNDS (default 2) rounds,
PAYSTATE_BENCH_HISTORY (default 10000) parts of a first start's history,
PAYSTATE_BENCH_BIG (default 0: skipped) parts of the large restart,
seeded straight into the node's tables while it is stopped.
PAYSTATE_BENCH_FOOTPRINT (default 1500) self-payments of the footprint
(bytes on disk per part, memory, CPU).
PAYSTATE_BENCH_DEEP (default 5000) parts of history before the payments
of the deep section (payments on nodes that already hold a history).
PAYSTATE_BENCH_UPGRADE (default 20000) parts of a layout-v3 ledger moved
to v4 at start-up (sqlite only: it is seeded into the node's file).
TEST_DB_PROVIDER=postgres runs every node on PostgreSQL (the big restart,
which seeds sqlite files, is sqlite's only).
PAYSTATE_BENCH_ONLY (default: all) names the sections of test_bench to run,
comma-separated: payments, deep, footprint, floors, polls, deletes,
autoclean, first_start, upgrade; and of test_bench_big_restart:
big_restart, big_first_start.
"""
import hashlib
import json
import os
import random
import select
import sqlite3
import statistics
import time

import databases
from pyln.testing.utils import wait_for
from util import (AMOUNT, HOLD, db_path, drop_torn_plugin_io, invoice,
                  node_terminal, ledger_records,
                  page_key, page_records, paystate_node, plugin_proc,
                  raw_socket, raw_read, raw_send, selfpay, send_held,
                  seed_pages, set_sendpays_indexes, move_level_mark, status,
                  v3_node)

PARTS = int(os.environ.get("PAYSTATE_BENCH_PARTS", "600"))
AUTOCLEAN = int(os.environ.get("PAYSTATE_BENCH_AUTOCLEAN", "5000"))
AUTOCLEAN_ROUNDS = int(os.environ.get("PAYSTATE_BENCH_AUTOCLEAN_ROUNDS", "2"))
WAKES = 50  # wake-ups measured of each kind
HISTORY = int(os.environ.get("PAYSTATE_BENCH_HISTORY", "10000"))
BIG = int(os.environ.get("PAYSTATE_BENCH_BIG", "0"))
FOOTPRINT = int(os.environ.get("PAYSTATE_BENCH_FOOTPRINT", "1500"))
DEEP = int(os.environ.get("PAYSTATE_BENCH_DEEP", "5000"))
UPGRADE = int(os.environ.get("PAYSTATE_BENCH_UPGRADE", "20000"))
# A catch-up page (src/import.rs), for the floor paged the same way.
PAGE = 128
ONLY = set(filter(None, os.environ.get("PAYSTATE_BENCH_ONLY", "").split(",")))
ROWS = []


def row(name, builtin, paystate, unit="", note=""):
    ratio = "{:.2f}x".format(paystate / builtin) if builtin else ""
    fmt = "{:.2f}".format
    ROWS.append("{:<60} {:>10} {:>10} {:>7} {}".format(
        name, fmt(builtin) + unit if builtin is not None else "-",
        fmt(paystate) + unit, ratio, note))
    print("\n" + ROWS[-1], flush=True)  # as it comes, should a later part fail


def timed(fn, *args, **kwargs):
    return timed_value(fn, *args, **kwargs)[0]


def timed_value(fn, *args, **kwargs):
    """How long a call took, and what it returned."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def median_ms(samples):
    return statistics.median(samples) * 1000


def history(node, n):
    """n self-payments, one in three failed; their hashes."""
    return [selfpay(node, wrong_secret=(i % 3 == 0)) for i in range(n)]


def pay_in_turns(nodes, n, seed):
    """n self-payments on each of `nodes` (name: node), in chunks of 25 in
    a shuffled order each round, so that every node follows every other as
    often on the shared cores; returns the seconds each spent, and how
    many payments each made."""
    spent = {name: 0.0 for name in nodes}
    order = list(nodes)
    shuffle = random.Random(seed).shuffle
    for _ in range(n // 25):
        shuffle(order)
        for name in order:
            spent[name] += timed(history, nodes[name], 25)
    return spent, n // 25 * 25


PASSTHROUGH = os.path.join(os.path.dirname(__file__), "plugins",
                           "passthrough.py")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "target",
                        "release", "examples")


def as_operators_run(node):
    """Starts a node made with start=False with its plugins logging at
    info, as operators run them: pyln-testing sets cln-plugin's
    CLN_PLUGIN_LOG to trace, which sends lightningd a log line with every
    message paystate receives, ahead of its answers on the same pipe; and
    lightningd itself at info, not pyln-testing's debug."""
    node.daemon.env["CLN_PLUGIN_LOG"] = "info"
    node.daemon.opts["log-level"] = "info"
    node.start()
    return node


def new_node(node_factory, options=None):
    return as_operators_run(node_factory.get_node(options=options,
                                                  start=False))


def paystate(node_factory, plugin_path, takeover=True, options=None,
             **kwargs):
    return as_operators_run(paystate_node(node_factory, plugin_path,
                                          takeover=takeover, options=options,
                                          start=False, **kwargs))


def example(name):
    """A floor plugin of examples/ (a release build)."""
    path = os.path.join(EXAMPLES, name)
    assert os.access(path, os.X_OK), (
        "{} is missing: run `cargo build --release --examples`".format(path))
    return path


def with_subscriber(node_factory, plugin_path):
    """A node with paystate (takeover off) and the do-nothing subscriber,
    loaded in that order (lightningd writes a notification to paystate
    first)."""
    both = [plugin_path, example("subscriber")]
    return paystate(node_factory, plugin_path, takeover=False,
                    options={"plugin": both})


def terminal(node):
    return [p for p in node.rpc.listsendpays()["payments"]
            if p["status"] != "pending"]


def calls_since(node, before):
    """paystate's calls to lightningd since `before` (a `calls` of
    paystate-status): {method: (count, ms)}."""
    return {m: (a["count"] - before.get(m, {}).get("count", 0),
                a["ms"] - before.get(m, {}).get("ms", 0.0))
            for m, a in status(node)["calls"].items()}


def calls_row(what, node, before, per, each, spent=None):
    """paystate's calls to lightningd since `before` (or `spent`, from
    calls_since): their time per `each` (`per` of them), and the methods
    that took most, to say where paystate's cost goes."""
    if spent is None:
        spent = calls_since(node, before)
    top = sorted(spent.items(), key=lambda kv: -kv[1][1])[:4]
    row("paystate's calls to lightningd, {} (ms per {})".format(what, each),
        None, sum(ms for _, ms in spent.values()) / per, "ms",
        "; ".join("{} x{}: {:.0f} ms".format(m, c, ms)
                  for m, (c, ms) in top if c))


def caught_up(node):
    """Until paystate's catch-up is done and its records are the node's."""
    wait_for(lambda: status(node)["catchup"]["state"] == "done", timeout=900)
    wait_for(lambda: ledger_records(node) == node_terminal(node), timeout=60)


def wanted(section):
    return not ONLY or section in ONLY


def test_bench(node_factory, plugin_path):
    slow = []
    if ONLY - {"first_start"} or not ONLY:
        plain = new_node(node_factory)
        relay = new_node(node_factory, options={"plugin": PASSTHROUGH})
        taken = paystate(node_factory, plugin_path)
        beside = paystate(node_factory, plugin_path, takeover=False)
        slow.append(("while payments, deletes and polls ran", taken))
    if wanted("payments"):
        payments(node_factory, plain, taken)
    if wanted("deep"):
        deep(node_factory, plugin_path)
    if wanted("footprint"):
        footprint(node_factory, plugin_path)
    if wanted("floors"):
        floors(plain, beside, relay)
    if wanted("polls"):
        polls(node_factory, plain, taken, beside, relay)
    if wanted("deletes"):
        deletes(node_factory, plain, taken, beside)
    if wanted("autoclean"):
        autoclean(node_factory, plugin_path, plain, relay)
    if wanted("first_start"):
        slow.append(("over a first start and restart",
                     first_start(node_factory, plugin_path)))
    if wanted("upgrade") and databases.provider() == "sqlite3":
        slow.append(("moving a v3 ledger", upgrade(node_factory,
                                                   plugin_path)))
    for name, node in slow:
        slowest = status(node)["slowest_call"]
        row("slowest call paystate made {} (ms)".format(name), None,
            slowest["ms"], "ms", slowest["method"])
    print("\n{:<60} {:>10} {:>10} {:>7}".format("figure", "without",
                                                "paystate", "ratio"))
    print("\n".join(ROWS))


def test_bench_wake(node_factory, plugin_path):
    wake(node_factory, plugin_path)
    wake_group(node_factory, plugin_path)
    print("\n".join(ROWS))


def test_bench_other_commands(node_factory, plugin_path):
    """The node's other commands with paystate loaded (takeover on, its
    default) against a node without: on a release without hook filters
    they must not pass through paystate at all."""
    plain = new_node(node_factory)
    taken = paystate(node_factory, plugin_path)
    for method in ("getinfo", "listpeers", "listfunds"):
        t = {"plain": [], "taken": []}
        for _ in range(500):
            t["plain"].append(timed(plain.rpc.call, method))
            t["taken"].append(timed(taken.rpc.call, method))
        row("{} (ms, median of 500)".format(method), median_ms(t["plain"]),
            median_ms(t["taken"]), "ms", "{}; hook declared: {}".format(
                status(taken)["release"], status(taken)["hook"]))
    print("\n".join(ROWS))


def test_bench_big_restart(node_factory, plugin_path):
    if not BIG or databases.provider() != "sqlite3":
        return
    big_restart(node_factory, plugin_path)
    print("\n".join(ROWS))


def payments(node_factory, plain, taken):
    """Making payments on a node without paystate, one with a plugin
    merely subscribed to the payment notifications (the floor: any design
    of paystate learns outcomes that way) and one with paystate, in chunks
    of 25 in a shuffled order each round, so that every node follows every
    other as often on the shared cores (pay_in_turns)."""
    subscribed = new_node(node_factory,
                          options={"plugin": example("subscriber")})
    # Loaded, as an operator's node has it: its start-up work done.
    caught_up(taken)
    nodes = {"plain": plain, "subscribed": subscribed, "taken": taken}
    before = status(taken)["calls"]
    spent, made = pay_in_turns(nodes, PARTS, 600)
    caught_up(taken)
    calls_row("payments", taken, before, made, "payment")
    row("making {} self-payments (s)".format(made),
        spent["plain"], spent["taken"], "s",
        "{:+.3f} ms a payment".format(
            (spent["taken"] - spent["plain"]) * 1000 / made))
    row("floor: {} self-payments, a do-nothing subscriber (s)".format(made),
        spent["plain"], spent["subscribed"], "s",
        "{:+.3f} ms a payment".format(
            (spent["subscribed"] - spent["plain"]) * 1000 / made))
    size = taken.rpc.call("datastoreusage", {"key": ["paystate"]})
    row("datastore bytes per part", None,
        size["datastoreusage"]["total_bytes"] / len(terminal(taken)), "B")


def deep(node_factory, plugin_path):
    """Payments on nodes that already hold DEEP parts of history, with
    paystate and without, in shuffled chunks of 25: what a record's write
    costs once the datastore is large (on PostgreSQL lightningd reads the
    table's tail after each written key)."""
    plain = new_node(node_factory)
    taken = paystate(node_factory, plugin_path)
    nodes = {"plain": plain, "taken": taken}
    for node in nodes.values():
        history(node, DEEP)
    caught_up(taken)
    spent, made = pay_in_turns(nodes, PARTS, 25)
    caught_up(taken)
    row("{} self-payments over {} parts of history (s)".format(made, DEEP),
        spent["plain"], spent["taken"], "s",
        "{:+.3f} ms a payment".format(
            (spent["taken"] - spent["plain"]) * 1000 / made))


def table_bytes(node):
    """Bytes of each table with its indexes, and of the whole database
    under "*": on sqlite, dbstat's pages of each b-tree; on PostgreSQL,
    pg_total_relation_size (indexes and TOAST included)."""
    if databases.provider() == "postgres":
        rows = node.db.query(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS size "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'public'")
        out = {r["name"]: r["size"] for r in rows}
        out["*"] = node.db.query("SELECT pg_database_size(current_database())"
                                 " AS size")[0]["size"]
        return out
    db = sqlite3.connect("file:{}?mode=ro".format(db_path(node)), uri=True)
    try:
        owner = dict(db.execute("SELECT name, tbl_name FROM sqlite_master "
                                "WHERE type IN ('table', 'index')"))
        out = {"*": 0}
        for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat "
                                     "GROUP BY name"):
            table = owner.get(name, name)
            out[table] = out.get(table, 0) + size
            out["*"] += size
        return out
    finally:
        db.close()


def cpu_seconds(pid):
    """User and system CPU time a process has used (/proc/PID/stat)."""
    with open("/proc/{}/stat".format(pid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid):
    """VmRSS and VmHWM (resident now, and at its most), in MiB."""
    with open("/proc/{}/status".format(pid)) as f:
        kib = {line.split(":")[0]: int(line.split()[1]) for line in f
               if line.startswith(("VmRSS:", "VmHWM:"))}
    return kib["VmRSS"] / 1024, kib["VmHWM"] / 1024


def footprint(node_factory, plugin_path):
    """What paystate costs at rest, per part of history: the bytes its
    records add to the node's database against what the node's own
    payments table adds, the CPU each process spends on the payments, and
    paystate's memory; a node without paystate beside one with it, paying
    in shuffled chunks of 25 (one payment in three failed, each with its
    bolt11)."""
    plain = new_node(node_factory)
    taken = paystate(node_factory, plugin_path)
    caught_up(taken)
    nodes = {"plain": plain, "taken": taken}
    pids = {"plain": plain.daemon.proc.pid, "taken": taken.daemon.proc.pid,
            "paystate": plugin_proc(taken).pid}
    before = {n: table_bytes(node) for n, node in nodes.items()}
    cpu = {k: cpu_seconds(pid) for k, pid in pids.items()}
    _, made = pay_in_turns(nodes, FOOTPRINT, 23)
    caught_up(taken)
    cpu = {k: (cpu_seconds(pid) - cpu[k]) * 1000 / made
           for k, pid in pids.items()}
    after = {n: table_bytes(node) for n, node in nodes.items()}

    def grew(n, table):
        return (after[n].get(table, 0) - before[n].get(table, 0)) / made
    row("payments table, bytes per part", grew("plain", "payments"),
        grew("taken", "payments"), "B", "the node's own rows")
    row("paystate's records vs the node's payments, bytes per part",
        grew("plain", "payments"), grew("taken", "datastore"), "B",
        "datastore table and its index")
    row("whole database, bytes per part", grew("plain", "*"),
        grew("taken", "*"), "B")
    row("lightningd CPU per 1,000 payments (s)", cpu["plain"], cpu["taken"],
        "s")
    row("paystate CPU per 1,000 payments (s)", None, cpu["paystate"], "s")
    rss, hwm = memory_mib(pids["paystate"])
    row("paystate memory after {} payments (MiB)".format(made), None, rss,
        "MiB", "VmRSS; VmHWM {:.1f} MiB".format(hwm))


def floors(plain, beside, relay):
    """lightningd's floors: one datastore write and delete on their own
    (a commit each), and a plugin method's round trip, against getinfo."""
    f = {k: [] for k in ("write", "delete", "getinfo", "plugin")}
    value = "x" * 600
    for i in range(100):
        key = ["bench", str(i)]
        f["write"].append(timed(plain.rpc.datastore, key=key, string=value,
                                mode="must-create"))
        f["delete"].append(timed(plain.rpc.deldatastore, key))
        f["getinfo"].append(timed(beside.rpc.getinfo))
        f["plugin"].append(timed(beside.rpc.call, "paystate-status"))
    g = median_ms(f["getinfo"])
    row("floor: one datastore write alone, 600 bytes (ms)", g,
        median_ms(f["write"]), "ms", "vs getinfo")
    row("floor: one deldatastore alone (ms)", g, median_ms(f["delete"]),
        "ms", "vs getinfo")
    row("floor: a plugin method's round trip (ms)", g,
        median_ms(f["plugin"]), "ms", "paystate-status vs getinfo")


def test_bench_takeover_off(node_factory, plugin_path):
    """The node's own waitsendpay polled with takeover off: by the option
    (the hook is declared all the same, and relays), and by
    PAYSTATE_TAKEOVER=false in lightningd's environment (no hook), against
    a node without paystate, in shuffled rounds."""
    plain = new_node(node_factory)
    option = paystate(node_factory, plugin_path, takeover=False)
    env = paystate_node(node_factory, plugin_path, takeover=False,
                        start=False)
    env.daemon.env["PAYSTATE_TAKEOVER"] = "false"
    env = as_operators_run(env)
    assert status(env)["hook"] is False
    nodes = {"plain": plain, "option": option, "env": env}
    h = {n: selfpay(node) for n, node in nodes.items()}
    p = {n: [] for n in nodes}
    calls = list(nodes)
    shuffle = random.Random(24).shuffle
    for _ in range(300):
        shuffle(calls)
        for n in calls:
            p[n].append(timed(nodes[n].rpc.waitsendpay, h[n], 0))
    b = median_ms(p["plain"])
    row("poll: built-in waitsendpay, paystate-takeover=false (ms)", b,
        median_ms(p["option"]), "ms", "hook declared: relayed")
    row("poll: built-in waitsendpay, PAYSTATE_TAKEOVER=false (ms)", b,
        median_ms(p["env"]), "ms", "no hook")


def polls(node_factory, plain, taken, beside, relay):
    """Polls (timeout 0, no groupid) of a complete part, round by round."""
    rust = new_node(node_factory,
                    options={"plugin": example("passthrough")})
    h = {n: selfpay(node) for n, node in (("plain", plain), ("taken", taken),
                                          ("beside", beside),
                                          ("relay", relay), ("rust", rust))}
    wait_for(lambda: status(beside)["parts"]["complete"] >= 1)
    p = {k: [] for k in ("builtin", "takeover", "method", "method_g",
                         "relay", "rust", "status", "listing")}
    calls = [
        ("builtin", lambda: plain.rpc.waitsendpay(h["plain"], 0)),
        ("relay", lambda: relay.rpc.waitsendpay(h["relay"], 0)),
        ("rust", lambda: rust.rpc.waitsendpay(h["rust"], 0)),
        ("takeover", lambda: taken.rpc.waitsendpay(h["taken"], 0)),
        ("method", lambda: beside.rpc.call("paystate-waitsendpay",
                                           [h["beside"], 0])),
        ("method_g", lambda: beside.rpc.call("paystate-waitsendpay",
                                             [h["beside"], 0, 0, 1])),
        ("status", lambda: beside.rpc.call("paystate-status")),
        # A plugin method that reads the node's row of one hash: the two
        # round trips a poll is made of, and no more.
        ("listing", lambda: beside.rpc.call("paystate-listsendpays",
                                            [h["beside"]])),
    ]
    # Each round in another order: every kind of poll follows every other
    # as often (a relayed call leaves work on the shared cores that the
    # call after it pays for).
    shuffle = random.Random(15).shuffle
    for _ in range(300):
        shuffle(calls)
        for name, call in calls:
            p[name].append(timed(call))
    b = median_ms(p["builtin"])
    row("poll: paystate-waitsendpay (ms, median of 300)", b,
        median_ms(p["method"]), "ms", "vs the built-in's poll")
    row("poll: paystate-waitsendpay with groupid (ms)", b,
        median_ms(p["method_g"]), "ms")
    row("poll: waitsendpay via takeover (ms)", b, median_ms(p["takeover"]),
        "ms")
    row("floor: a plain plugin method, paystate-status (ms)", b,
        median_ms(p["status"]), "ms")
    row("floor: a plugin method reading one hash's rows (ms)", b,
        median_ms(p["listing"]), "ms", "paystate-listsendpays of the hash")
    row("floor: a poll relayed by a do-nothing hook (ms)", b,
        median_ms(p["relay"]), "ms", "Python (pyln-client)")
    row("floor: a poll relayed by a do-nothing hook in Rust (ms)", b,
        median_ms(p["rust"]), "ms", "cln-plugin, as paystate")


def deletes(node_factory, plain, taken, beside):
    """One delete of one part: the built-in on a node with paystate
    (takeover on) against one without, and paystate-delpay against the
    built-in, sequential calls, alternating nodes. The floor: the
    built-in beside a plugin that follows the deletes as paystate does."""
    follower = new_node(node_factory, options={"plugin": example("follower")})
    for node in (plain, taken, beside, follower):
        history(node, 100)
    caught_up(taken)
    caught_up(beside)
    before = status(taken)["calls"]
    d = {"plain": [], "taken": [], "beside": [], "own": [], "follower": []}
    parts = [terminal(n)[:100] for n in (plain, taken, beside, follower)]
    for i, (a, b, c, f) in enumerate(zip(*parts)):
        def args(p):
            return [p["payment_hash"], p["status"], p.get("partid", 0),
                    p["groupid"]]
        d["plain"].append(timed(plain.rpc.delpay, *args(a)))
        d["taken"].append(timed(taken.rpc.delpay, *args(b)))
        d["follower"].append(timed(follower.rpc.delpay, *args(f)))
        # paystate-delpay on every other part, the built-in on the rest.
        if i % 2:
            d["own"].append(timed(beside.rpc.call, "paystate-delpay",
                                  args(c)))
        else:
            d["beside"].append(timed(beside.rpc.delpay, *args(c)))
    row("delpay of one part, paystate loaded (ms, median of 100)",
        median_ms(d["plain"]), median_ms(d["taken"]), "ms",
        "takeover on vs no paystate")
    row("floor: delpay of one part, a plugin following the deletes (ms)",
        median_ms(d["plain"]), median_ms(d["follower"]), "ms",
        "examples/follower.rs, as paystate follows them")
    caught_up(taken)
    calls_row("100 deletes", taken, before, 100, "delete")
    row("paystate-delpay of one part (ms, median of 50)",
        median_ms(d["beside"]), median_ms(d["own"]), "ms",
        "vs the built-in delpay")
    caught_up(taken)
    caught_up(beside)


def autoclean(node_factory, plugin_path, plain, relay):
    """CLN's own autoclean over AUTOCLEAN parts (a third failed): nodes
    without paystate, with it (takeover on and off), with a do-nothing
    hook on delpay (lightningd's cost of any hooked delete), and with a
    plugin that follows the deletes as paystate does. AUTOCLEAN_ROUNDS
    rounds, the nodes in another order each: a round's ratios move with
    the shared cores' other load and with the order, so each node's
    ratio is also given per round, as the median of the rounds (and
    their range)."""
    on = paystate(node_factory, plugin_path)
    off = paystate(node_factory, plugin_path, takeover=False)
    follower = new_node(node_factory, options={"plugin": example("follower")})
    nodes = [("plain", plain), ("on", on), ("off", off), ("relay", relay),
             ("follower", follower)]
    spent = {name: [] for name, _ in nodes}
    parts = {name: 0 for name, _ in nodes}
    gone = 0.0
    on_calls = {}
    shuffle = random.Random(5000).shuffle
    for _ in range(AUTOCLEAN_ROUNDS):
        for name, node in nodes:
            history(node, AUTOCLEAN - len(terminal(node)))
        for node in (on, off):
            caught_up(node)
        time.sleep(2)
        shuffle(nodes)
        for name, node in nodes:
            parts[name] += len(terminal(node))
            if name == "on":
                before = status(on)["calls"]
            t = time.perf_counter()
            # Once more if a part was left (autoclean-once leaves one at
            # times, with or without paystate).
            for _ in range(3):
                node.rpc.call("autoclean-once", ["failedpays", 1])
                node.rpc.call("autoclean-once", ["succeededpays", 1])
                if not terminal(node):
                    break
            spent[name].append(time.perf_counter() - t)
            assert terminal(node) == [], name
        for node in (on, off):
            t = time.perf_counter()
            wait_for(lambda: ledger_records(node) == set(), timeout=120)
            gone = max(gone, time.perf_counter() - t)
        for m, (c, ms) in calls_since(on, before).items():
            had = on_calls.get(m, (0, 0.0))
            on_calls[m] = (had[0] + c, had[1] + ms)
    rounds = "{} rounds, {} parts".format(AUTOCLEAN_ROUNDS, parts["on"])

    def per_round(name):
        r = [a / b for a, b in zip(spent[name], spent["plain"])]
        return "per round: median {:.2f}x ({:.2f}-{:.2f}x)".format(
            statistics.median(r), min(r), max(r))
    total = {name: sum(t) for name, t in spent.items()}
    row("autoclean-once over {} parts, takeover on (s)".format(AUTOCLEAN),
        total["plain"], total["on"], "s",
        "vs no paystate ({}; {} without); {}".format(
            rounds, parts["plain"], per_round("on")))
    row("autoclean-once, takeover off (s)", total["plain"], total["off"], "s",
        "{}; {}".format(rounds, per_round("off")))
    row("floor: autoclean, delpay through a do-nothing hook (s)",
        total["plain"], total["relay"], "s",
        "what any delpay hook costs; " + per_round("relay"))
    row("floor: autoclean, a plugin following deletes as paystate does (s)",
        total["plain"], total["follower"], "s",
        "examples/follower.rs: the wait window, no ledger; " +
        per_round("follower"))
    row("ledger records all gone after autoclean (s)", None, gone, "s",
        "after the second autoclean-once answered (the longest)")
    calls_row("autoclean, takeover on", on, None, parts["on"] / 1000,
              "1,000 parts", spent=on_calls)


def first_start(node_factory, plugin_path):
    """First start over a history of HISTORY parts, and restart; the
    node's other commands (getinfo) while the history is imported, against
    after; answers checked against the node's table while it runs.
    Returns the node."""
    hist = new_node(node_factory)
    hashes = history(hist, HISTORY)
    t = time.perf_counter()
    hist.rpc.plugin_start(plugin_path)
    first_answer = timed(hist.rpc.call, "paystate-status")
    during = []
    checked = 0
    while status(hist)["catchup"]["state"] != "done":
        during.append(timed(hist.rpc.getinfo))
        if len(during) % 20 == 0:
            h = hashes[(len(during) * 7919) % len(hashes)]
            row_ = hist.rpc.listsendpays(payment_hash=h)["payments"][0]
            got = hist.rpc.call("paystate-listsendpays", [h])["payments"]
            # Imported on the spot if catch-up has not reached it yet.
            assert got == [row_], (got, row_)
            if row_["status"] == "complete":
                assert hist.rpc.call("paystate-waitsendpay", [h, 0]) == row_
            checked += 1
    took = time.perf_counter() - t
    imported = status(hist)["catchup"]["imported"]
    calls_row("first start", hist, {}, max(imported, 1) / 1000,
              "1,000 parts")
    row("first start over {} parts: caught up (s)".format(HISTORY), None,
        took, "s", "{:.0f} parts/s; first answer after {:.0f} ms; {} "
        "answers checked meanwhile".format(imported / took,
                                           first_answer * 1000, checked))
    # The same loop after (a status call, then getinfo), like for like.
    after = []
    for _ in range(max(200, len(during))):
        status(hist)
        after.append(timed(hist.rpc.getinfo))
    row("getinfo while that history is imported (ms, median)",
        median_ms(after), median_ms(during), "ms",
        "vs after; means {:.2f}x".format(
            statistics.mean(during) / statistics.mean(after)))
    floor = pager_floor(hist, "{} parts".format(HISTORY))
    caught_up(hist)
    hist.rpc.plugin_stop("paystate")
    t = time.perf_counter()
    hist.rpc.plugin_start(plugin_path)
    hist.rpc.call("paystate-status")
    row("restart with {} parts: answering (s)".format(HISTORY), None,
        time.perf_counter() - t, "s")
    quiet_first_start(hist, plugin_path, floor)
    return hist


def quiet_first_start(node, plugin_path, floor):
    """The first start again, its ledger wiped, watched by a status call
    every 100 ms only: the floor's client pages alone, and the loop above
    keeps lightningd busy meanwhile, so this is the like-for-like rate."""
    caught_up(node)
    node.rpc.plugin_stop("paystate")
    todo = [["paystate"]]
    while todo:
        for e in node.rpc.listdatastore(todo.pop())["datastore"]:
            if "hex" in e:
                node.rpc.deldatastore(e["key"])
            else:
                todo.append(e["key"])
    t = time.perf_counter()
    node.rpc.plugin_start(plugin_path)
    while status(node)["catchup"]["state"] != "done":
        time.sleep(0.1)
    took = time.perf_counter() - t
    imported = status(node)["catchup"]["imported"]
    row("first start again, watched every 100 ms only (parts/s)", floor,
        imported / took, "/s", "against the floor's parts/s")
    calls_row("that first start", node, {}, max(imported, 1) / 1000,
              "1,000 parts")
    caught_up(node)


class Batches:
    """Requests written together on a connection with `batching` on (one
    transaction for what lightningd reads at once), as paystate writes
    them; answers matched by id."""

    def __init__(self, node):
        self.sock = raw_socket(node)
        self.buf = b""
        self.n = 0
        self.call([("batching", {"enable": True})])

    def call(self, calls):
        ids = []
        out = b""
        for method, params in calls:
            self.n += 1
            ids.append(self.n)
            out += json.dumps({"jsonrpc": "2.0", "id": self.n,
                               "method": method, "params": params}).encode()
        self.sock.sendall(out)
        answers = {}
        while len(answers) < len(ids):
            while b"\n\n" not in self.buf:
                chunk = self.sock.recv(1 << 20)
                assert chunk, "connection closed"
                self.buf += chunk
            frame, self.buf = self.buf.split(b"\n\n", 1)
            if frame.strip():
                a = json.loads(frame)
                answers[a["id"]] = a
        return [answers[i] for i in ids]


def v3_floor(node_factory):
    """lightningd's floor for moving a v3 ledger: a client that does only
    what any move must (list the 4,096 shards, read each record, delete
    it), batched and resting as paystate does (src/migrate/v3.rs), and
    writes nothing. Returns (seconds, lightningd CPU seconds, parts), both
    from lightningd's start, as paystate's are."""
    node, _ = v3_node(node_factory, parts=UPGRADE)
    node.daemon.opts["log-level"] = "info"
    t = time.perf_counter()
    node.start()
    b = Batches(node)
    moved = 0
    shards = [["paystate", "v3", "parts", "{:03x}".format(i)]
              for i in range(4096)]
    for at in range(0, len(shards), 50):
        began = time.perf_counter()
        names = [e["key"] for a in b.call([("listdatastore", {"key": k})
                                           for k in shards[at:at + 50]])
                 for e in a["result"]["datastore"]]
        time.sleep((time.perf_counter() - began) / 2)
        for c in range(0, len(names), 50):
            began = time.perf_counter()
            keys = [k + ["record"] for k in names[c:c + 50]]
            read = b.call([("listdatastore", {"key": k}) for k in keys])
            assert all(a["result"]["datastore"] for a in read), read[:1]
            gone = b.call([("deldatastore", {"key": k}) for k in keys])
            assert all("result" in a for a in gone), gone[:1]
            moved += len(keys)
            time.sleep((time.perf_counter() - began) / 2)
    took = time.perf_counter() - t
    # Since lightningd started, as paystate's figure is.
    spent = cpu_seconds(node.daemon.proc.pid)
    node.stop()
    return took, spent, moved


def upgrade(node_factory, plugin_path):
    """A layout-v3 ledger of UPGRADE parts (a row each, the listing as
    JSON) moved to v4 as paystate starts: parts a second, the node's
    getinfo meanwhile against after, against lightningd's floor
    (v3_floor). Returns the node."""
    floor_took, floor_cpu, floor_moved = v3_floor(node_factory)
    node, _ = v3_node(node_factory, parts=UPGRADE)
    node.daemon.env["CLN_PLUGIN_LOG"] = "info"
    node.daemon.opts["log-level"] = "info"
    node.daemon.opts["plugin"] = plugin_path
    t = time.perf_counter()
    node.start()
    during = []
    while status(node)["catchup"]["migrated"] == 0:
        during.append(timed(node.rpc.getinfo))
        time.sleep(0.02)
    took = time.perf_counter() - t
    spent = cpu_seconds(node.daemon.proc.pid)
    migrated = status(node)["catchup"]["migrated"]
    assert migrated == UPGRADE, migrated
    caught_up(node)
    after = []
    for _ in range(min(max(len(during), 100), 500)):
        status(node)
        after.append(timed(node.rpc.getinfo))
        time.sleep(0.02)
    row("moving a v3 ledger of {} parts to v4 (s)".format(UPGRADE), None,
        took, "s", "{:.0f} parts/s, the start included".format(
            migrated / took))
    row("floor: moving a v3 ledger, read and delete only (s)", floor_took,
        took, "s", "floor {:.0f} parts/s".format(floor_moved / floor_took))
    row("lightningd CPU per v3 part moved (us)",
        floor_cpu / floor_moved * 1e6, spent / migrated * 1e6, "us",
        "vs the floor's; both from lightningd's start")
    row("getinfo while a v3 ledger moves (ms, median)", median_ms(after),
        median_ms(during), "ms", "vs after; slowest {:.1f} ms".format(
            max(during) * 1000))
    return node


def pager_floor(node, what):
    """lightningd's floor for a first start: its table paged as catch-up
    pages it (128 parts by created_index, resting half as long as each
    page took), by a client that does nothing with the rows."""
    start, rows, slowest = 0, 0, 0.0
    t = time.perf_counter()
    while True:
        took, page = timed_value(node.rpc.listsendpays, index="created",
                                 start=start, limit=PAGE)
        page = page["payments"]
        slowest = max(slowest, took)
        rows += len(page)
        time.sleep(took * 0.5)
        if len(page) < PAGE:
            break
        start = page[-1]["created_index"] + 1
    total = time.perf_counter() - t
    row("floor: {} paged as catch-up pages it, doing nothing (s)".format(
        what), None, total, "s", "{:.0f} parts/s; slowest page {:.1f} ms"
        .format(rows / total, slowest * 1000))
    return rows / total


def wake(node_factory, plugin_path):
    """How long after the built-in's waiter paystate's waiter is answered,
    on one pending part released by success. Both requests go out on raw
    sockets and one thread notes when each answer's first byte arrives
    (Python threads would add the GIL's switching to the gap). Floors in
    the same run, in turn with it: a second built-in waiter, and a
    do-nothing plugin's method answered on the notification."""
    l1, l2 = wake_pair(node_factory, plugin_path)
    kinds = ("waitsendpay", "paystate-waitsendpay", "subscriber-next")
    gaps = {k: [] for k in kinds}
    for i in range(3 * WAKES):
        second = kinds[i % 3]
        inv = send_held(l1, l2)
        h = inv["payment_hash"]
        wait_for(lambda: l2.rpc.holdcount()["held"] == 1)
        conns = [raw_request(l1, "waitsendpay", h),
                 raw_request(l1, second, h,
                             [] if second == "subscriber-next" else None)]
        if second == "paystate-waitsendpay":
            wait_for(lambda: status(l1)["waiters"] == 1)
        t = released(l2, conns)
        gaps[second].append(t[1] - t[0])
    row("wake-up: second waiter's answer after the built-in's (ms, "
        "median of {})".format(WAKES), median_ms(gaps["waitsendpay"]),
        median_ms(gaps["paystate-waitsendpay"]), "ms",
        "built-in column: a second built-in waiter")
    row("floor: a do-nothing plugin's method answered on the notification "
        "(ms)", median_ms(gaps["waitsendpay"]),
        median_ms(gaps["subscriber-next"]), "ms", "after the built-in's")


def wake_pair(node_factory, plugin_path):
    """l1 (paystate and the do-nothing subscriber) with a channel to l2,
    which holds incoming HTLCs."""
    l1 = with_subscriber(node_factory, plugin_path)
    l2 = new_node(node_factory, options={"plugin": HOLD})
    node_factory.join_nodes([l1, l2])
    return l1, l2


def released(l2, conns):
    """Releases the held HTLCs; when each request's answer (a result)
    started arriving."""
    time.sleep(0.05)
    l2.rpc.holdrelease()
    t = first_bytes([c.sock for c in conns])
    for c in conns:
        answer = read_answer(c)
        assert "result" in answer, answer
    return t


def raw_request(node, method, payment_hash, params=None):
    """The request sent on a connection of its own (`.sock` for select)."""
    s = raw_socket(node)
    raw_send(s, method, json.dumps([payment_hash] if params is None else params), id=method)
    return s


def first_bytes(socks):
    """When each socket's answer starts arriving (one thread, select)."""
    first_byte = {}
    while len(first_byte) < len(socks):
        ready, _, _ = select.select(
            [s for s in socks if s not in first_byte], [], [], 30)
        assert ready, "no answer within 30 s"
        now = time.perf_counter()
        for s in ready:
            first_byte[s] = now
    return [first_byte[s] for s in socks]


def wake_group(node_factory, plugin_path):
    """How long after the last part's built-in waiter a paystate-waitpay
    on the whole payment (two parts, held at the payee, released together)
    is answered; negative: before it. paystate-waitpay reads the node's
    rows of the payment after the notification (a part may have joined
    the group since its last read). Floors, in turn with it: a do-nothing
    plugin's method answered on the first notification, and the same
    reading the node's rows of the hash first."""
    l1, l2 = wake_pair(node_factory, plugin_path)
    kinds = ("paystate-waitpay", "subscriber-next", "subscriber-next hash")
    gaps = {k: [] for k in kinds}
    for i in range(3 * WAKES):
        third = kinds[i % 3]
        inv = invoice(l2, 2 * AMOUNT)
        h = inv["payment_hash"]
        for partid in (1, 2):
            send_held(l1, l2, AMOUNT, partid=partid, total=2 * AMOUNT,
                      inv=inv, groupid=1)
        wait_for(lambda: l2.rpc.holdcount()["held"] == 2)
        conns = [raw_request(l1, "waitsendpay", h, [h, None, p, 1])
                 for p in (1, 2)]
        method = third.split()[0]
        conns.append(raw_request(l1, method, h,
                                 [] if third == "subscriber-next" else None))
        if third == "paystate-waitpay":
            wait_for(lambda: status(l1)["waiters"] == 2)
        t = released(l2, conns)
        gaps[third].append(t[2] - max(t[:2]))
    row("wake-up: a whole payment's waiter after its last part's (ms, "
        "median of {})".format(WAKES), median_ms(gaps["subscriber-next hash"]),
        median_ms(gaps["paystate-waitpay"]), "ms",
        "built-in column: a do-nothing plugin's method answered on the "
        "first notification with the node's rows of the hash")
    row("floor: a do-nothing plugin's method answered on the first "
        "notification (ms)", None, median_ms(gaps["subscriber-next"]), "ms",
        "without reading the node")


def read_answer(s):
    answer = raw_read(s)
    s.close()
    return answer


def seed_big(node, with_ledger):
    """BIG parts in the node's payments table, copies of one real part
    (spread over payment hashes as real ones are), written while the node
    is stopped; with_ledger: their records in paystate's ledger too, as
    paystate writes them."""
    h = selfpay(node)
    caught_up(node)
    index = node.rpc.listsendpays(payment_hash=h)["payments"][0][
        "created_index"]
    key, slot = page_key(index)
    template = node.rpc.listdatastore(key)["datastore"]
    assert template, "no record of the part"
    record = page_records(bytes.fromhex(template[0]["hex"]))[slot]
    node.stop()
    db = sqlite3.connect(db_path(node))
    cur = db.execute("SELECT * FROM payments WHERE id = ?", (index,))
    cols = [c[0] for c in cur.description]
    payment = dict(zip(cols, cur.fetchone()))
    chunk = 100_000  # a multiple of a page's 64
    for lo in range(0, BIG, chunk):
        pages, payments = {}, []
        for i in range(lo, min(BIG, lo + chunk)):
            ph = hashlib.sha256(b"bench %d" % i).digest()
            dbid = 1000 + i
            key, slot = page_key(dbid)
            body = record[:1] + ph + record[33:]
            page = pages.setdefault("\0".join(key).encode(), bytearray())
            page += bytes([slot, len(body)]) + body
            p = dict(payment, id=dbid, payment_hash=ph)
            # The oldest tenth ten days old, for the autoclean that
            # follows the first start; the rest as the template.
            if i < BIG // 10:
                p["timestamp"] = payment["timestamp"] - 10 * 86400
            if "updated_index" in p:
                p["updated_index"] = dbid
            payments.append(tuple(p[c] for c in cols))
        if with_ledger:
            # A page split by the chunk's edge is appended to, as
            # lightningd appends.
            seed_pages(db, pages)
        db.executemany("INSERT INTO payments ({}) VALUES ({})".format(
            ", ".join(cols), ", ".join("?" * len(cols))), payments)
    set_sendpays_indexes(db, 1000 + BIG)
    if with_ledger:
        move_level_mark(db, 1000 + BIG)
    db.commit()
    db.close()


def big_start(node, what, expect):
    """The node started over its seeded history: time to answering (an old
    part polled, correctly), to the index loaded, to catch-up done; the
    node's getinfo meanwhile against after; paystate's memory."""
    old = hashlib.sha256(b"bench %d" % (BIG // 3)).hexdigest()
    t = time.perf_counter()
    node.start()
    row_ = node.rpc.listsendpays(payment_hash=old)["payments"][0]
    assert node.rpc.call("paystate-waitsendpay", [old, 0]) == row_
    answering = time.perf_counter() - t
    during, after = [], []
    loaded = None
    while status(node)["catchup"]["state"] != "done":
        if loaded is None and status(node)["index"]["loaded"]:
            loaded = time.perf_counter() - t
        during.append(timed(node.rpc.getinfo))
        time.sleep(0.02)
    done = time.perf_counter() - t
    st = status(node)
    row("{} with {} parts: answering (s)".format(what, BIG), None, answering,
        "s", "index loaded after {:.1f} s, catch-up done after {:.1f} s "
        "({:.0f} parts/s)".format(loaded or done, done, BIG / done))
    assert sum(st["parts"].values()) == expect, st["parts"]
    row("slowest call paystate made, {} at {} parts (ms)".format(what, BIG),
        None, st["slowest_call"]["ms"], "ms", st["slowest_call"]["method"])
    for _ in range(min(len(during), 500)):
        status(node)
        after.append(timed(node.rpc.getinfo))
        time.sleep(0.02)
    row("getinfo during the {} at {} parts (ms, median)".format(what, BIG),
        median_ms(after), median_ms(during), "ms",
        "vs after; slowest {:.1f} ms".format(max(during) * 1000))
    rss, hwm = memory_mib(plugin_proc(node).pid)
    row("paystate memory after the {} at {} parts (MiB)".format(what, BIG),
        None, rss, "MiB", "VmRSS; VmHWM {:.1f} MiB".format(hwm))


def big_restart(node_factory, plugin_path):
    """BIG parts in the node's table and paystate's ledger, then a
    restart; BIG parts in the node's table alone (paystate's first
    start: the template part's record is there, the seeded ones not)."""
    if wanted("big_restart"):
        # may_fail: lightningd is killed once.
        node = paystate(node_factory, plugin_path, may_fail=True)
        seed_big(node, with_ledger=True)
        big_start(node, "restart", BIG + 1)
        # lightningd killed: no level mark, the pass over the table is made.
        node.daemon.proc.kill()
        node.daemon.wait()
        drop_torn_plugin_io(node)
        big_start(node, "restart after a crash", BIG + 1)
    if not wanted("big_first_start"):
        return
    fresh = paystate(node_factory, plugin_path)
    seed_big(fresh, with_ledger=False)
    big_start(fresh, "first start", BIG + 1)
    pager_floor(fresh, "{} parts".format(BIG))
    big_autoclean(fresh)


def big_autoclean(node):
    """autoclean-once over the oldest tenth of a large table (seeded ten
    days old): its time, and paystate's memory after."""
    old = BIG // 10
    t = time.perf_counter()
    got = node.rpc.call("autoclean-once", ["succeededpays", 5 * 86400])
    took = time.perf_counter() - t
    cleaned = got["autoclean"]["succeededpays"]["cleaned"]
    assert cleaned == old, got
    wait_for(lambda: sum(status(node)["parts"].values()) == BIG + 1 - old,
             timeout=300)
    row("autoclean-once of {} of {} parts (s)".format(old, BIG), None, took,
        "s", "{:.0f} deletes/s".format(old / took))
    rss, hwm = memory_mib(plugin_proc(node).pid)
    row("paystate memory after that autoclean (MiB)", None, rss, "MiB",
        "VmRSS; VmHWM {:.1f} MiB".format(hwm))
