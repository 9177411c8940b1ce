"""The embedded store: one SQLite file in WAL mode.

Readers never block the writer and vice versa, so `jisik ask` keeps answering while
`jisik ingest` runs in another process. Every write (a version, its passages, closing the
previous version, invalidating remembered answers) is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..documents import Chunk, Document, InputError, now_iso
from . import PassageRecord, PutResult, VersionInfo, VersionTable

SCHEMA_VERSION = 1

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
    end INTEGER NOT NULL,
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


def to_epoch(value: str | None) -> float:
    if value is None:
        return float("inf")
    return datetime.fromisoformat(value).timestamp()


class SQLiteStore:
    def __init__(self, path: Path, *, create: bool = True) -> None:
        if not create and not path.exists():
            raise FileNotFoundError(
                f"no jisik store at {path}: ingest documents first (jisik ingest FILE --db {path})"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        conn = self._conn
        with conn:
            conn.executescript(SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
            elif int(row[0]) != SCHEMA_VERSION:
                raise RuntimeError(f"{path} has schema {row[0]}, this jisik expects {SCHEMA_VERSION}")

    @property
    def _conn(self) -> sqlite3.Connection:
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

    def _write(self):
        return _WriteTransaction(self._conn)

    # --- documents -----------------------------------------------------------------

    def current_hash(self, doc_id: str) -> str | None:
        row = self._conn.execute(
            "SELECT v.content_hash FROM versions v JOIN docs d USING (doc_key) "
            "WHERE d.doc_id=? AND v.valid_to IS NULL", (doc_id,)).fetchone()
        return row[0] if row else None

    def put(self, doc: Document, chunks: Sequence[Chunk], terms: Sequence[str],
            vectors: np.ndarray | None) -> PutResult:
        if len(terms) != len(chunks) or (vectors is not None and len(vectors) != len(chunks)):
            raise ValueError("chunks, terms and vectors must have the same length")
        content_hash = doc.content_hash
        ingested_at = now_iso()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO docs(doc_id) VALUES (?)", (doc.id,))
            doc_key = conn.execute("SELECT doc_key FROM docs WHERE doc_id=?", (doc.id,)).fetchone()[0]
            current = conn.execute(
                "SELECT version_key, content_hash, valid_from FROM versions "
                "WHERE doc_key=? AND valid_to IS NULL", (doc_key,)).fetchone()
            last = conn.execute("SELECT MAX(version), MAX(valid_to) FROM versions WHERE doc_key=?",
                                (doc_key,)).fetchone()
            if current and current[1] == content_hash:
                n = conn.execute("SELECT COUNT(*) FROM passages WHERE version_key=?",
                                 (current[0],)).fetchone()[0]
                return PutResult("unchanged", doc.id, last[0], n)
            # A version starts when it was published, or now; never before the version it
            # replaces (or the deletion it follows), so validity intervals never overlap.
            valid_from = doc.published_at or ingested_at
            floor = max(filter(None, [current[2] if current else None, last[1]]), default=None)
            if floor is not None and valid_from < floor:
                valid_from = floor
            if current:
                conn.execute("UPDATE versions SET valid_to=? WHERE version_key=?", (valid_from, current[0]))
                self._forget(conn, doc_key)
            version = (last[0] or 0) + 1
            cur = conn.execute(
                "INSERT INTO versions(doc_key, version, title, text, url, published_at, metadata, "
                "content_hash, ingested_at, valid_from) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (doc_key, version, doc.title, doc.text, doc.url, doc.published_at,
                 json.dumps(doc.metadata, ensure_ascii=False), content_hash, ingested_at, valid_from))
            version_key = cur.lastrowid
            blobs = [None] * len(chunks) if vectors is None else [
                np.asarray(v, dtype=np.float16).tobytes() for v in vectors]
            conn.executemany(
                "INSERT INTO passages(version_key, seq, start, end, terms, vector) VALUES (?,?,?,?,?,?)",
                [(version_key, i, c.start, c.end, t, b)
                 for i, (c, t, b) in enumerate(zip(chunks, terms, blobs))])
            self._bump(conn)
        return PutResult("updated" if current or last[0] else "added", doc.id, version, len(chunks))

    def delete(self, doc_id: str) -> bool:
        """Close the current version now. Earlier as-of queries still see it."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT v.version_key, v.valid_from, d.doc_key FROM versions v JOIN docs d USING (doc_key) "
                "WHERE d.doc_id=? AND v.valid_to IS NULL", (doc_id,)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE versions SET valid_to=? WHERE version_key=?",
                         (max(now_iso(), row[1]), row[0]))
            self._forget(conn, row[2])
            self._bump(conn)
        return True

    @staticmethod
    def _forget(conn: sqlite3.Connection, doc_key: int) -> None:
        """Remembered answers that relied on any version of this document are void."""
        conn.execute("DELETE FROM memories WHERE memory_id IN "
                     "(SELECT memory_id FROM memory_sources WHERE doc_key=?)", (doc_key,))

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    def setting(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", ("setting:" + key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("setting:" + key, value))

    def generation(self) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def history(self, doc_id: str) -> list[VersionInfo]:
        rows = self._conn.execute(
            "SELECT d.doc_id, v.version, v.title, v.published_at, v.valid_from, v.valid_to, "
            "v.ingested_at, v.content_hash, (SELECT COUNT(*) FROM passages p WHERE p.version_key=v.version_key), "
            "v.valid_to IS NOT NULL AND v.version = (SELECT MAX(version) FROM versions w WHERE w.doc_key=v.doc_key) "
            "FROM versions v JOIN docs d USING (doc_key) WHERE d.doc_id=? ORDER BY v.version", (doc_id,)).fetchall()
        return [VersionInfo(*r[:9], deleted=bool(r[9])) for r in rows]

    def document(self, doc_id: str, as_of: str | None = None) -> dict | None:
        """The version of a document current now (or at `as_of`)."""
        sql = ("SELECT d.doc_id, v.version, v.title, v.text, v.url, v.published_at, v.metadata, v.valid_from, "
               "v.valid_to FROM versions v JOIN docs d USING (doc_key) WHERE d.doc_id=? AND ")
        if as_of is None:
            row = self._conn.execute(sql + "v.valid_to IS NULL", (doc_id,)).fetchone()
        else:
            row = self._conn.execute(sql + "v.valid_from <= ? AND (v.valid_to IS NULL OR v.valid_to > ?)",
                                     (doc_id, as_of, as_of)).fetchone()
        if row is None:
            return None
        keys = ["id", "version", "title", "text", "url", "published_at", "metadata", "valid_from", "valid_to"]
        out = dict(zip(keys, row))
        out["metadata"] = json.loads(out["metadata"])
        return out

    def doc_ids(self) -> list[str]:
        """Ids of the documents with a current version."""
        return [r[0] for r in self._conn.execute(
            "SELECT d.doc_id FROM docs d JOIN versions v USING (doc_key) WHERE v.valid_to IS NULL")]

    def stats(self) -> dict:
        q = self._conn.execute
        return {
            "path": str(self.path),
            "documents": q("SELECT COUNT(*) FROM versions WHERE valid_to IS NULL").fetchone()[0],
            "deleted_documents": q("SELECT COUNT(*) FROM docs d WHERE NOT EXISTS (SELECT 1 FROM versions v "
                                   "WHERE v.doc_key=d.doc_key AND v.valid_to IS NULL)").fetchone()[0],
            "versions": q("SELECT COUNT(*) FROM versions").fetchone()[0],
            "passages": q("SELECT COUNT(*) FROM passages p JOIN versions v USING (version_key) "
                          "WHERE v.valid_to IS NULL").fetchone()[0],
            "passages_all_versions": q("SELECT COUNT(*) FROM passages").fetchone()[0],
            "characters": q("SELECT COALESCE(SUM(LENGTH(text)), 0) FROM versions WHERE valid_to IS NULL").fetchone()[0],
            "memories": q("SELECT COUNT(*) FROM memories").fetchone()[0],
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
        }

    # --- remembered answers -----------------------------------------------------------

    def forget_all_memories(self) -> int:
        """Drop every remembered answer (they were given by another reader); returns how many."""
        with self._write() as conn:
            return conn.execute("DELETE FROM memories").rowcount

    def add_memory(self, question: str, signature: str, terms: str, key_terms: str, answer: str,
                   sources: Sequence[tuple[str, int]], watermark: int) -> int | None:
        """Remember an answer, unless a version it relied on stopped being current meanwhile."""
        with self._write() as conn:
            keys = []
            for doc_id, version in sources:
                row = conn.execute(
                    "SELECT v.doc_key, v.version_key FROM versions v JOIN docs d USING (doc_key) "
                    "WHERE d.doc_id=? AND v.version=? AND v.valid_to IS NULL", (doc_id, version)).fetchone()
                if row is None:
                    return None
                keys.append(row)
            memory_id = conn.execute(
                "INSERT INTO memories(question, signature, terms, key_terms, answer, watermark, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (question, signature, terms, key_terms, answer, watermark, now_iso())).lastrowid
            conn.executemany("INSERT INTO memory_sources VALUES (?,?,?)",
                             [(memory_id, dk, vk) for dk, vk in set(keys)])
        return memory_id

    def memories_after(self, memory_id: int) -> list[tuple[int, str, str, str]]:
        return self._conn.execute(
            "SELECT memory_id, signature, terms, key_terms FROM memories WHERE memory_id > ? ORDER BY memory_id",
            (memory_id,)).fetchall()

    def verified_memory(self, memory_id: int) -> tuple[str, int] | None:
        """A memory's answer if it still exists and every version it used is current."""
        return self._conn.execute(
            "SELECT m.answer, m.watermark FROM memories m WHERE m.memory_id=? AND NOT EXISTS "
            "(SELECT 1 FROM memory_sources s JOIN versions v USING (version_key) "
            " WHERE s.memory_id=m.memory_id AND v.valid_to IS NOT NULL)", (memory_id,)).fetchone()

    # --- what the indexes read ------------------------------------------------------

    def passages_after(self, passage_id: int) -> Iterator[PassageRecord]:
        cur = self._conn.execute(
            "SELECT passage_id, version_key, terms, vector FROM passages WHERE passage_id > ? "
            "ORDER BY passage_id", (passage_id,))
        for row in cur:
            yield PassageRecord(*row)

    def versions_table(self) -> VersionTable:
        rows = self._conn.execute(
            "SELECT version_key, doc_key, valid_from, valid_to FROM versions ORDER BY version_key").fetchall()
        n = len(rows)
        return VersionTable(
            version_keys=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            doc_keys=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
            valid_from=np.fromiter((to_epoch(r[2]) for r in rows), dtype=np.float64, count=n),
            valid_to=np.fromiter((to_epoch(r[3]) for r in rows), dtype=np.float64, count=n),
        )

    def doc_keys_for(self, doc_ids: Sequence[str]) -> np.ndarray:
        keys = []
        for part in _parameter_chunks(list(doc_ids)):
            keys += [r[0] for r in self._conn.execute(
                f"SELECT doc_key FROM docs WHERE doc_id IN ({','.join('?' * len(part))})", part)]
        return np.array(keys, dtype=np.int64)

    def passage_details(self, passage_ids: Sequence[int]) -> dict[int, dict]:
        keys = ["passage_id", "id", "title", "text", "start", "end", "version", "published_at", "url",
                "version_key", "doc_key"]
        details = {}
        for part in _parameter_chunks([int(p) for p in passage_ids]):
            for r in self._conn.execute(
                    "SELECT p.passage_id, d.doc_id, v.title, substr(v.text, p.start + 1, p.end - p.start), "
                    "p.start, p.end, v.version, v.published_at, v.url, v.version_key, d.doc_key FROM passages p "
                    "JOIN versions v USING (version_key) JOIN docs d USING (doc_key) "
                    f"WHERE p.passage_id IN ({','.join('?' * len(part))})", part):
                details[r[0]] = dict(zip(keys, r))
        return details

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

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


__all__ = ["SQLiteStore", "InputError"]
