"""A throwaway PostgreSQL server for tests and benchmarks: its own cluster in a temporary
folder, listening only on a Unix socket there, so nothing on the machine is touched and two
runs never collide. Uses the server binaries of an installed PostgreSQL (Debian's
`postgresql` package); as root it runs them as the `postgres` user, since PostgreSQL refuses
to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

HOW_TO_GET_ONE = ("install PostgreSQL (apt-get install postgresql) or set "
                  "JISIK_TEST_POSTGRES=postgresql://USER@HOST/DB (a server where USER may CREATE DATABASE)")


def find_bindir() -> Path | None:
    """The folder with initdb and pg_ctl: pg_config's, else the newest Debian one."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class TemporaryPostgres:
    """`with TemporaryPostgres() as pg: pg.new_database()` gives a URL to a new empty database."""

    def __init__(self, *, durable: bool = False) -> None:
        """`durable`: fsync on, as a deployment runs (benchmarks); tests skip it for speed.
        Commits are asynchronous either way, as SQLite's WAL with synchronous=NORMAL is."""
        self.durable = durable
        self.bindir = find_bindir()
        if self.bindir is None:
            raise RuntimeError("no PostgreSQL server binaries found: " + HOW_TO_GET_ONE)
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run the server as: "
                                   + HOW_TO_GET_ONE) from None
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="jisik-pg-"))
        self.databases = 0

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.run_as, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")

    def __enter__(self) -> "TemporaryPostgres":
        if self.run_as:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "jisik",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"), "-w",
                  "-o", f"-c listen_addresses='' -k {self.folder} -c synchronous_commit=off"
                        f" -c fsync={'on' if self.durable else 'off'}",
                  "start")
        return self

    def url(self, database: str) -> str:
        return f"postgresql://jisik@/{database}?host={self.folder}"

    def new_database(self) -> str:
        import psycopg

        self.databases += 1
        name = f"jisik_test_{self.databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class ExistingPostgres:
    """The server named by $JISIK_TEST_POSTGRES: each test gets a database of its own on it."""

    def __init__(self, url: str) -> None:
        self.base = url
        self.databases = 0
        self.created: list[str] = []

    def __enter__(self) -> "ExistingPostgres":
        return self

    def new_database(self) -> str:
        import psycopg
        from urllib.parse import urlsplit, urlunsplit

        self.databases += 1
        name = f"jisik_test_{os.getpid()}_{self.databases}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        self.created.append(name)
        return urlunsplit(urlsplit(self.base)._replace(path="/" + name))

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
