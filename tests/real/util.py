"""Helpers shared by the real-node tests."""
import json
import os
import secrets

from pyln.client import RpcError
from pyln.client.lightning import UnixSocket
from pyln.testing.utils import wait_for

AMOUNT = 10000


def paystate_node(node_factory, plugin, takeover=True, options=None,
                  **kwargs):
    """A node with paystate loaded at start-up (`--plugin`); `kwargs` go
    to pyln-testing's get_node."""
    opts = {"plugin": plugin, "paystate-takeover": takeover}
    opts.update(options or {})
    return node_factory.get_node(options=opts, **kwargs)


def invoice(node, amount=AMOUNT, label=None):
    label = label or "inv-" + secrets.token_hex(8)
    return node.rpc.invoice(amount, label, "paystate test")


def selfpay(node, amount=AMOUNT, wrong_secret=False, label=None):
    """A payment to the node itself (`sendpay` with an empty route):
    complete, or failed with 203 when sent with a wrong payment_secret.
    Returns the payment hash."""
    inv = invoice(node, amount)
    secret = secrets.token_hex(32) if wrong_secret else inv["payment_secret"]
    kind, _ = answer(node.rpc.sendpay, [], inv["payment_hash"],
                     amount_msat=amount, payment_secret=secret,
                     bolt11=inv["bolt11"], label=label)
    # A self-payment with a wrong secret fails at once, sendpay included.
    assert kind == ("error" if wrong_secret else "result")
    return inv["payment_hash"]


def answer(fn, *args, **kwargs):
    """A command's answer as ("result", value) or ("error", error object)."""
    try:
        return ("result", fn(*args, **kwargs))
    except RpcError as e:
        return ("error", e.error)


def call(node, method, params):
    return answer(node.rpc.call, method, params)


def status(node):
    return node.rpc.call("paystate-status")


def wait_recorded(node, complete=None, failed=None):
    """Until paystate's ledger holds that many parts."""
    def ok():
        parts = status(node)["parts"]
        return ((complete is None or parts["complete"] == complete)
                and (failed is None or parts["failed"] == failed))
    wait_for(ok)


def wait_caught_up(node):
    # Catch-up is paced (a part's import takes ~2 ms of the node's time,
    # then rests twenty times as long): allow for a few hundred parts.
    wait_for(lambda: status(node)["catchup"]["state"] == "done",
             timeout=300)


def rpc_path(node):
    return os.path.join(node.daemon.lightning_dir, "regtest", "lightning-rpc")


def raw_socket(node):
    """A connection to the node's RPC socket, however long its path (a
    socket address holds 107 bytes): pyln-client's way, through
    /proc/self/fd when the path does not fit."""
    return UnixSocket(rpc_path(node))


def raw_send(sock, method, params_text, id="raw"):
    sock.sendall(('{"jsonrpc": "2.0", "id": %s, "method": "%s", '
                  '"params": %s}' % (json.dumps(id), method, params_text)
                  ).encode())


def raw_read(sock):
    """One answer (lightningd ends each with a blank line)."""
    buf = b""
    while not buf.endswith(b"\n\n"):
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    return json.loads(buf)


def ledger_records(node):
    """The parts whose records are in the datastore: paystate's ledger as
    a crash leaves it, read from under the plugin: the shards in use (a
    listing of their parent, which has lightningd read every record: fine
    for a test's ledger), then each of them."""
    out = set()
    parts = ["paystate", "v3", "parts"]
    for shard in node.rpc.listdatastore(parts)["datastore"]:
        for e in node.rpc.listdatastore(shard["key"])["datastore"]:
            h, groupid, partid, _, status = e["key"][-1].split("-")
            out.add((h, int(groupid), int(partid), status))
    return out


def node_terminal(node):
    """The node's terminal parts, as ledger_records names them."""
    return {(p["payment_hash"], p["groupid"], p.get("partid", 0),
             p["status"])
            for p in node.rpc.listsendpays()["payments"]
            if p["status"] != "pending"}


def wait_ledger_is_node(node):
    """Until the ledger's records are exactly the node's terminal parts
    (records are written behind, in batches)."""
    wait_for(lambda: ledger_records(node) == node_terminal(node))
