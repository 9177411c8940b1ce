"""Hybrid retrieval: two BM25 channels and dense vectors, fused by score, then reranked.

Stage 1 scores every visible passage with BM25 over Kiwi content morphemes (title terms
included) and BM25 over character bigrams (spacing-proof), each divided by its best visible
score and summed with fixed weights. Rank fusion (RRF) was tried and threw away the score
margins that make BM25 strong on KorQuAD; see docs/retrieval.md.
Stage 2 (`jisik.rerank`) reorders the top CANDIDATES with a learned linear model over
coverage, proximity, title-match, dense-cosine and first-stage features. Without the model
file, hybrid falls back to stage 1.

Modes: hybrid (both stages), fused (stage 1 only), lexical (morpheme BM25), bigram
(character-bigram BM25), dense (encoder cosine). All honour the same visibility masks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .documents import Hit, InputError, end_of_day, parse_date
from .embed import Encoder, get_encoder
from .index import PassageIndex, bigram_keys, letters_of, top_k
from .korean import MAX_TEXT_CHARS, Analyzer, get_analyzer, normalize, terms_from_morphemes
from .rerank import QueryChannels, Reranker, candidate_features, default_model_path
from .store import Store

MODES = ("hybrid", "fused", "lexical", "bigram", "dense")
MAX_QUERY_CHARS = 2000
DEPTH = 100  # passages ranked before collapsing to documents
CANDIDATES = 40  # fused passages the reranker reorders
DENSE_CANDIDATES = 5  # best dense passages added to them when an encoder is present


@dataclass
class FusionWeights:
    """Stage 1: score = sum_i w_i * s_i / max visible s_i. Tuned on non-held-out KorQuAD."""

    lexical: float = 1.0
    bigram: float = 2.0
    dense: float = 0.0


class Retriever:
    def __init__(self, store: Store, *, analyzer: Analyzer | None = None,
                 encoder: Encoder | None | str = "use", weights: FusionWeights | None = None,
                 reranker: Reranker | None | str = "default") -> None:
        self.store = store
        self.analyzer = analyzer or get_analyzer()
        self.encoder = get_encoder(encoder) if isinstance(encoder, str) else encoder
        self.weights = weights or FusionWeights()
        self._warm = False
        # "default": the variant trained with dense features when there is an encoder, the
        # lexical-only variant (rerank-lexical.json) when there is none.
        self.reranker = (Reranker.load(default_model_path(self.encoder is not None))
                         if isinstance(reranker, str) else reranker)
        self.index = PassageIndex(store, self.encoder.dim if self.encoder else None, analyzer=self.analyzer)

    def warm_up(self) -> None:
        """Load the encoder's model now (it loads on first use, ~1 s) so latencies measure search."""
        if self.encoder is not None and not self._warm:
            self.encoder.encode_queries(["준비"])
        self._warm = True

    def query_terms(self, query: str) -> list[str]:
        return terms_from_morphemes(self.analyzer.morphemes(normalize(query)[:MAX_TEXT_CHARS]))

    def search(self, query: str, k: int = 10, *, candidate_ids: list[str] | None = None,
               as_of: str | None = None, mode: str = "hybrid", collapse: bool = True,
               refresh: bool = True) -> list[Hit]:
        """Best passages for a query; with collapse, at most one (the best) per document."""
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode == "dense" and self.encoder is None:
            raise ValueError("this retriever has no encoder: use a lexical mode")
        if refresh:
            self.index.refresh()
        query = normalize(query).strip()[:MAX_QUERY_CHARS]
        if not query or self.index.size == 0 or k <= 0:
            return []
        mask = self.visible(candidate_ids, as_of)
        ranked = self._rank(query, mask, mode, depth=max(DEPTH, k * 4))
        positions, scores = self._collapse(ranked, k) if collapse else (ranked[0][:k], ranked[1][:k])
        return self._hits(positions, scores)

    def visible(self, candidate_ids: list[str] | None = None, as_of: str | None = None) -> np.ndarray:
        if candidate_ids is not None and not (isinstance(candidate_ids, list)
                                              and all(isinstance(c, str) for c in candidate_ids)):
            raise InputError("'candidate_ids' must be a list of strings")
        return self.index.visible(
            as_of=as_of_epoch(as_of),
            doc_keys=self.store.doc_keys_for(candidate_ids) if candidate_ids is not None else None)

    def channels(self, query: str, mask: np.ndarray, dense: bool = True) -> QueryChannels:
        """Stage 1 for one (normalised) query: every channel's scores and the fused score."""
        lex, big = self.index.lexical, self.index.bigram
        terms = self.query_terms(query)
        m_ids, m_counts = lex.query_ids(terms)
        if len(m_ids):
            m_scores, m_cols = lex.scores_for(m_ids, m_counts)
        else:
            m_scores, m_cols = np.zeros(self.index.size, dtype=np.float32), None
        b_ids, b_counts = big.query_ids(bigram_keys(query))
        if len(b_ids):
            b_scores, b_cols = big.scores_for(b_ids, b_counts)
        else:
            b_scores, b_cols = np.zeros(self.index.size, dtype=np.float32), None
        d_scores = None
        if dense and self.encoder is not None and self.index.dense is not None:
            d_scores = self.index.dense.scores(self.encoder.encode_queries([query])[0])
        w = self.weights
        fused = w.lexical * _by_best(m_scores, mask) + w.bigram * _by_best(b_scores, mask)
        if d_scores is not None and w.dense:
            fused = fused + w.dense * _by_best(np.maximum(d_scores, 0), mask)
        return QueryChannels(
            morph_ids=m_ids, morph_idf=lex.idf(m_ids).astype(np.float64), morph_counts=m_counts,
            morph_scores=m_scores, morph_cols=m_cols, bigram_idf=big.idf(b_ids).astype(np.float64),
            bigram_scores=b_scores, bigram_cols=b_cols, dense_scores=d_scores, fused=fused,
            query_letters=letters_of(query), query_terms=set(terms))

    def candidates(self, ch: QueryChannels, mask: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1 order (positions, fused scores); dense-only passages come after the lexical ones."""
        positions = top_k(ch.fused, mask & (ch.fused > 0), depth)
        return positions, ch.fused[positions]

    def pool(self, ch: QueryChannels, positions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The passages stage 2 reorders: the best fused ones plus the best dense ones."""
        pool = positions[:CANDIDATES]
        if ch.dense_scores is not None and DENSE_CANDIDATES:
            extra = top_k(ch.dense_scores, mask, DENSE_CANDIDATES)
            pool = np.concatenate([pool, extra[~np.isin(extra, pool)]])
        return pool.astype(np.int64)

    def _rank(self, query: str, mask: np.ndarray, mode: str, depth: int) -> tuple[np.ndarray, np.ndarray]:
        if mode == "dense":
            scores = self.index.dense.scores(self.encoder.encode_queries([query])[0])
            positions = top_k(scores, mask, depth)
            return positions, scores[positions]
        if mode in ("lexical", "bigram"):
            channel = self.index.lexical if mode == "lexical" else self.index.bigram
            scores = channel.scores(self.query_terms(query) if mode == "lexical" else bigram_keys(query))
            positions = top_k(scores, mask & (scores > 0), depth)
            return positions, scores[positions]
        use_reranker = mode == "hybrid" and self.reranker is not None
        ch = self.channels(query, mask, dense=use_reranker or bool(self.weights.dense))
        positions, scores = self.candidates(ch, mask, depth)
        if not use_reranker:
            return positions, scores
        pool = self.pool(ch, positions, mask)
        if not len(pool):
            return positions, scores
        rescored = self.reranker.score(candidate_features(self.index, ch, pool))
        order = np.argsort(-rescored, kind="stable")
        rest = positions[~np.isin(positions, pool)]
        floor = float(rescored.min()) - 1.0
        return (np.concatenate([pool[order], rest]).astype(np.int64),
                np.concatenate([rescored[order], floor - np.arange(len(rest))]).astype(np.float32))

    def _collapse(self, ranked: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        positions, scores = ranked
        if not len(positions):
            return positions, scores
        doc_keys = self.index.doc_key_of(positions)
        _, first = np.unique(doc_keys, return_index=True)
        keep = np.sort(first)[:k]
        return positions[keep], scores[keep]

    def _hits(self, positions: np.ndarray, scores: np.ndarray) -> list[Hit]:
        pids = self.index.passage_ids[positions].tolist()
        details = self.store.passage_details(pids)
        hits = []
        for pid, score in zip(pids, scores.tolist()):
            d = details[pid]
            hits.append(Hit(id=d["id"], title=d["title"], score=score, text=d["text"], start=d["start"],
                            end=d["end"], passage_id=pid, version=d["version"],
                            published_at=d["published_at"], url=d["url"]))
        return hits


def _by_best(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scores divided by the best visible score (so each channel tops out at 1)."""
    visible = scores[mask]
    best = float(visible.max()) if len(visible) else 0.0
    return scores / best if best > 0 else np.zeros_like(scores)


def as_of_epoch(as_of: str | None) -> float | None:
    """'2022-03-01' means the end of that day; a datetime means that instant (UTC)."""
    if as_of is None:
        return None
    return datetime.fromisoformat(end_of_day(parse_date(as_of))).timestamp()


def timed_search(retriever: Retriever, query: str, **kwargs) -> tuple[list[Hit], float]:
    start = time.perf_counter()
    hits = retriever.search(query, **kwargs)
    return hits, (time.perf_counter() - start) * 1000
