"""What the SQLite and PostgreSQL stores share: every query, written once.

The two stores differ only in how they connect, what their schema's column types are called,
how a write is serialised, how an id list is bound and what "size" means. Everything else,
the versioning rules above all, lives here, so the embedded default and the scale-out store
cannot drift apart. Queries use `?` placeholders; a dialect rewrites them if it must.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Iterator, Sequence

import numpy as np

from ..documents import Chunk, Document, now_iso
from . import PassageRecord, PutResult, VersionInfo, VersionTable

SCHEMA_VERSION = 1

# Rows of passages fetched per query by `passages_after`: a whole-store read (index
# rebuild, 340k passages with 1 KB vectors for kowiki-100k) never holds more than this.
PASSAGE_PAGE = 5000


TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    doc_key {key},
    doc_id TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS versions (
    version_key {key},
    doc_key {ref} NOT NULL REFERENCES docs(doc_key),
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
    passage_id {key},
    version_key {ref} NOT NULL REFERENCES versions(version_key),
    seq INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    terms TEXT NOT NULL,
    vector {blob}
);
CREATE INDEX IF NOT EXISTS passages_version ON passages(version_key);
CREATE TABLE IF NOT EXISTS memories (
    memory_id {key},
    question TEXT NOT NULL,
    signature TEXT NOT NULL,
    terms TEXT NOT NULL,
    key_terms TEXT NOT NULL,
    answer TEXT NOT NULL,
    watermark {ref} NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_signature ON memories(signature);
CREATE TABLE IF NOT EXISTS memory_sources (
    memory_id {ref} NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
    doc_key {ref} NOT NULL,
    version_key {ref} NOT NULL
);
CREATE INDEX IF NOT EXISTS memory_sources_doc ON memory_sources(doc_key);
CREATE INDEX IF NOT EXISTS memory_sources_memory ON memory_sources(memory_id);
"""


def schema(*, key: str, ref: str, blob: str) -> str:
    """The tables in a dialect's types: `key` an auto-numbered primary key, `ref` a column
    holding one, `blob` bytes. One definition, so the two stores keep the same columns."""
    return TABLES.format(key=key, ref=ref, blob=blob)


def to_epoch(value: str | None) -> float:
    if value is None:
        return float("inf")
    return datetime.fromisoformat(value).timestamp()


