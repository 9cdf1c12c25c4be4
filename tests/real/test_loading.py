"""Loading paystate: at start-up, from a config file, started and stopped
while the node runs; its methods in `help`."""
import os
import shutil
import subprocess

import pytest
from pyln.testing.utils import wait_for
from util import (paystate_node, rpc_path, selfpay, status, wait_caught_up,
                  wait_recorded)

OWN = ["paystate-waitsendpay", "paystate-waitpay", "paystate-waitanysendpay",
       "paystate-delpay", "paystate-listsendpays", "paystate-status"]


@pytest.mark.takeover
def test_plugin_option_loads_and_help_lists_methods(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    commands = [c["command"] for c in l1.rpc.help()["help"]]
    for name in OWN:
        assert any(c.startswith(name) for c in commands), name
    st = status(l1)
    assert st["takeover"] is True
    assert st["parts"] == {"complete": 0, "failed": 0, "deleting": 0}
    h = selfpay(l1)
    assert l1.rpc.waitsendpay(h)["status"] == "complete"
    wait_recorded(l1, complete=1)


def test_plugin_line_in_the_config_file(node_factory, plugin_path):
    l1 = node_factory.get_node(start=False)
    with open(os.path.join(l1.daemon.lightning_dir, "regtest", "config"),
              "a") as f:
        f.write("plugin={}\npaystate-takeover=false\n".format(plugin_path))
    l1.start()
    assert status(l1)["takeover"] is False
    h = selfpay(l1)
    assert l1.rpc.call("paystate-waitsendpay", [h]) == l1.rpc.waitsendpay(h)


def test_plugin_start_and_stop_while_the_node_runs(node_factory, plugin_path):
    l1 = node_factory.get_node()
    before = selfpay(l1)
    l1.rpc.plugin_start(plugin_path)
    wait_caught_up(l1)
    # Imported from the node's history, answered as the built-in did.
    assert status(l1)["parts"]["complete"] == 1
    h = selfpay(l1)
    wait_recorded(l1, complete=2)
    assert l1.rpc.waitsendpay(h)["payment_hash"] == h
    l1.rpc.plugin_stop("paystate")
    assert "paystate-status" not in str(l1.rpc.help())
    # The built-ins answer again, untouched.
    assert l1.rpc.waitsendpay(before)["status"] == "complete"
    l1.rpc.plugin_start(plugin_path, **{"paystate-takeover": False})
    wait_caught_up(l1)
    assert status(l1)["takeover"] is False
    assert status(l1)["parts"]["complete"] == 2


def test_long_lightning_dir(node_factory, plugin_path):
    # The socket path of this node is longer than a socket address holds:
    # lightningd passes rpc-file relative to the plugin's working directory.
    node_factory.directory = os.path.join(node_factory.directory, "d" * 90)
    l1 = paystate_node(node_factory, plugin_path)
    assert len(rpc_path(l1)) > 108
    h = selfpay(l1)
    wait_recorded(l1, complete=1)
    assert l1.rpc.waitsendpay(h)["status"] == "complete"
    assert l1.rpc.delpay(h, "complete")["payments"][0]["payment_hash"] == h
    assert not l1.daemon.is_in_log("plugin-paystate: Killing plugin")


def test_reckless_installs_from_a_local_source(node_factory, tmp_path):
    """CLN's plugin manager builds paystate with cargo, runs the binary
    alone (it must exit 0 or keep running), and starts it."""
    reckless = shutil.which("reckless")
    if reckless is None:
        pytest.skip("reckless (tools/reckless of a Core Lightning build) "
                    "is not on PATH")
    l1 = node_factory.get_node()
    # reckless adds its include to the node's config file (pyln-testing
    # passes options on the command line and writes none).
    open(os.path.join(l1.daemon.lightning_dir, "regtest", "config"),
         "a").close()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..",
                                        ".."))
    # reckless names a plugin after its folder.
    src = tmp_path / "paystate"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(
        "target", ".venv", ".git", "fuzz", "__pycache__"))
    # The release build's dependencies come along, so cargo builds only
    # paystate itself (a fresh build of them all took three minutes of the
    # suite's eight); paystate's own code is built anew from the copy.
    built = os.path.join(root, "target", "release")
    if os.path.isdir(built):
        shutil.copytree(built, src / "target" / "release", symlinks=True,
                        ignore=shutil.ignore_patterns(
                            "incremental", "examples", "paystate",
                            "paystate.d"))
    done = subprocess.run(
        [reckless, "-v", "-l", l1.daemon.lightning_dir, "--network",
         "regtest", "install", str(src)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: "paystate-status" in str(l1.rpc.help()))
    assert status(l1)["catchup"]["state"] in ("running", "done")


@pytest.mark.takeover
def test_takeover_off_in_lightningds_environment(node_factory, plugin_path):
    """`PAYSTATE_TAKEOVER=false` where lightningd runs: paystate declares
    no rpc_command hook (the option arrives too late to leave it out), so
    the node's own waitsendpay never passes through it."""
    l1 = node_factory.get_node(options={"plugin": plugin_path},
                               start=False)
    l1.daemon.env["PAYSTATE_TAKEOVER"] = "false"
    l1.start()
    st = status(l1)
    assert (st["takeover"], st["hook"]) == (False, False)
    assert l1.daemon.is_in_log("takeover off by PAYSTATE_TAKEOVER=false")
    h = selfpay(l1)
    assert l1.rpc.waitsendpay(h)["status"] == "complete"
    assert l1.rpc.call("paystate-waitsendpay", [h])["status"] == "complete"
