"""A ledger kept in layout v3 (paystate 0.2: each part's whole listing,
under names spelling its identity) moves to layout v4 at start-up: in the
background, answering meanwhile, crash-safe (paystate or lightningd killed
midway), every failure's summary carried over."""
import hashlib
import json
import os
import signal
import sqlite3

import databases
import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for
from util import (drop_torn_plugin_io, ledger_records, node_terminal,
                  page_key, page_records, plugin_proc, selfpay,
                  set_sendpays_indexes, status, wait_caught_up,
                  wait_ledger_is_node)

# Enough parts that the move takes seconds on a real node (each is a
# read, a write and a delete of lightningd's datastore).
PARTS = 6000

pytestmark = pytest.mark.skipif(
    databases.provider() == "postgres",
    reason="the v3 ledger is seeded into the node's sqlite file")


def db_path(node):
    return os.path.join(node.daemon.lightning_dir, "regtest",
                        "lightningd.sqlite3")


def v3_entries(listing, failure):
    """A part's v3 record, as paystate 0.2 wrote it: key (NUL-joined, as
    lightningd stores it) and value."""
    status = listing["status"]
    name = "{}-{}-{}-{}-{}".format(listing["payment_hash"],
                                   listing["groupid"],
                                   listing.get("partid", 0),
                                   listing["created_index"], status)
    key = ["paystate", "v3", "parts", listing["payment_hash"][:3], name,
           "record"]
    part = {"payment": listing}
    if failure is not None:
        part["failure"] = failure
    return "\0".join(key).encode(), json.dumps(part).encode()


def v3_node(node_factory, **kwargs):
    """A node without paystate whose table holds PARTS copies of two real
    parts (one complete, one failed) under new hashes, and whose datastore
    holds their v3 records, both written while the node is stopped.
    Returns the node and the failure as v3 kept it."""
    node = node_factory.get_node(**kwargs)
    templates = {}
    for wrong in (False, True):
        h = selfpay(node, wrong_secret=wrong)
        templates[wrong] = node.rpc.listsendpays(payment_hash=h)[
            "payments"][0]
    try:
        node.rpc.waitsendpay(templates[True]["payment_hash"])
        raise AssertionError("the wrong secret's part did not fail")
    except RpcError as e:
        err = e.error
    fields = ("erring_index", "failcode", "failcodename", "erring_node",
              "erring_channel", "erring_direction")
    failure = {"code": err["code"], "message": err["message"],
               "details": {k: err["data"][k] for k in fields
                           if k in err["data"]}}
    node.stop()
    db = sqlite3.connect(db_path(node))
    cols = None
    rows, entries = [], []
    for i in range(PARTS):
        wrong = i % 3 == 0
        t = templates[wrong]
        cur = db.execute("SELECT * FROM payments WHERE id = ?",
                         (t["created_index"],))
        cols = [c[0] for c in cur.description]
        row = dict(zip(cols, cur.fetchone()))
        ph = hashlib.sha256(b"v3 %d" % i).digest()
        dbid = 1000 + i
        row.update(id=dbid, payment_hash=ph)
        if "updated_index" in row:
            row["updated_index"] = dbid
        rows.append(tuple(row[c] for c in cols))
        listing = dict(t, created_index=dbid, id=dbid, payment_hash=ph.hex())
        if "updated_index" in listing:
            listing["updated_index"] = dbid
        entries.append(v3_entries(listing, failure if wrong else None))
    db.executemany("INSERT INTO payments ({}) VALUES ({})".format(
        ", ".join(cols), ", ".join("?" * len(cols))), rows)
    db.executemany("INSERT INTO datastore (key, data, generation) "
                   "VALUES (?, ?, 0)", entries)
    set_sendpays_indexes(db, 1000 + PARTS)
    db.commit()
    db.close()
    return node, failure


def v3_left(node):
    """How many v3 records the node's datastore still holds."""
    left = node.rpc.listdatastore(["paystate", "v3"])["datastore"]
    return len(left)


def v3_left_offline(node):
    """v3_left, read from the node's file while it is stopped."""
    db = sqlite3.connect(db_path(node))
    try:
        return db.execute("SELECT COUNT(*) FROM datastore WHERE key >= ? "
                          "AND key < ?", (b"paystate\0v3\0",
                                          b"paystate\0v3\1")).fetchone()[0]
    finally:
        db.close()


def start_with_paystate(node, plugin_path):
    node.daemon.opts["plugin"] = plugin_path
    node.start()


def moving(node):
    """Until the move is under way (some v4 records written)."""
    wait_for(lambda: status(node)["catchup"]["state"] == "running"
             and node.rpc.listdatastore(["paystate", "v4"])["datastore"])


def assert_moved(node, failure):
    wait_caught_up(node)
    assert v3_left(node) == 0
    wait_ledger_is_node(node)
    assert ledger_records(node) == node_terminal(node)
    # A failed part's summary came over with it.
    failed = next(p for p in node.rpc.listsendpays()["payments"]
                  if p["status"] == "failed" and p["created_index"] >= 1000)
    key, slot = page_key(failed["created_index"])
    page = bytes.fromhex(node.rpc.listdatastore(key)["datastore"][0]["hex"])
    data = page_records(page)[slot]
    assert data[0] & 1, "recorded as failed"
    if "erring_node" in failure["details"]:
        assert bytes.fromhex(failure["details"]["erring_node"]) in data


def test_a_v3_ledger_moves_while_paystate_answers(node_factory, plugin_path):
    node, failure = v3_node(node_factory)
    start_with_paystate(node, plugin_path)
    moving(node)
    # Answers meanwhile start from the node's rows.
    old = hashlib.sha256(b"v3 %d" % (PARTS - 1)).hexdigest()
    row = node.rpc.listsendpays(payment_hash=old)["payments"][0]
    assert node.rpc.call("paystate-waitsendpay", [old, 0]) == row
    assert_moved(node, failure)
    assert status(node)["catchup"]["migrated"] > 0


def test_paystate_killed_while_moving_a_v3_ledger(node_factory, plugin_path):
    node, failure = v3_node(node_factory)
    start_with_paystate(node, plugin_path)
    moving(node)
    before = v3_left(node)
    proc = plugin_proc(node)
    os.kill(proc.pid, signal.SIGKILL)
    wait_for(lambda: not any(p["name"].endswith("/paystate")
                             for p in node.rpc.plugin("list")["plugins"]))
    assert before > 0 and v3_left(node) > 0, "killed before the move ended"
    node.rpc.plugin_start(plugin_path)
    assert_moved(node, failure)


def test_lightningd_killed_while_moving_a_v3_ledger(node_factory,
                                                    plugin_path):
    node, failure = v3_node(node_factory, may_fail=True,
                            allow_broken_log=True)
    start_with_paystate(node, plugin_path)
    moving(node)
    node.daemon.proc.kill()
    node.daemon.wait()
    drop_torn_plugin_io(node)
    assert v3_left_offline(node) > 0, "killed before the move ended"
    node.start()
    assert_moved(node, failure)