class SQLStore:
    """The store's rules over a DB-API connection; subclasses supply the dialect."""

    def _connection(self) -> Any:
        """The calling thread's connection (autocommit: writes go through `_write`)."""
        raise NotImplementedError

    def _write(self) -> AbstractContextManager:
        """One write transaction, serialised with every other writer, rolled back on error."""
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def _any(self, column: str, values: list) -> Iterator[tuple[str, list]]:
        """`column` matches one of `values`: SQL fragments with their parameters."""
        raise NotImplementedError

    def _insert_id(self, conn: Any, sql: str, params: Sequence, key: str) -> int:
        raise NotImplementedError

    def _size_bytes(self) -> int:
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the store lives, for people (never a password)."""
        raise NotImplementedError

    def _q(self, conn: Any, sql: str, params: Sequence = ()) -> Any:
        return conn.execute(self._sql(sql), params)

    def _read(self, sql: str, params: Sequence = ()) -> Any:
        return self._q(self._connection(), sql, params)

    def _init_meta(self, conn: Any) -> None:
        row = self._q(conn, "SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._q(conn, "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._q(conn, "INSERT INTO meta VALUES ('generation', '0') ON CONFLICT (key) DO NOTHING")
        elif int(row[0]) != SCHEMA_VERSION:
            raise RuntimeError(f"{self.location} has schema {row[0]}, this jisik expects {SCHEMA_VERSION}")

    # --- documents -----------------------------------------------------------------

    def current_hash(self, doc_id: str) -> str | None:
        row = self._read(
            "SELECT v.content_hash FROM versions v JOIN docs d USING (doc_key) "
            "WHERE d.doc_id=? AND v.valid_to IS NULL", (doc_id,)).fetchone()
        return row[0] if row else None

    def put(self, doc: Document, chunks: Sequence[Chunk], terms: Sequence[str],
            vectors: np.ndarray | None) -> PutResult:
        if len(terms) != len(chunks) or (vectors is not None and len(vectors) != len(chunks)):
            raise ValueError("chunks, terms and vectors must have the same length")
        content_hash = doc.content_hash
        ingested_at = now_iso()
        q = self._q
        with self._write() as conn:
            q(conn, "INSERT INTO docs(doc_id) VALUES (?) ON CONFLICT (doc_id) DO NOTHING", (doc.id,))
            doc_key = q(conn, "SELECT doc_key FROM docs WHERE doc_id=?", (doc.id,)).fetchone()[0]
            current = q(conn, "SELECT version_key, content_hash, valid_from FROM versions "
                              "WHERE doc_key=? AND valid_to IS NULL", (doc_key,)).fetchone()
            last = q(conn, "SELECT MAX(version), MAX(valid_to) FROM versions WHERE doc_key=?",
                     (doc_key,)).fetchone()
            if current and current[1] == content_hash:
                n = q(conn, "SELECT COUNT(*) FROM passages WHERE version_key=?", (current[0],)).fetchone()[0]
                return PutResult("unchanged", doc.id, last[0], n)
            # A version starts when it was published, or now; never before the version it
            # replaces (or the deletion it follows), so validity intervals never overlap.
            valid_from = doc.published_at or ingested_at
            floor = max(filter(None, [current[2] if current else None, last[1]]), default=None)
            if floor is not None and valid_from < floor:
                valid_from = floor
            if current:
                q(conn, "UPDATE versions SET valid_to=? WHERE version_key=?", (valid_from, current[0]))
                self._forget(conn, doc_key)
            version = (last[0] or 0) + 1
            version_key = self._insert_id(
                conn, "INSERT INTO versions(doc_key, version, title, text, url, published_at, metadata, "
                      "content_hash, ingested_at, valid_from) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (doc_key, version, doc.title, doc.text, doc.url, doc.published_at,
                 json.dumps(doc.metadata, ensure_ascii=False), content_hash, ingested_at, valid_from),
                "version_key")
            blobs = [None] * len(chunks) if vectors is None else [
                np.asarray(v, dtype=np.float16).tobytes() for v in vectors]
            conn.cursor().executemany(
                self._sql('INSERT INTO passages(version_key, seq, start, "end", terms, vector) '
                          'VALUES (?,?,?,?,?,?)'),
                [(version_key, i, c.start, c.end, t, b)
                 for i, (c, t, b) in enumerate(zip(chunks, terms, blobs))])
            self._bump(conn)
        return PutResult("updated" if current or last[0] else "added", doc.id, version, len(chunks))

    def delete(self, doc_id: str) -> bool:
        """Close the current version now. Earlier as-of queries still see it."""
        with self._write() as conn:
            row = self._q(conn, "SELECT v.version_key, v.valid_from, d.doc_key FROM versions v "
                                "JOIN docs d USING (doc_key) WHERE d.doc_id=? AND v.valid_to IS NULL",
                          (doc_id,)).fetchone()
            if row is None:
                return False
            self._q(conn, "UPDATE versions SET valid_to=? WHERE version_key=?", (max(now_iso(), row[1]), row[0]))
            self._forget(conn, row[2])
            self._bump(conn)
        return True

    def _forget(self, conn: Any, doc_key: int) -> None:
        """Remembered answers that relied on any version of this document are void."""
        self._q(conn, "DELETE FROM memories WHERE memory_id IN "
                      "(SELECT memory_id FROM memory_sources WHERE doc_key=?)", (doc_key,))

    def _bump(self, conn: Any) -> None:
        self._q(conn, "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key='generation'")

    def setting(self, key: str) -> str | None:
        row = self._read("SELECT value FROM meta WHERE key=?", ("setting:" + key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as conn:
            self._q(conn, "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    ("setting:" + key, value))

    def generation(self) -> int:
        return int(self._read("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def history(self, doc_id: str) -> list[VersionInfo]:
        rows = self._read(
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
            row = self._read(sql + "v.valid_to IS NULL", (doc_id,)).fetchone()
        else:
            row = self._read(sql + "v.valid_from <= ? AND (v.valid_to IS NULL OR v.valid_to > ?)",
                             (doc_id, as_of, as_of)).fetchone()
        if row is None:
            return None
        keys = ["id", "version", "title", "text", "url", "published_at", "metadata", "valid_from", "valid_to"]
        out = dict(zip(keys, row))
        out["metadata"] = json.loads(out["metadata"])
        return out

    def doc_ids(self) -> list[str]:
        """Ids of the documents with a current version."""
        return [r[0] for r in self._read(
            "SELECT d.doc_id FROM docs d JOIN versions v USING (doc_key) WHERE v.valid_to IS NULL").fetchall()]

    def stats(self) -> dict:
        def count(sql: str) -> int:
            return int(self._read(sql).fetchone()[0])

        return {
            "path": self.location,
            "documents": count("SELECT COUNT(*) FROM versions WHERE valid_to IS NULL"),
            "deleted_documents": count("SELECT COUNT(*) FROM docs d WHERE NOT EXISTS (SELECT 1 FROM versions v "
                                       "WHERE v.doc_key=d.doc_key AND v.valid_to IS NULL)"),
            "versions": count("SELECT COUNT(*) FROM versions"),
            "passages": count("SELECT COUNT(*) FROM passages p JOIN versions v USING (version_key) "
                              "WHERE v.valid_to IS NULL"),
            "passages_all_versions": count("SELECT COUNT(*) FROM passages"),
            "characters": count("SELECT COALESCE(SUM(LENGTH(text)), 0) FROM versions WHERE valid_to IS NULL"),
            "memories": count("SELECT COUNT(*) FROM memories"),
            "bytes": self._size_bytes(),
        }

    # --- remembered answers -----------------------------------------------------------

    def forget_all_memories(self) -> int:
        """Drop every remembered answer (they were given by another reader); returns how many."""
        with self._write() as conn:
            return self._q(conn, "DELETE FROM memories").rowcount

    def add_memory(self, question: str, signature: str, terms: str, key_terms: str, answer: str,
                   sources: Sequence[tuple[str, int]], watermark: int) -> int | None:
        """Remember an answer, unless a version it relied on stopped being current meanwhile."""
        with self._write() as conn:
            keys = []
            for doc_id, version in sources:
                row = self._q(conn, "SELECT v.doc_key, v.version_key FROM versions v JOIN docs d USING (doc_key) "
                                    "WHERE d.doc_id=? AND v.version=? AND v.valid_to IS NULL",
                              (doc_id, version)).fetchone()
                if row is None:
                    return None
                keys.append(tuple(row))
            memory_id = self._insert_id(
                conn, "INSERT INTO memories(question, signature, terms, key_terms, answer, watermark, created_at) "
                      "VALUES (?,?,?,?,?,?,?)",
                (question, signature, terms, key_terms, answer, watermark, now_iso()), "memory_id")
            conn.cursor().executemany(self._sql("INSERT INTO memory_sources VALUES (?,?,?)"),
                                      [(memory_id, dk, vk) for dk, vk in set(keys)])
        return memory_id

    def memories_after(self, memory_id: int) -> list[tuple[int, str, str, str]]:
        return [tuple(r) for r in self._read(
            "SELECT memory_id, signature, terms, key_terms FROM memories WHERE memory_id > ? ORDER BY memory_id",
            (memory_id,)).fetchall()]

    def verified_memory(self, memory_id: int) -> tuple[str, int] | None:
        """A memory's answer if it still exists and every version it used is current."""
        row = self._read(
            "SELECT m.answer, m.watermark FROM memories m WHERE m.memory_id=? AND NOT EXISTS "
            "(SELECT 1 FROM memory_sources s JOIN versions v USING (version_key) "
            " WHERE s.memory_id=m.memory_id AND v.valid_to IS NOT NULL)", (memory_id,)).fetchone()
        return tuple(row) if row else None

    # --- what the indexes read ------------------------------------------------------

    def passages_after(self, passage_id: int) -> Iterator[PassageRecord]:
        while True:
            rows = self._read("SELECT passage_id, version_key, terms, vector FROM passages WHERE passage_id > ? "
                              "ORDER BY passage_id LIMIT ?", (passage_id, PASSAGE_PAGE)).fetchall()
            for r in rows:
                yield PassageRecord(r[0], r[1], r[2], r[3] if r[3] is None or isinstance(r[3], bytes) else bytes(r[3]))
            if len(rows) < PASSAGE_PAGE:
                return
            passage_id = rows[-1][0]

    def versions_table(self) -> VersionTable:
        rows = self._read(
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
        for where, params in self._any("doc_id", list(doc_ids)):
            keys += [r[0] for r in self._read(f"SELECT doc_key FROM docs WHERE {where}", params).fetchall()]
        return np.array(keys, dtype=np.int64)

    def passage_details(self, passage_ids: Sequence[int]) -> dict[int, dict]:
        keys = ["passage_id", "id", "title", "text", "start", "end", "version", "published_at", "url",
                "version_key", "doc_key"]
        details = {}
        for where, params in self._any("p.passage_id", [int(p) for p in passage_ids]):
            for r in self._read(
                    'SELECT p.passage_id, d.doc_id, v.title, substr(v.text, p.start + 1, p."end" - p.start), '
                    'p.start, p."end", v.version, v.published_at, v.url, v.version_key, d.doc_key FROM passages p '
                    f"JOIN versions v USING (version_key) JOIN docs d USING (doc_key) WHERE {where}",
                    params).fetchall():
                details[r[0]] = dict(zip(keys, r))
        return details
