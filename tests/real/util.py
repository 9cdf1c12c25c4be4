"""Helpers shared by the real-node tests."""
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time

import psutil
from pyln.client import RpcError
from pyln.client.lightning import UnixSocket
from pyln.testing.utils import TIMEOUT, only_one, wait_for

AMOUNT = 10000
HOLD = os.path.join(os.path.dirname(__file__), "plugins", "hold_htlcs.py")


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


def wait_often(success, timeout=TIMEOUT):
    """pyln's wait_for, polling every 20 ms: its backing off to 5 s between
    polls misses a state that lasts a few seconds."""
    deadline = time.monotonic() + timeout
    while not success():
        if time.monotonic() > deadline:
            raise ValueError("Timeout while waiting for {}".format(success))
        time.sleep(0.02)


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


def leb128(data, at):
    """A LEB128 number at `at`: (value, where the next field starts)."""
    value, shift = 0, 0
    while True:
        b = data[at]
        value |= (b & 0x7f) << shift
        at += 1
        shift += 7
        if not b & 0x80:
            return value, at


def decode_record(data):
    """A v4 record's identity and status (src/ledger/record.rs): a flags
    byte (bit 0: failed), the payment hash, groupid and partid."""
    h = data[1:33].hex()
    groupid, at = leb128(data, 33)
    partid, _ = leb128(data, at)
    return (h, groupid, partid, "failed" if data[0] & 1 else "complete")


def page_records(data):
    """A v4 page's records by slot (src/ledger/page.rs): items of slot,
    length and bytes, in order; an empty one deletes its slot."""
    out, at = {}, 0
    while at < len(data):
        slot, length = data[at], data[at + 1]
        body = data[at + 2:at + 2 + length]
        assert len(body) == length, "a page cut short"
        if length:
            out[slot] = body
        else:
            out.pop(slot, None)
        at += 2 + length
    return out


