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


def install():
    fixtures.providers["postgres"] = PostgresAsUser
    fixtures.providers["sqlite3-replica"] = SqliteReplicaProvider
    if provider() == "postgres":
        # lightningd runs VACUUM FULL on a new PostgreSQL wallet: seconds
        # a node, for nothing in a test.
        os.environ.setdefault("LIGHTNINGD_POSTGRES_NO_VACUUM", "1")
