"""In-memory search indexes over the store, append-only like the store itself.

Passages are never changed or removed (a new version adds passages, a deletion closes a
version), so both indexes only grow, and "what may be seen" is a mask computed from the
version table: current versions by default, or the versions valid at an as-of date.

Lexical: BM25 over morpheme terms, kept as scipy sparse blocks in the style of bm25s
(per-passage term weights precomputed, a query sums a few columns). New passages go into a
new block; blocks are merged when there are too many.
Dense: a float32 matrix of unit vectors; exact inner-product search with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .store import PassageRecord, Store, VersionTable

K1 = 1.2
B = 0.75
MAX_BLOCKS = 8


@dataclass
class _Block:
    matrix: sp.csc_matrix  # passages x terms, BM25 term-frequency part (without idf)


class LexicalIndex:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.blocks: list[_Block] = []
        self.size = 0
        self._total_len = 0

    def add(self, term_lists: list[list[str]]) -> None:
        if not term_lists:
            return
        rows, cols, tfs, lengths = [], [], [], []
        for row, terms in enumerate(term_lists):
            counts: dict[int, int] = {}
            for term in terms:
                tid = self.vocab.setdefault(term, len(self.vocab))
                counts[tid] = counts.get(tid, 0) + 1
            rows += [row] * len(counts)
            cols += counts.keys()
            tfs += counts.values()
            lengths.append(len(terms))
        self._total_len += sum(lengths)
        self.size += len(term_lists)
        avg_len = max(self._total_len / self.size, 1.0)
        rows_a, cols_a = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
        tf = np.array(tfs, dtype=np.float32)
        doc_len = np.array(lengths, dtype=np.float32)[rows_a]
        weight = tf * (K1 + 1) / (tf + K1 * (1 - B + B * doc_len / avg_len))
        matrix = sp.csc_matrix((weight, (rows_a, cols_a)), shape=(len(term_lists), len(self.vocab)))
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])
        np.add.at(self.df, cols_a, 1)
        self.blocks.append(_Block(matrix))
        if len(self.blocks) > MAX_BLOCKS:
            self._merge()

    def _merge(self) -> None:
        width = len(self.vocab)
        mats = [sp.csc_matrix((b.matrix.data, b.matrix.indices, np.concatenate(
            [b.matrix.indptr, np.full(width - b.matrix.shape[1], b.matrix.indptr[-1])])),
            shape=(b.matrix.shape[0], width)) for b in self.blocks]
        self.blocks = [_Block(sp.vstack(mats, format="csc"))]

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        df = self.df[term_ids].astype(np.float64)
        return np.log(1 + (self.size - df + 0.5) / (df + 0.5)).astype(np.float32)

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every indexed passage (zeros where no term matches)."""
        out = np.zeros(self.size, dtype=np.float32)
        counts: dict[int, int] = {}
        for t in terms:
            if t in self.vocab:
                tid = self.vocab[t]
                counts[tid] = counts.get(tid, 0) + 1
        if not counts:
            return out
        ids = np.fromiter(counts.keys(), dtype=np.int64)
        qweights = self.idf(ids) * np.fromiter(counts.values(), dtype=np.float32)
        offset = 0
        for block in self.blocks:
            n, width = block.matrix.shape
            keep = ids < width
            if keep.any():
                out[offset:offset + n] = block.matrix[:, ids[keep]] @ qweights[keep]
            offset += n
        return out


class DenseIndex:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._chunks: list[np.ndarray] = []
        self._matrix = np.zeros((0, dim), dtype=np.float32)

    @property
    def size(self) -> int:
        return len(self._matrix) + sum(len(c) for c in self._chunks)

    def add(self, vectors: np.ndarray) -> None:
        self._chunks.append(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim))

    @property
    def matrix(self) -> np.ndarray:
        if self._chunks:
            self._matrix = np.concatenate([self._matrix, *self._chunks])
            self._chunks = []
        return self._matrix

    def scores(self, query: np.ndarray) -> np.ndarray:
        return self.matrix @ np.asarray(query, dtype=np.float32).reshape(self.dim)


class PassageIndex:
    """Both indexes plus the passage -> version map, kept in step with a store."""

    def __init__(self, store: Store, dim: int | None) -> None:
        self.store = store
        self.lexical = LexicalIndex()
        self.dense = DenseIndex(dim) if dim else None
        self.passage_ids = np.zeros(0, dtype=np.int64)
        self.version_keys = np.zeros(0, dtype=np.int64)
        self.versions: VersionTable | None = None
        self._passage_version_row = np.zeros(0, dtype=np.int64)
        self._generation = -1
        self.refresh()

    def refresh(self) -> bool:
        """Pick up passages and version changes written since the last call (by any process)."""
        generation = self.store.generation()
        if generation == self._generation:
            return False
        last = int(self.passage_ids[-1]) if len(self.passage_ids) else 0
        new: list[PassageRecord] = list(self.store.passages_after(last))
        if new:
            self.lexical.add([r.terms.split() for r in new])
            if self.dense is not None:
                vectors = np.stack([
                    np.frombuffer(r.vector, dtype=np.float16) if r.vector is not None
                    else np.zeros(self.dense.dim, dtype=np.float16) for r in new])
                if vectors.shape[1] != self.dense.dim:
                    raise RuntimeError(
                        f"store vectors have {vectors.shape[1]} dims but the encoder has {self.dense.dim}: "
                        "search with the encoder the store was built with (--encoder)")
                self.dense.add(vectors)
            self.passage_ids = np.concatenate([self.passage_ids, [r.passage_id for r in new]]).astype(np.int64)
            self.version_keys = np.concatenate([self.version_keys, [r.version_key for r in new]]).astype(np.int64)
        self.versions = self.store.versions_table()
        self._passage_version_row = np.searchsorted(self.versions.version_keys, self.version_keys)
        self._generation = generation
        return True

    @property
    def size(self) -> int:
        return len(self.passage_ids)

    def visible(self, as_of: float | None = None, doc_keys: np.ndarray | None = None,
                min_passage_id: int | None = None) -> np.ndarray:
        """Boolean mask of passages a query may see."""
        v = self.versions
        if v is None or not len(v.version_keys):
            return np.zeros(self.size, dtype=bool)
        if as_of is None:
            version_ok = np.isinf(v.valid_to)
        else:
            version_ok = (v.valid_from <= as_of) & (as_of < v.valid_to)
        if doc_keys is not None:
            version_ok = version_ok & np.isin(v.doc_keys, doc_keys)
        mask = version_ok[self._passage_version_row]
        if min_passage_id is not None:
            mask &= self.passage_ids > min_passage_id
        return mask

    def doc_key_of(self, positions: np.ndarray) -> np.ndarray:
        return self.versions.doc_keys[self._passage_version_row[positions]]


def top_k(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best visible scores, best first."""
    candidates = np.flatnonzero(mask)
    if not len(candidates) or k <= 0:
        return np.zeros(0, dtype=np.int64)
    sub = scores[candidates]
    if len(sub) > k:
        part = np.argpartition(-sub, k - 1)[:k]
    else:
        part = np.arange(len(sub))
    order = part[np.argsort(-sub[part], kind="stable")]
    return candidates[order]

