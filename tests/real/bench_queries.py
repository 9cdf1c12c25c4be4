"""Real-node benchmark of the commands for automation (issue 26) at
scale: `paystate-listpays` (a page of 100 payments) against the node's
`listpays` of the whole table, and `paystate-failures` over a day's
window, with the node's getinfo timed meanwhile.

Not a test. Run it with

    PAYSTATE_BENCH_QUERIES=1000000 .venv/bin/pytest \
        tests/real/bench_queries.py -s -q

PAYSTATE_BENCH_QUERIES (default 0: skipped) parts are seeded into the
node's payments table and paystate's ledger while the node is stopped
(sqlite only), as paystate writes its records: the last day holds
FAILED_A_DAY failures among three times as many parts, the rest spread
over the days before.
"""
import hashlib
import os
import sqlite3
import threading
import time

import databases
from bench_real import (ROWS, Batches, median_ms, memory_mib, paystate,
                        plugin_proc, row, timed, timed_value)
from pyln.testing.utils import wait_for
from util import (db_path, page_key, page_records, raw_send, raw_socket,
                  move_level_mark, seed_pages, selfpay, set_sendpays_indexes,
                  status)

PARTS = int(os.environ.get("PAYSTATE_BENCH_QUERIES", "0"))
FAILED_A_DAY = 10_000
DAY = 86400
CHANNELS, NODES = 50, 20


