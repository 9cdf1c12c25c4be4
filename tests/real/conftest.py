"""Real-node tests: paystate on real lightningd nodes (pyln-testing),
checked against the built-in commands on the same node.

They run where `lightningd` and `bitcoind` are on PATH, and are skipped,
with one line saying what is missing, elsewhere. $PAYSTATE_LIGHTNINGD_DIR
names a Core Lightning build to test against instead (its `lightningd/`,
`cli/` and `tools/` go first on PATH). Tests of a feature the release
lacks are skipped with the release and the reason. The plugin is the
release binary (`cargo build --release`), or $PAYSTATE_PLUGIN. With
TEST_DB_PROVIDER=postgres (or sqlite3-replica) the nodes keep their
wallets in PostgreSQL (or sqlite with a replica): databases.py.
"""
import os
import re
import shutil
import subprocess
import sys

import databases
import pytest
from pyln.testing.fixtures import *  # noqa: F401,F403
from pyln.testing.utils import NodeFactory

databases.install()

_get_node = NodeFactory.get_node


def _get_node_without_grpc(self, *args, **kwargs):
    # pyln-testing passes --grpc-port unless told not to; a lightningd built
    # without its Rust plugins (cln-grpc) refuses that option.
    kwargs.setdefault("unused_grpc_port", False)
    node = _get_node(self, *args, **kwargs)
    if databases.provider() == "sqlite3-replica":
        databases.forgive_the_replica_leak(node)
    return node


NodeFactory.get_node = _get_node_without_grpc

LD_DIR = os.environ.get("PAYSTATE_LIGHTNINGD_DIR")
if LD_DIR:
    os.environ["PATH"] = os.pathsep.join(
        [os.path.join(LD_DIR, d) for d in ("lightningd", "cli", "tools")]
        + [os.environ.get("PATH", "")])

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLUGIN = os.environ.get(
    "PAYSTATE_PLUGIN", os.path.join(ROOT, "target", "release", "paystate"))
MISSING = [b for b in ("lightningd", "bitcoind") if shutil.which(b) is None]
# lightningd starts the Python test plugins with `python3` from PATH: make
# that this interpreter, which has pyln-client.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + \
    os.environ.get("PATH", "")


def lightningd_release():
    """The release on PATH, as `lightningd --version` names it, and its
    (year, month)."""
    if MISSING:
        return None, None
    out = subprocess.run(["lightningd", "--version"], capture_output=True,
                         text=True).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)", out)
    return out, (int(m.group(1)), int(m.group(2))) if m else None


RELEASE, VERSION = lightningd_release()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "takeover: needs hook filters (v25.12 and later)")


def pytest_collection_modifyitems(config, items):
    if MISSING:
        reason = "real-node tests need {} on PATH".format(
            " and ".join(MISSING))
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))
        return
    if VERSION and VERSION < (25, 12):
        reason = ("lightningd {} has no rpc_command hook filters: paystate "
                  "takes no built-in name over there".format(RELEASE))
        for item in items:
            if item.get_closest_marker("takeover"):
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_report_header(config):
    if MISSING:
        return "SKIPPED: real-node tests: {} not on PATH".format(
            " and ".join(MISSING))
    return "real-node tests: {} ({}) with plugin {}, wallet on {}".format(
        shutil.which("lightningd"), RELEASE, PLUGIN, databases.describe())


@pytest.fixture
def plugin_path():
    assert os.access(PLUGIN, os.X_OK), (
        "{} is missing: run `cargo build --release` first".format(PLUGIN))
    return PLUGIN