def page_key(created_index):
    """The key of the v4 page holding a part's record (src/store.rs), and
    the record's slot there."""
    page = "{:x}".format(created_index // 64)
    return (["paystate", "v4", "{:x}{}".format(len(page) - 1, page)],
            created_index % 64)


def is_page_name(name):
    """Whether a v4 key's last component names a page (src/store.rs:
    its hex length less one, then the page number in lower hex)."""
    digits = name[1:]
    return (len(name) > 1 and all(c in "0123456789abcdef" for c in name)
            and int(name[0], 16) + 1 == len(digits))


def ledger_records(node):
    """The parts whose records are in the datastore: paystate's ledger as
    a crash leaves it, read from under the plugin (a listing of the pages'
    parent, which has lightningd read every page: fine for a test's
    ledger)."""
    out = set()
    for page in node.rpc.listdatastore(["paystate", "v4"])["datastore"]:
        if "hex" not in page or not is_page_name(page["key"][2]):
            continue  # marks of deletes; the level mark; v3's moved mark
        for body in page_records(bytes.fromhex(page["hex"])).values():
            out.add(decode_record(body))
    return out


def level_mark(node):
    """The level mark paystate leaves at a clean stop of lightningd
    (src/level.rs), as the datastore holds it, or None."""
    got = node.rpc.listdatastore(["paystate", "v4", "level"])["datastore"]
    return json.loads(got[0]["string"]) if got else None


def set_sendpays_indexes(db, value):
    """Sets the node's `created` and `updated` sendpays indexes (kept in
    its vars table) in a node's sqlite file, after rows were seeded."""
    for var in ("last_sendpays_created_index", "last_sendpays_updated_index"):
        db.execute("DELETE FROM vars WHERE name = ?", (var,))
        db.execute("INSERT INTO vars (name, intval) VALUES (?, ?)",
                   (var, value))


def seed_pages(db, pages):
    """Page values (key bytes to item bytes) appended in a stopped node's
    sqlite file, as lightningd appends (`create-or-append`)."""
    for key, data in pages.items():
        db.execute("INSERT INTO datastore (key, data, generation) "
                   "VALUES (?, ?, 0) ON CONFLICT(key) DO UPDATE SET "
                   "data = data || excluded.data", (key, bytes(data)))


def move_level_mark(db, index):
    """The level mark paystate's clean stop left, moved to the seeded
    `created` and `updated` indexes: the restart of a node stopped
    cleanly over the seeded history."""
    mark = b"paystate\0v4\0level"
    got = db.execute("SELECT data FROM datastore WHERE key = ?",
                     (mark,)).fetchone()
    assert got, "the clean stop left no level mark"
    level = dict(json.loads(got[0]), created=index, updated=index)
    db.execute("UPDATE datastore SET data = ? WHERE key = ?",
               (json.dumps(level).encode(), mark))


def node_terminal(node):
    """The node's terminal parts, as ledger_records names them."""
    return {(p["payment_hash"], p["groupid"], p.get("partid", 0),
             p["status"])
            for p in node.rpc.listsendpays()["payments"]
            if p["status"] != "pending"}


def wait_autoclean_age(node, age=1):
    """Until `autoclean-once` with this age (seconds) takes every part the
    node has now: it keeps a part created after `now - age`, in whole
    seconds of the node's clock (plugins/autoclean.c)."""
    newest = max(p["created_at"]
                 for p in node.rpc.listsendpays()["payments"])
    wait_for(lambda: int(time.time()) >= newest + age)


def wait_ledger_is_node(node):
    """Until the ledger's records are exactly the node's terminal parts
    (records are written behind, in batches)."""
    wait_for(lambda: ledger_records(node) == node_terminal(node))


def raw_calls(node, calls, conns=20):
    """Sends every (method, params) of `calls` at once over `conns` raw
    connections, many requests in flight on each as lightningd allows;
    returns the sockets and the ids sent, by connection, for
    `raw_answers`."""
    socks = [raw_socket(node) for _ in range(conns)]
    sent = [[] for _ in range(conns)]
    for i, (method, params) in enumerate(calls):
        c = i % conns
        raw_send(socks[c], method, json.dumps(params), id="c{}".format(i))
        sent[c].append(i)
    return socks, sent


def raw_answers(socks, sent, executor, timeout=TIMEOUT):
    """Every answer to `raw_calls`' requests, by the call's index."""
    def read_all(sock, n):
        sock.sock.settimeout(timeout)
        decoder, buf, out = json.JSONDecoder(), "", []
        while len(out) < n:
            buf = buf.lstrip()
            try:
                v, end = decoder.raw_decode(buf)
            except ValueError:
                chunk = sock.recv(1 << 20)
                assert chunk, "connection closed"
                buf += chunk.decode()
                continue
            out.append(v)
            buf = buf[end:]
        return out
    futures = [executor.submit(read_all, s, len(ids))
               for s, ids in zip(socks, sent)]
    answers = {}
    for f in futures:
        for v in f.result(timeout + 10):
            answers[int(v["id"][1:])] = v
    return answers


def plugin_proc(node, name="paystate"):
    """The plugin's process (psutil), a child of lightningd."""
    return only_one([p for p in psutil.Process(node.daemon.proc.pid).children()
                     if p.name() == name])


def sockets_of(proc):
    fd = "/proc/{}/fd".format(proc.pid)
    return sum(1 for f in os.listdir(fd)
               if os.readlink(os.path.join(fd, f)).startswith("socket:"))


def peak_rss_kib(proc):
    """VmHWM: the most resident memory the process has had."""
    with open("/proc/{}/status".format(proc.pid)) as f:
        return int(next(line for line in f
                        if line.startswith("VmHWM:")).split()[1])


def held_pair(node_factory, plugin_path, takeover=False):
    """l1 (paystate) with a channel to l2, which holds incoming HTLCs."""
    l1, l2 = node_factory.line_graph(2, opts=[
        {"plugin": plugin_path, "paystate-takeover": takeover},
        {"plugin": HOLD}])
    return l1, l2


def route_to(l1, l2, amount=AMOUNT):
    scid = only_one(l1.rpc.listpeerchannels(l2.info["id"])["channels"])[
        "short_channel_id"]
    return [{"amount_msat": amount, "id": l2.info["id"], "delay": 5,
             "channel": scid}]


def send_held(l1, l2, amount=AMOUNT, partid=None, total=None, inv=None,
              groupid=None):
    inv = inv or invoice(l2, total or amount)
    kwargs = {"payment_secret": inv["payment_secret"]}
    if partid is not None:
        kwargs.update(partid=partid, amount_msat=total, groupid=groupid)
    l1.rpc.sendpay(route_to(l1, l2, amount), inv["payment_hash"], **kwargs)
    return inv


def waiter(node, method, params, out):
    """Runs a blocking waitsendpay in a thread; its answer goes to out."""
    t = threading.Thread(target=lambda: out.append(call(node, method, params)))
    t.start()
    return t


def drop_torn_plugin_io(node):
    """A lightningd SIGKILLed while it wrote one of its developer-mode
    plugin-io dumps leaves that file empty or cut short, which
    pyln-testing's teardown check then cannot parse (seen once in ten
    runs): those dumps are lightningd's, not paystate's, so the torn ones
    go."""
    folder = os.path.join(node.daemon.lightning_dir, "plugin-io")
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            with open(path) as f:
                json.load(f)
        except ValueError:
            os.remove(path)


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


def v3_node(node_factory, parts, **kwargs):
    """A node without paystate whose table holds `parts` copies of two
    real parts (one complete, one failed) under new hashes, and whose
    datastore holds their v3 records, both written while the node is
    stopped. Returns the node and the failure as v3 kept it."""
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
    for i in range(parts):
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
    set_sendpays_indexes(db, 1000 + parts)
    db.commit()
    db.close()
    return node, failure
