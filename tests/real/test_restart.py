"""Restarts, crashes and history: what the node knows is what paystate
answers, nothing lost, nothing deleted brought back."""
import os
import signal
import threading

import databases
import pytest
from pyln.testing.utils import wait_for
from util import (call, drop_torn_plugin_io, ledger_records, node_terminal,
                  paystate_node, plugin_proc, selfpay, status,
                  wait_autoclean_age, wait_caught_up, wait_ledger_is_node,
                  wait_recorded)


def ledger_keys(node):
    return sorted((p["payment_hash"], p["groupid"], p.get("partid", 0),
                   p["status"])
                  for p in node.rpc.call("paystate-listsendpays")["payments"])


def test_restart_catches_up_on_parts_resolved_meanwhile(node_factory,
                                                        plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    first = selfpay(l1)
    wait_recorded(l1, complete=1)
    l1.rpc.plugin_stop("paystate")
    ok = selfpay(l1)
    bad = selfpay(l1, wrong_secret=True)
    l1.rpc.plugin_start(plugin_path, **{"paystate-takeover": False})
    wait_caught_up(l1)
    assert status(l1)["parts"] == {"complete": 2, "failed": 1, "deleting": 0}
    for h in (first, ok, bad):
        assert call(l1, "paystate-waitsendpay", [h]) == \
            call(l1, "waitsendpay", [h])
    # And across a restart of the node itself.
    l1.restart()
    wait_caught_up(l1)
    wait_ledger_is_node(l1)
    assert ledger_keys(l1) == sorted(node_terminal(l1))


def test_sigkill_during_payments_and_deletes(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, allow_broken_log=True,
                       may_fail=True)
    done = []

    def stream():
        for i in range(400):
            done.append(selfpay(l1, wrong_secret=(i % 4 == 0)))
    t = threading.Thread(target=stream)
    t.start()
    wait_for(lambda: len(done) > 30)
    # Some deletes while payments flow (through the takeover).
    deleted = done[1:20:3]
    for h in deleted:
        part = l1.rpc.listsendpays(payment_hash=h)["payments"][0]
        l1.rpc.delpay(h, part["status"])
    assert t.is_alive(), "killed while payments still flow"
    os.kill(plugin_proc(l1).pid, signal.SIGKILL)
    t.join()
    assert len(done) == 400
    l1.rpc.plugin_start(plugin_path)
    wait_caught_up(l1)
    # Nothing lost, nothing deleted brought back.
    wait_ledger_is_node(l1)
    assert ledger_keys(l1) == sorted(node_terminal(l1))
    for h in deleted:
        assert l1.rpc.listsendpays(payment_hash=h)["payments"] == []
        kind, err = call(l1, "waitsendpay", [h, 0])
        assert (kind, err["code"]) == ("error", 208)


def test_first_start_on_a_node_with_history(node_factory, plugin_path):
    l1 = node_factory.get_node()
    hashes = [selfpay(l1, wrong_secret=(i % 3 == 0)) for i in range(120)]
    l1.rpc.plugin_start(plugin_path)
    # Answered correctly from the start, while the import runs.
    for h in hashes[:6]:
        kind, got = call(l1, "waitsendpay", [h, 0])
        assert kind == ("error" if hashes.index(h) % 3 == 0 else "result")
    wait_caught_up(l1)
    assert status(l1)["parts"] == {"complete": 80, "failed": 40,
                                   "deleting": 0}
    wait_ledger_is_node(l1)
    assert ledger_keys(l1) == sorted(node_terminal(l1))


def autoclean_in_background(node):
    """autoclean-once over failed then complete parts, in a thread."""
    done = []

    def run():
        for what in ("failedpays", "succeededpays"):
            try:
                node.rpc.call("autoclean-once", [what, 1])
            except Exception as e:  # the node may be killed meanwhile
                done.append(e)
                return
        done.append("ok")
    t = threading.Thread(target=run)
    t.start()
    return t, done


def test_plugin_sigkill_during_autoclean(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    for i in range(300):
        selfpay(l1, wrong_secret=(i % 3 == 0))
    wait_recorded(l1, complete=200, failed=100)
    wait_ledger_is_node(l1)
    wait_autoclean_age(l1)
    t, done = autoclean_in_background(l1)
    wait_for(lambda: len(node_terminal(l1)) < 250)
    os.kill(plugin_proc(l1).pid, signal.SIGKILL)
    t.join()
    assert done == ["ok"]
    l1.rpc.plugin_start(plugin_path)
    wait_caught_up(l1)
    # Whatever autoclean deleted while paystate was down left the ledger.
    wait_ledger_is_node(l1)
    assert ledger_records(l1) == set()


def kill_during_payments_and_autoclean(l1):
    """200 payments, then 300 more streaming while autoclean deletes the
    first ones, and lightningd SIGKILLed under them; returns the hashes
    paid in the stream."""
    for i in range(200):
        selfpay(l1, wrong_secret=(i % 3 == 0))
    wait_ledger_is_node(l1)
    wait_autoclean_age(l1)
    paid = []

    def stream():
        try:
            for i in range(300):
                paid.append(selfpay(l1, wrong_secret=(i % 4 == 0)))
        except Exception:  # the node is killed under it
            pass
    payer = threading.Thread(target=stream)
    payer.start()
    wait_for(lambda: len(paid) > 20)
    t, done = autoclean_in_background(l1)
    wait_for(lambda: len(paid) > 60 or done)
    l1.daemon.proc.kill()
    payer.join()
    t.join()
    l1.daemon.wait()
    drop_torn_plugin_io(l1)
    return paid


def assert_ledger_is_node_after_restart(l1, paid):
    l1.start()
    wait_caught_up(l1)
    # Whatever the node kept, the ledger holds; nothing else.
    wait_ledger_is_node(l1)
    assert len(ledger_records(l1)) > 0
    # And answers as the node's table says.
    for h in paid[:10]:
        rows = l1.rpc.listsendpays(payment_hash=h)["payments"]
        kind, got = call(l1, "paystate-waitsendpay", [h, 0])
        if not rows:
            assert (kind, got["code"]) == ("error", 208)
        elif rows[0]["status"] == "complete":
            assert (kind, got) == ("result", rows[0])
        else:
            assert kind == "error" and got["data"]["status"] == "failed"


def test_lightningd_sigkill_during_payments_and_autoclean(node_factory,
                                                          plugin_path):
    l1 = paystate_node(node_factory, plugin_path, may_fail=True,
                       allow_broken_log=True)
    paid = kill_during_payments_and_autoclean(l1)
    assert_ledger_is_node_after_restart(l1, paid)


@pytest.mark.skipif(databases.provider() == "postgres",
                    reason="a replica is sqlite's (PostgreSQL replicates "
                    "in the server)")
def test_a_node_restarted_from_its_sqlite_replica_after_a_crash(
        node_factory, plugin_path):
    """lightningd on sqlite with a live replica (`sqlite3://MAIN:REPLICA`)
    writes both; killed mid-payments and mid-autoclean, then started from
    the replica alone (the main disk lost): paystate's ledger, kept in the
    same database, is the replica's terminal parts."""
    l1 = paystate_node(node_factory, plugin_path, may_fail=True,
                       allow_broken_log=True, start=False)
    main = os.path.join(l1.daemon.lightning_dir, "regtest",
                        "lightningd.sqlite3")
    replica = os.path.join(l1.daemon.lightning_dir, "replica.sqlite3")
    l1.daemon.opts["wallet"] = "sqlite3://{}:{}".format(main, replica)
    l1.start()
    paid = kill_during_payments_and_autoclean(l1)
    os.remove(main)
    l1.daemon.opts["wallet"] = "sqlite3://{}".format(replica)
    assert_ledger_is_node_after_restart(l1, paid)
