"""One jisik instance over one store: what the CLI, the HTTP API and the benchmarks call.

The store remembers which encoder and analyser built it, so a later `search` or `ask`
cannot silently mix vectors from two models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .documents import Document, Hit
from .embed import get_encoder
from .ingest import Ingester, IngestReport, read_paths
from .korean import get_analyzer
from .retrieve import Retriever
from .store import Store, VersionInfo, open_store

DEFAULT_ENCODER = "use"


class Jisik:
    def __init__(self, store: Store, *, encoder: str | None = None, analyzer: str | None = None) -> None:
        self.store = store
        self.encoder_name = self._pin("encoder", encoder, DEFAULT_ENCODER)
        self.analyzer_name = self._pin("analyzer", analyzer, "kiwi")
        self._retriever: Retriever | None = None
        self._reader = None

    @classmethod
    def open(cls, db: str | os.PathLike | None = None, *, create: bool = True, **kwargs) -> "Jisik":
        return cls(open_store(db, create=create), **kwargs)

    def _pin(self, key: str, wanted: str | None, default: str) -> str:
        stored = self.store.setting(key)
        if stored is None:
            value = wanted or default
            self.store.set_setting(key, value)
            return value
        if wanted is not None and wanted != stored:
            raise ValueError(f"this store was built with {key} {stored!r}, not {wanted!r}: "
                             f"use a new --db for {wanted!r}")
        return stored

    @property
    def encoder(self):
        return None if self.encoder_name == "none" else get_encoder(self.encoder_name)

    @property
    def analyzer(self):
        return get_analyzer(self.analyzer_name)

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.store, analyzer=self.analyzer, encoder=self.encoder)
        return self._retriever

    # --- writing ---------------------------------------------------------------------

    def ingest_paths(self, paths: Iterable[str | Path], progress=None) -> IngestReport:
        report = IngestReport()
        docs = read_paths(paths, report.problems)
        return Ingester(self.store, self.analyzer, self.encoder).ingest(docs, report, progress)

    def ingest_documents(self, docs: Iterable[Document], progress=None) -> IngestReport:
        return Ingester(self.store, self.analyzer, self.encoder).ingest(docs, None, progress)

    def delete(self, doc_id: str) -> bool:
        return self.store.delete(doc_id)

    # --- reading ---------------------------------------------------------------------

    def search(self, query: str, k: int = 10, **kwargs) -> list[Hit]:
        return self.retriever.search(query, k, **kwargs)

    def history(self, doc_id: str) -> list[VersionInfo]:
        return self.store.history(doc_id)

    def stats(self) -> dict:
        out = self.store.stats()
        out.update(encoder=self.encoder_name, analyzer=self.analyzer_name)
        return out

    def close(self) -> None:
        self.store.close()
