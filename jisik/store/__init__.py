"""Storage of document versions, passages, vectors and remembered answers.

`Store` is the contract; `SQLiteStore` is the embedded default (one file, WAL) and
`PostgresStore` the scale-out one; both run the same queries (`sql.SQLStore`).
Versions are append-only: a changed document gets a new version and the old one is
closed (`valid_to`), never overwritten, so as-of queries and audits stay possible and the
search index only ever grows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from ..documents import Chunk, Document

DEFAULT_DB = Path("~/.local/share/jisik/jisik.db")


def resolve_db_path(path: str | os.PathLike | None) -> Path:
    """--db PATH, else $JISIK_DB, else ~/.local/share/jisik/jisik.db."""
    chosen = path or os.environ.get("JISIK_DB") or DEFAULT_DB
    return Path(chosen).expanduser()


@dataclass(frozen=True)
class PutResult:
    status: str  # "added" | "updated" | "unchanged"
    doc_id: str
    version: int
    passages: int


@dataclass(frozen=True)
class VersionInfo:
    doc_id: str
    version: int
    title: str
    published_at: str | None
    valid_from: str
    valid_to: str | None
    ingested_at: str
    content_hash: str
    passages: int
    deleted: bool


@dataclass(frozen=True)
class PassageRecord:
    """What the in-memory indexes need of each stored passage."""

    passage_id: int
    version_key: int
    terms: str
    vector: bytes | None


@dataclass(frozen=True)
class VersionTable:
    """Validity of every version, for masking passages by time without touching them."""

    version_keys: np.ndarray  # int64, ascending
    doc_keys: np.ndarray  # int64, one number per document id
    valid_from: np.ndarray  # float64, epoch seconds
    valid_to: np.ndarray  # float64, inf while current


class Store(Protocol):
    def current_hash(self, doc_id: str) -> str | None: ...

    def put(self, doc: Document, chunks: Sequence[Chunk], terms: Sequence[str],
            vectors: np.ndarray | None) -> PutResult: ...

    def delete(self, doc_id: str) -> bool: ...

    def history(self, doc_id: str) -> list[VersionInfo]: ...

    def doc_ids(self) -> list[str]: ...

    def stats(self) -> dict: ...

    def passages_after(self, passage_id: int) -> Iterator[PassageRecord]: ...

    def versions_table(self) -> VersionTable: ...

    def passage_details(self, passage_ids: Sequence[int]) -> dict[int, dict]: ...

    def doc_keys_for(self, doc_ids: Sequence[str]) -> np.ndarray: ...

    def generation(self) -> int: ...

    def setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str) -> None: ...

    def document(self, doc_id: str, as_of: str | None = None) -> dict | None: ...

    def forget_all_memories(self) -> int: ...

    def add_memory(self, question: str, signature: str, terms: str, key_terms: str, answer: str,
                   sources: Sequence[tuple[str, int]], watermark: int) -> int | None: ...

    def memories_after(self, memory_id: int) -> list[tuple[int, str, str, str]]: ...

    def verified_memory(self, memory_id: int) -> tuple[str, int] | None: ...

    def close(self) -> None: ...

    @property
    def location(self) -> str: ...


def open_store(location: str | os.PathLike | None = None, *, create: bool = True) -> "Store":
    """A postgresql:// URL opens the scale-out store; anything else names a SQLite file."""
    from .postgres import PostgresStore, is_postgres_url
    from .sqlite import SQLiteStore

    chosen = str(location or os.environ.get("JISIK_DB") or "")
    if is_postgres_url(chosen):
        return PostgresStore(chosen, create=create)
    return SQLiteStore(resolve_db_path(location), create=create)
