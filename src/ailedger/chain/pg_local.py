"""A throwaway PostgreSQL 15 server: `initdb` in a temporary directory, `pg_ctl` on a Unix socket.

For the tests and the store benchmark, which must start a real server themselves and stop it after.

Why a socket and not a TCP port: nothing outside the machine can reach it, and no port can clash with
another test run. PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
account that Debian's package creates (its files in a directory that account owns).

Each user gets its own database (`PgServer.fresh_url`), so tests never see each other's chains.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("AILEDGER_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "ailedger"


class PgServer:
    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"no PostgreSQL 15 in {PG_BIN}: `make venv` installs Debian's postgresql "
                               "(or set AILEDGER_PG_BIN to its bin directory)")
        self.root = Path(tempfile.mkdtemp(prefix="ailedger-pg-"))
        self.data = self.root / "data"
        self.sock = self.root  # the socket file .s.PGSQL.5432 lives here
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._n = itertools.count()
        self._pg(["initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync"])
        self.start()

    def _pg(self, args: list[str]) -> None:
        cmd = [*self._as, str(PG_BIN / args[0]), *args[1:]]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> None:
        opts = f"-k {self.sock} -c listen_addresses='' -c max_connections=200 -c shared_buffers=64MB"
        self._pg(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._pg(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, db: str = "postgres") -> str:
        return f"postgresql:///{db}?host={self.sock}&user={USER}"

    def fresh_url(self) -> str:
        """A new, empty database's URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._n)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

