"""The embedded store: one SQLite file in WAL mode.

Readers never block the writer and vice versa, so `jisik ask` keeps answering while
`jisik ingest` runs in another process. Every write (a version, its passages, closing the
previous version, invalidating remembered answers) is one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..documents import InputError
from .sql import SQLStore, schema

SCHEMA = schema(key="INTEGER PRIMARY KEY", ref="INTEGER", blob="BLOB")


class SQLiteStore(SQLStore):
    def __init__(self, path: Path, *, create: bool = True) -> None:
        if not create and not path.exists():
            raise FileNotFoundError(
                f"no jisik store at {path}: ingest documents first (jisik ingest FILE --db {path})"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._connection().executescript(SCHEMA)
        with self._write() as conn:
            self._init_meta(conn)

    @property
    def location(self) -> str:
        return str(self.path)

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread: sqlite3 connections must not cross threads."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    def _write(self) -> "_WriteTransaction":
        return _WriteTransaction(self._connection())

    def _any(self, column: str, values: list) -> Iterator[tuple[str, list]]:
        for part in _parameter_chunks(values):
            yield f"{column} IN ({','.join('?' * len(part))})", part

    def _insert_id(self, conn: sqlite3.Connection, sql: str, params: Sequence, key: str) -> int:
        return conn.execute(sql, params).lastrowid

    def _size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# Ids bound per `IN (...)` query. SQLite refuses a statement with more parameters than its
# compile-time limit (999 before 3.32, 32766 after), and a whole 100k-article store has
# 340k passages: every id list is sent in parts of this size.
PARAMETER_CHUNK = 900


def _parameter_chunks(values: list) -> Iterator[list]:
    for start in range(0, len(values), PARAMETER_CHUNK):
        yield values[start:start + PARAMETER_CHUNK]


class _WriteTransaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error: all of a write or none of it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


__all__ = ["SQLiteStore", "InputError"]