def leb128(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def record(ph, failed, at, k):
    """A part's v4 record (src/ledger/record.rs): flags, hash, groupid 1,
    partid 0, completed_at; for a failure its summary, from one of
    CHANNELS channels and NODES nodes."""
    tail = leb128(at)
    flags = 2  # completed_at
    if failed:
        flags |= 1 | 4 | 8 | 16 | 32 | 64
        node = b"\x02" + hashlib.sha256(b"node %d" % (k % NODES)).digest()
        scid = (100 + k % CHANNELS) << 40 | 1 << 16
        tail += leb128(4103) + leb128(1) + node + leb128(scid) + leb128(k % 2)
    return bytes([flags]) + ph + leb128(1) + leb128(0) + tail


def seed(node):
    """PARTS parts, a third failed, the newest 3 * FAILED_A_DAY in the
    last day, in the node's table and paystate's ledger, with the level
    mark a clean stop leaves."""
    h = selfpay(node)
    wait_for(lambda: status(node)["catchup"]["state"] == "done")
    index = node.rpc.listsendpays(payment_hash=h)["payments"][0][
        "created_index"]
    key, slot = page_key(index)
    assert page_records(bytes.fromhex(
        node.rpc.listdatastore(key)["datastore"][0]["hex"]))[slot]
    node.stop()
    db = sqlite3.connect(db_path(node))
    cur = db.execute("SELECT * FROM payments WHERE id = ?", (index,))
    cols = [c[0] for c in cur.description]
    template = dict(zip(cols, cur.fetchone()))
    now = int(time.time())
    a_day = 3 * FAILED_A_DAY
    for lo in range(0, PARTS, 100_000):
        pages, rows = {}, []
        for i in range(lo, min(PARTS, lo + 100_000)):
            ph = hashlib.sha256(b"bench %d" % i).digest()
            dbid = 1000 + i
            failed = i % 3 == 0
            at = now - (PARTS - i) * DAY // a_day
            key, slot = page_key(dbid)
            body = record(ph, failed, at, i)
            page = pages.setdefault("\0".join(key).encode(), bytearray())
            page += bytes([slot, len(body)]) + body
            p = dict(template, id=dbid, payment_hash=ph, timestamp=at - 1,
                     completed_at=at, updated_index=dbid)
            if failed:
                p.update(status=2, payment_preimage=None)
            rows.append(tuple(p[c] for c in cols))
        seed_pages(db, pages)
        db.executemany("INSERT INTO payments ({}) VALUES ({})".format(
            ", ".join(cols), ", ".join("?" * len(cols))), rows)
    set_sendpays_indexes(db, 1000 + PARTS)
    move_level_mark(db, 1000 + PARTS)
    db.commit()
    db.close()
    return now


def raw_whole(node, method):
    """A command's whole answer read off the socket, its size (pyln's
    client parses a large answer again at every read)."""
    sock = raw_socket(node)
    raw_send(sock, method, "{}")
    got, tail = bytearray(), b""
    while not tail.endswith(b"\n\n"):
        chunk = sock.recv(1 << 22)
        assert chunk, "connection closed"
        got += chunk
        tail = bytes(got[-2:])
    sock.close()
    return len(got)


def getinfo_meanwhile(node, work):
    """The slowest getinfo while `work` runs, from another connection."""
    times, done = [], threading.Event()

    def probe():
        while not done.is_set():
            times.append(timed(node.rpc.getinfo))
            time.sleep(0.005)
    t = threading.Thread(target=probe)
    t.start()
    try:
        out = work()
    finally:
        done.set()
        t.join()
    return out, max(times) * 1000


def test_bench_queries(node_factory, plugin_path):
    if not PARTS or databases.provider() != "sqlite3":
        return
    # lightningd calls the listsendpays of listpays over the whole table
    # weird (a minute and more at a million parts), which pyln-testing
    # counts as a broken log.
    node = paystate(node_factory, plugin_path, allow_warning=True,
                    allow_broken_log=True)
    now = seed(node)
    node.start()
    wait_for(lambda: status(node)["catchup"]["state"] == "done",
             timeout=900)
    mid = 1000 + PARTS // 2
    pages, slowest = getinfo_meanwhile(node, lambda: [timed_page(
        node, mid + 97 * k) for k in range(20)])
    assert all(n == 100 for _, n in pages)
    took = median_ms([t for t, _ in pages])
    row("a page of 100 payments at {} parts (ms, median of 20)".format(
        PARTS), None, took, "ms",
        "slowest getinfo meanwhile {:.1f} ms".format(slowest))
    whole, size = timed_value(raw_whole, node, "listpays")
    row("the same against listpays of the whole table (ms)", whole * 1000,
        took, "ms", "{:.0f} MB of answer".format(size / 1e6))
    window = {"since": now - DAY + 1, "until": now + 1}
    answers, slowest = getinfo_meanwhile(node, lambda: [timed_value(
        node.rpc.call, "paystate-failures", window) for _ in range(20)])
    counted = answers[0][1]["failed_parts"]
    assert counted >= FAILED_A_DAY - 1, counted
    row("paystate-failures of a day at {} parts (ms, median of 20)".format(
        PARTS), None, median_ms([t for t, _ in answers]), "ms",
        "{} failures; slowest getinfo meanwhile {:.1f} ms".format(
            counted, slowest))
    rss, hwm = memory_mib(plugin_proc(node).pid)
    row("paystate's memory after both (MiB)", None, rss, "MiB",
        "VmRSS; VmHWM {:.1f} MiB".format(hwm))
    floors(node, mid)
    print("\n".join(ROWS))


def floors(node, mid):
    """What the same answers cost lightningd read by a client that does
    only the reads: the page's window of the table and its payments by
    hash; the pages of records a day's failures lie in, their hex decoded."""
    client = Batches(node)

    def page(start):
        rows = client.call([("listsendpays", {"index": "created",
                                              "start": start,
                                              "limit": 200})])
        hashes = list(dict.fromkeys(
            p["payment_hash"] for p in rows[0]["result"]["payments"]))[:100]
        client.call([("listsendpays", {"payment_hash": h}) for h in hashes])
    took = [timed(page, mid + 97 * k) for k in range(20)]
    row("floor: the page's reads alone (ms, median of 20)", None,
        median_ms(took), "ms", "a window of 200 rows, 100 hashes")
    a_day = 3 * FAILED_A_DAY
    first = 1000 + max(0, PARTS - a_day)
    keys = sorted({tuple(page_key(ci)[0])
                   for ci in range(first, 1000 + PARTS)})

    def failures():
        for lo in range(0, len(keys), 64):
            for a in client.call([("listdatastore", {"key": list(k)})
                                  for k in keys[lo:lo + 64]]):
                for e in a["result"]["datastore"]:
                    bytes.fromhex(e["hex"])
    took = [timed(failures) for _ in range(20)]
    row("floor: a day's pages read alone (ms, median of 20)", None,
        median_ms(took), "ms", "{} pages, 64 a batch".format(len(keys)))


def timed_page(node, start):
    t, got = timed_value(node.rpc.call, "paystate-listpays",
                         {"index": "created", "start": start, "limit": 100})
    return t, len(got["pays"])
