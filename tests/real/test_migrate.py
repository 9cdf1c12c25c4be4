"""A ledger kept in layout v3 (paystate 0.2: each part's whole listing,
under names spelling its identity) moves to layout v4 at start-up: in the
background, answering meanwhile, crash-safe (paystate or lightningd killed
midway), every failure's summary carried over."""
import hashlib
import os
import signal
import sqlite3

import databases
import pytest
from pyln.testing.utils import wait_for
from util import (db_path, drop_torn_plugin_io, is_page_name, ledger_records,
                  node_terminal, page_key, page_records, plugin_proc,
                  status, v3_node, wait_caught_up, wait_ledger_is_node,
                  wait_often)

# Enough parts that the move takes seconds on a real node (each is a
# read, a write and a delete of lightningd's datastore).
PARTS = 6000

pytestmark = pytest.mark.skipif(
    databases.provider() == "postgres",
    reason="the v3 ledger is seeded into the node's sqlite file")


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
    """Until the move is under way: copies written to v4 pages, so that
    their originals are being deleted (src/migrate/v3.rs writes the copies
    it holds, then deletes their originals: a few seconds at PARTS)."""
    wait_often(lambda: any(is_page_name(e["key"][-1]) for e in node.rpc.
                           listdatastore(["paystate", "v4"])["datastore"]))


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
    node, failure = v3_node(node_factory, PARTS)
    start_with_paystate(node, plugin_path)
    moving(node)
    # Answers meanwhile start from the node's rows.
    old = hashlib.sha256(b"v3 %d" % (PARTS - 1)).hexdigest()
    row = node.rpc.listsendpays(payment_hash=old)["payments"][0]
    assert node.rpc.call("paystate-waitsendpay", [old, 0]) == row
    assert_moved(node, failure)
    assert status(node)["catchup"]["migrated"] > 0


def test_paystate_killed_while_moving_a_v3_ledger(node_factory, plugin_path):
    node, failure = v3_node(node_factory, PARTS)
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
    node, failure = v3_node(node_factory, PARTS, may_fail=True,
                            allow_broken_log=True)
    start_with_paystate(node, plugin_path)
    moving(node)
    node.daemon.proc.kill()
    node.daemon.wait()
    drop_torn_plugin_io(node)
    assert v3_left_offline(node) > 0, "killed before the move ended"
    node.start()
    assert_moved(node, failure)
