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
from .sql import SQLStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    doc_key INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS versions (
    version_key INTEGER PRIMARY KEY,
    doc_key INTEGER NOT NULL REFERENCES docs(doc_key),
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    published_at TEXT,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    UNIQUE (doc_key, version)
);
CREATE INDEX IF NOT EXISTS versions_current ON versions(doc_key) WHERE valid_to IS NULL;
CREATE TABLE IF NOT EXISTS passages (
    passage_id INTEGER PRIMARY KEY,
    version_key INTEGER NOT NULL REFERENCES versions(version_key),
    seq INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    terms TEXT NOT NULL,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS passages_version ON passages(version_key);
CREATE TABLE IF NOT EXISTS memories (
    memory_id INTEGER PRIMARY KEY,
    question TEXT NOT NULL,
    signature TEXT NOT NULL,
    terms TEXT NOT NULL,
    key_terms TEXT NOT NULL,
    answer TEXT NOT NULL,
    watermark INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_signature ON memories(signature);
CREATE TABLE IF NOT EXISTS memory_sources (
    memory_id INTEGER NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
    doc_key INTEGER NOT NULL,
    version_key INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_sources_doc ON memory_sources(doc_key);
CREATE INDEX IF NOT EXISTS memory_sources_memory ON memory_sources(memory_id);
"""


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
