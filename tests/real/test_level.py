"""The level mark: a restart of lightningd after a clean stop skips the
pass over the node's table; anything that may have changed the table
without paystate (a `plugin stop`, lightningd run without it) leaves the
pass to be made, and the ledger ends exactly the node's."""
from util import (call, ledger_records, level_mark, node_terminal,
                  paystate_node, selfpay, status, wait_caught_up,
                  wait_ledger_is_node)

STOPPED_LEVEL = "Stopping level with the node"


def delete_part(l1, h):
    """The part of this hash deleted by partid and groupid (autoclean's
    way: the node's deleted index moves)."""
    part = l1.rpc.listsendpays(payment_hash=h)["payments"][0]
    l1.rpc.delpay(payment_hash=h, status=part["status"],
                  partid=part.get("partid", 0), groupid=part["groupid"])


def paid_history(l1):
    """Some parts, a third failed, one deleted by partid and groupid (the
    feed follows it): the ledger level with the node once written."""
    hashes = [selfpay(l1, wrong_secret=(i % 3 == 0)) for i in range(9)]
    delete_part(l1, hashes[1])
    wait_caught_up(l1)
    wait_ledger_is_node(l1)
    return hashes


def assert_answers_are_the_nodes(l1, hashes):
    node = {p["payment_hash"]: p["status"]
            for p in l1.rpc.listsendpays()["payments"]}
    for h in hashes:
        kind, got = call(l1, "paystate-waitsendpay", [h, 0])
        if h not in node:
            assert kind == "error" and got["code"] == 208, got
        elif node[h] == "complete":
            assert kind == "result" and got["status"] == "complete", got
        else:
            assert kind == "error" and got["code"] == 203, got


def test_a_clean_restart_skips_the_pass(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    hashes = paid_history(l1)
    assert level_mark(l1) is None
    l1.restart()
    assert l1.daemon.is_in_log(STOPPED_LEVEL)
    wait_caught_up(l1)
    report = status(l1)["catchup"]
    assert report["pass_skipped"] is True, report
    assert report["checked"] == 0, report
    # Taken at the start: a crash from now on leaves none.
    assert level_mark(l1) is None
    assert ledger_records(l1) == node_terminal(l1)
    assert_answers_are_the_nodes(l1, hashes)
    # Deletes and payments after the restart are followed as ever, and the
    # next clean restart skips the pass again.
    more = [selfpay(l1), selfpay(l1, wrong_secret=True)]
    delete_part(l1, hashes[2])
    wait_ledger_is_node(l1)
    l1.restart()
    wait_caught_up(l1)
    assert status(l1)["catchup"]["pass_skipped"] is True
    assert ledger_records(l1) == node_terminal(l1)
    assert_answers_are_the_nodes(l1, hashes + more)


def test_a_plugin_stop_leaves_no_mark(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    hashes = paid_history(l1)
    l1.rpc.plugin_stop("paystate")
    assert l1.daemon.is_in_log("Stopping while lightningd runs on")
    assert level_mark(l1) is None
    # A delete no index shows, made while paystate is away.
    l1.rpc.delpay(hashes[0], "failed")
    l1.restart()
    wait_caught_up(l1)
    report = status(l1)["catchup"]
    assert report["pass_skipped"] is False, report
    assert report["dropped"] == 1, report
    wait_ledger_is_node(l1)
    assert_answers_are_the_nodes(l1, hashes)


def test_a_node_run_without_paystate_is_reconciled(node_factory,
                                                   plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    hashes = paid_history(l1)
    l1.stop()
    assert l1.daemon.is_in_log(STOPPED_LEVEL)
    # lightningd run once without paystate: payments, and deletes of
    # both kinds.
    opts = {k: l1.daemon.opts.pop(k) for k in ("plugin", "paystate-takeover")}
    l1.start()
    more = [selfpay(l1), selfpay(l1, wrong_secret=True)]
    l1.rpc.delpay(hashes[3], "failed")
    delete_part(l1, hashes[4])
    l1.stop()
    l1.daemon.opts.update(opts)
    l1.start()
    wait_caught_up(l1)
    report = status(l1)["catchup"]
    assert report["pass_skipped"] is False, report
    assert report["imported"] == 2 and report["dropped"] == 2, report
    wait_ledger_is_node(l1)
    assert_answers_are_the_nodes(l1, hashes + more)
