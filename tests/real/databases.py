"""The wallets the real-node tests run on, chosen as Core Lightning's own
suite chooses them, by TEST_DB_PROVIDER:

- `sqlite3` (the default): one sqlite file per node;
- `sqlite3-replica`: sqlite with a live replica in another folder
  (`--wallet=sqlite3://MAIN:REPLICA`: lightningd writes both);
- `postgres`: a PostgreSQL server per test, a database per node
  (pyln-testing's PostgresDbProvider). `initdb` and `postgres` refuse to
  run as root: run as root, they run here as the `postgres` user
  (setpriv), in a test folder that user owns.

install() adds these to pyln-testing's table of providers (conftest.py);
the installed package is not changed."""
import os
import pwd
import shlex
import shutil
import time

from pyln.testing import fixtures
from pyln.testing.db import PostgresDbProvider, Sqlite3Db, SqliteDbProvider

USER = "postgres"


def provider():
    return os.environ.get("TEST_DB_PROVIDER", "sqlite3")


def describe():
    return {"sqlite3": "sqlite", "sqlite3-replica": "sqlite with a replica",
            "postgres": "PostgreSQL"}.get(provider(), provider())


class PostgresAsUser(PostgresDbProvider):
    def locate_path(self):
        initdb, postgres = super().locate_path()
        if os.geteuid() != 0:
            return initdb, postgres
        if shutil.which("setpriv") is None:
            raise ValueError("running as root, PostgreSQL needs setpriv "
                             "(util-linux) to run as the postgres user")
        wrappers = os.path.join(self.directory, "pg-as-" + USER)
        os.makedirs(wrappers, exist_ok=True)
        out = []
        for real in (initdb, postgres):
            path = os.path.join(wrappers, os.path.basename(real))
            with open(path, "w") as f:
                # exec: the server's signals (a fast shutdown) reach it.
                f.write("#!/bin/sh\nexec setpriv --reuid={0} --regid={0} "
                        "--init-groups {1} \"$@\"\n".format(
                            USER, shlex.quote(real)))
            os.chmod(path, 0o755)
            out.append(path)
        return tuple(out)

    def start(self):
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(USER)
            except KeyError:
                raise ValueError("running as root, PostgreSQL needs a {} "
                                 "user to run as".format(USER))
            # initdb creates its data folder in here, as that user.
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        super().start()


class ReplicatedSqlite3Db(Sqlite3Db):
    def __init__(self, path, replica):
        super().__init__(path)
        self.replica = replica

    def get_dsn(self):
        return "sqlite3://{}:{}".format(self.path, self.replica)


class SqliteReplicaProvider(SqliteDbProvider):
    def get_db(self, node_directory, testname, node_id):
        main = super().get_db(node_directory, testname, node_id).path
        # Another folder, as another disk would be.
        folder = os.path.join(self.directory, "replica-{}".format(node_id))
        os.makedirs(folder, exist_ok=True)
        return ReplicatedSqlite3Db(main, os.path.join(folder,
                                                      "lightningd.sqlite3"))


# lightningd (v26.06.6, and master as of this writing) splits a replica's
# DSN into two file names allocated off its `struct db` and never freed
# (db/db_sqlite3.c, after "Split at ':'"), so developer mode's leak check
# reports two `char[]` under `struct db` for every node with a replica.
# Those, and only those, are forgiven, on the replica wallet only.
KNOWN_REPLICA_LEAK = ("char[]", "struct db")


def leak_reports(lines):
    """The MEMLEAK reports in a node's log: for each, its (label, first
    parent) and the indices of its lines (the MEMLEAK line and the
    lightningd BROKEN lines after it)."""
    reports = []
    current = None
    for i, line in enumerate(lines):
        text = line.split("lightningd:", 1)[-1].strip()
        if "MEMLEAK:" in line:
            current = {"label": None, "parents": None, "lines": [i]}
            reports.append(current)
        elif current and "**BROKEN** lightningd:" in line:
            current["lines"].append(i)
            if text.startswith("label="):
                current["label"] = text[len("label="):]
            elif text == "parents:":
                current["parents"] = []
            elif current["parents"] == []:
                current["parents"].append(text)
        else:
            current = None
    return [((r["label"], (r["parents"] or [None])[0]), r["lines"])
            for r in reports]


def only_the_replica_leak(node):
    node.daemon.logs_catchup()
    reports = leak_reports(node.daemon.logs)
    return bool(reports) and all(r == KNOWN_REPLICA_LEAK for r, _ in reports)


def forgive_the_replica_leak(node):
    """A node on the replica wallet: its leak check forgives the known
    leak above (pyln-testing asks `dev-memleak`, then reads the log)."""
    real = node.rpc.dev_memleak

    def dev_memleak(*args, **kwargs):
        out = real(*args, **kwargs)
        if out.get("leaks") != [{"subdaemon": "lightningd"}]:
            return out
        # The report reaches the log a moment after the answer.
        deadline = time.time() + 10
        while time.time() < deadline:
            node.daemon.logs_catchup()
            reports = leak_reports(node.daemon.logs)
            if reports and all(p is not None for (_, p), _ in reports):
                break
            time.sleep(0.1)
        return dict(out, leaks=[]) if only_the_replica_leak(node) else out
    node.rpc.dev_memleak = dev_memleak


def without_the_replica_leak(check):
    """pyln-testing's log check, blind to the known leak's report lines."""
    def checked(node):
        node.daemon.logs_catchup()
        logs = node.daemon.logs
        known = {i for r, lines in leak_reports(logs)
                 if r == KNOWN_REPLICA_LEAK for i in lines}
        shown = [line for i, line in enumerate(logs) if i not in known]
        node.daemon.logs = shown
        seen = len(shown)
        try:
            return check(node)
        finally:
            # Lines the check read in meanwhile stay in the log.
            node.daemon.logs = logs + shown[seen:]
    return checked


def install():
    fixtures.providers["postgres"] = PostgresAsUser
    fixtures.providers["sqlite3-replica"] = SqliteReplicaProvider
    if provider() == "sqlite3-replica":
        fixtures.checkMemleak = without_the_replica_leak(fixtures.checkMemleak)
        fixtures.checkBroken = without_the_replica_leak(fixtures.checkBroken)
    if provider() == "postgres":
        # lightningd runs VACUUM FULL on a new PostgreSQL wallet: seconds
        # a node, for nothing in a test.
        os.environ.setdefault("LIGHTNINGD_POSTGRES_NO_VACUUM", "1")
