"""One jisik instance over one store: what the CLI, the HTTP API and the benchmarks call.

The store remembers which encoder and analyser built it, so a later `search` or `ask`
cannot silently mix vectors from two models.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .documents import Document, Hit
from .embed import get_encoder
from .ingest import Ingester, IngestReport, read_paths
from .korean import get_analyzer, normalize, squeeze
from .memory import QuestionMemory
from .retrieve import MAX_QUERY_CHARS, Retriever
from .store import Store, VersionInfo, open_store

DEFAULT_ENCODER = "use"
READ_PASSAGES = 5  # passages the reader reads per question
READ_WINDOW_CHARS = 1500  # at most this much of one passage is read
# A newer source wins when the reader is at least this confident in it, relative to the
# best answer from an older source.
RECENCY_CONFIDENCE = 0.8
DEFINITION_ARTICLES = 3  # articles titled like a definition question's term, cited at most


def read_window(hit: Hit, terms: list[str], width: int = READ_WINDOW_CHARS) -> Hit:
    """The part of an over-long passage (stores built before chunks were bounded) with the
    most query terms, so reading cost stays bounded; offsets stay document offsets."""
    if len(hit.text) <= width:
        return hit
    step = width // 4
    best, best_count = 0, -1
    for lo in range(0, len(hit.text) - width + step, step):
        window = hit.text[lo:lo + width]
        count = sum(window.count(t) for t in set(terms))
        if count > best_count:
            best, best_count = lo, count
    text = hit.text[best:best + width]
    return replace(hit, text=text, start=hit.start + best, end=hit.start + best + len(text))


class Jisik:
    def __init__(self, store: Store, *, encoder: str | None = None, analyzer: str | None = None) -> None:
        self.store = store
        self.encoder_name = self._pin("encoder", encoder, DEFAULT_ENCODER)
        self.analyzer_name = self._pin("analyzer", analyzer, "kiwi")
        self._retriever: Retriever | None = None
        self._reader = None
        self._memory: QuestionMemory | None = None

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

    @property
    def reader(self):
        if self._reader is None:
            from .read import Reader

            self._reader = Reader.load(analyzer=self.analyzer)
        return self._reader

    @property
    def memory(self) -> QuestionMemory:
        """Remembered answers, kept only while the reader that gave them is the one installed:
        a new model, calibration or reading code may answer differently or score on another
        scale, so the first ask under a new reader forgets them all."""
        if self._memory is None:
            fingerprint = self.reader.fingerprint
            if self.store.setting("memory_reader") != fingerprint:
                self.store.forget_all_memories()
                self.store.set_setting("memory_reader", fingerprint)
            self._memory = QuestionMemory(self.store, self.analyzer)
        return self._memory

    def ask(self, question: str, *, as_of: str | None = None, candidate_ids: list[str] | None = None,
            use_memory: bool = True, min_confidence: float | None = None) -> dict:
        """Answer with evidence, or decline. Plain current questions go through the memory first.

        `min_confidence` (0..1) replaces the reader's calibrated threshold for this question;
        such questions bypass the memory, so an answer given below the default threshold is
        never remembered and served to others."""
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        self.warm_up()
        start = time.perf_counter()
        question = normalize(question).strip()[:MAX_QUERY_CHARS]
        memorable = (use_memory and as_of is None and candidate_ids is None and min_confidence is None
                     and bool(question))
        key = None
        if memorable:
            self.retriever.index.refresh()
            key = self.memory.key(question)
            remembered = self.memory.lookup(question, key, newer_evidence=self._newer_evidence)
            if remembered is not None:
                out = dict(remembered.answer, from_memory=True)
                out["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
                return out
        answer = self._define(question, as_of, candidate_ids)
        if answer is None:
            hits = self.retriever.search(question, READ_PASSAGES, as_of=as_of, candidate_ids=candidate_ids,
                                         collapse=False)
            if any(len(h.text) > READ_WINDOW_CHARS for h in hits):
                terms = self.retriever.query_terms(question)
                hits = [read_window(h, terms) for h in hits]
            answer = self._prefer_recent(question, hits, self.reader.answer(question, hits, min_confidence),
                                         min_confidence)
        out = answer.to_json()
        if memorable and not answer.abstained and answer.evidence is not None:
            sources = sorted({(c.id, c.version) for c in answer.citations})
            self.memory.remember(question, key, out, sources, watermark=int(self.retriever.index.passage_ids[-1]))
        out["from_memory"] = False
        out["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return out

    def _define(self, question: str, as_of: str | None, candidate_ids: list[str] | None):
        """For `X란 무엇인가?`: the opening sentence of the articles titled X (exact title
        first, then `X (…)` senses), or None when the question is not one or no such article
        is among those that may be read."""
        term = self.reader.question(question).defines
        if not term:
            return None
        wanted = squeeze(term)
        hits = self.retriever.search(term, 4 * READ_PASSAGES, as_of=as_of, candidate_ids=candidate_ids,
                                     collapse=False)
        leads = [h for h in hits if h.start == 0 and squeeze(h.title.split(" (")[0]) == wanted]
        leads.sort(key=lambda h: squeeze(h.title) != wanted)  # stable: by rank within each group
        return self.reader.answer_definition(term, leads[:DEFINITION_ARTICLES]) if leads else None

    def _prefer_recent(self, question: str, hits: list[Hit], answer, min_confidence: float | None = None):
        """When a newer source among the read passages also answers, about as confidently,
        answer from the newer one and keep the older as a citation (sources disagree, the
        later one is more likely current)."""
        if answer.abstained or answer.evidence is None:
            return answer
        date = answer.evidence.published_at or ""
        newer = sorted({h.published_at for h in hits if h.id != answer.evidence.id
                        and (h.published_at or "") > date}, reverse=True)
        for published in newer:
            subset = [h for h in hits if h.published_at == published and h.id != answer.evidence.id]
            alt = self.reader.answer(question, subset, min_confidence)
            uncalibrated = self.reader.uncalibrated
            if not alt.abstained and uncalibrated(alt.confidence) >= RECENCY_CONFIDENCE * uncalibrated(answer.confidence):
                if alt.answer != answer.answer:
                    alt.citations = alt.citations + [answer.evidence]
                return alt
        return answer

    def warm_up(self) -> None:
        """Load models and indexes now, so that latencies measure answering, not loading."""
        self.retriever.warm_up()
        self.reader, self.memory

    def _newer_evidence(self, question: str, watermark: int) -> bool:
        """Would a current passage ingested after `watermark` be among those read now?

        Judged on the lexical channel, which decides most of what is read, at the depth the
        reader reads.
        """
        index = self.retriever.index
        if not index.size or int(index.passage_ids[-1]) <= watermark:
            return False
        scores = index.lexical.scores(self.retriever.query_terms(question))
        visible = index.visible() & (scores > 0)
        newer = visible & (index.passage_ids > watermark)
        if not newer.any():
            return False
        ranked = np.sort(scores[visible])[::-1]
        threshold = ranked[min(READ_PASSAGES, len(ranked)) - 1]
        return bool(scores[newer].max() >= threshold)

    def history(self, doc_id: str) -> list[VersionInfo]:
        return self.store.history(doc_id)

    def stats(self) -> dict:
        out = self.store.stats()
        out.update(encoder=self.encoder_name, analyzer=self.analyzer_name)
        return out

    def close(self) -> None:
        self.store.close()
