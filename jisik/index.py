"""In-memory search indexes over the store, append-only like the store itself.

Passages are never changed or removed (a new version adds passages, a deletion closes a
version), so both indexes only grow, and "what may be seen" is a mask computed from the
version table: current versions by default, or the versions valid at an as-of date.

Lexical: BM25 over morpheme terms, kept as scipy sparse blocks in the style of bm25s
(per-passage term weights precomputed, a query sums a few columns). New passages go into a
new block; blocks are merged when there are too many.
Character bigrams: a second BM25 channel over overlapping character pairs of title + text
with whitespace and punctuation removed, so it does not care how a query is spaced
(서울에서열린 and 서울에서 열린 give the same bigrams) nor how a compound is split.
Dense: a float32 matrix of unit vectors; exact inner-product search with numpy.

Everything is rebuilt from what the store keeps: each passage's `terms` string and vector
(`passages_after`) and its title and text (`passage_details`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .store import PassageRecord, Store, VersionTable

K1 = 1.2
B = 0.75
# Tuned on non-held-out KorQuAD questions (docs/retrieval.md): short passages, many repeats
# of the topic word, so less length normalisation and earlier tf saturation than the defaults.
MORPH_K1, MORPH_B = 0.9, 0.4
BIGRAM_K1, BIGRAM_B = 0.9, 0.3
MAX_BLOCKS = 8
DETAIL_BATCH = 500
DENSE_CHUNK = 256


_NOT_LETTER = re.compile(r"[\W_]+")


def letters_of(text: str) -> str:
    """Letters and digits only, lower-cased, NFKC: spacing and punctuation do not count."""
    return _NOT_LETTER.sub("", unicodedata.normalize("NFKC", text).lower())


def bigram_keys(text: str) -> np.ndarray:
    """Overlapping character pairs of a text's letters and digits, each as one integer
    (two 21-bit code points), so indexing needs no per-bigram Python work."""
    codes = np.frombuffer(letters_of(text).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    if len(codes) < 2:
        return codes
    return (codes[:-1] << 21) | codes[1:]


@dataclass
class _Block:
    matrix: sp.csc_matrix  # passages x terms, BM25 term-frequency part (without idf)


class LexicalIndex:
    def __init__(self, k1: float = K1, b: float = B, keep_sequences: bool = False) -> None:
        self.k1, self.b = k1, b
        self.keep_sequences = keep_sequences
        self.sequences: list[np.ndarray] = []  # term ids in order, per passage (for proximity)
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.blocks: list[_Block] = []
        self.size = 0
        self._total_len = 0

    def add(self, term_lists: list) -> None:
        """Index passages given as lists of string terms or arrays of integer keys.

        Counting is done with numpy over the whole batch: per-term Python work is one
        dictionary lookup for strings and none for integer keys (character bigrams).
        """
        if not len(term_lists):
            return
        n = len(term_lists)
        lengths = np.fromiter((len(t) for t in term_lists), dtype=np.int64, count=n)
        ids = self._term_ids(term_lists)
        if self.keep_sequences:
            bounds = np.cumsum(lengths)[:-1]
            self.sequences.extend(part.astype(np.int32) for part in np.split(ids, bounds))
        width = max(len(self.vocab), 1)
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        pairs, tf = np.unique(rows * width + ids, return_counts=True)
        rows_a, cols_a = pairs // width, pairs % width
        self._total_len += int(lengths.sum())
        self.size += n
        avg_len = max(self._total_len / self.size, 1.0)
        tf = tf.astype(np.float32)
        doc_len = lengths.astype(np.float32)[rows_a]
        k1, b = self.k1, self.b
        weight = tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avg_len))
        matrix = sp.csc_matrix((weight, (rows_a, cols_a)), shape=(n, len(self.vocab)))
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])
        self.df += np.bincount(cols_a, minlength=len(self.vocab))
        self.blocks.append(_Block(matrix))
        if len(self.blocks) > MAX_BLOCKS:
            self._merge()

    def _term_ids(self, term_lists: list) -> np.ndarray:
        """Vocabulary ids of all terms of a batch, in order, growing the vocabulary."""
        vocab = self.vocab
        if isinstance(term_lists[0], np.ndarray):
            uniq, inverse = np.unique(np.concatenate(term_lists), return_inverse=True)
            mapped = np.fromiter((vocab.setdefault(k, len(vocab)) for k in uniq.tolist()),
                                 dtype=np.int64, count=len(uniq))
            return mapped[inverse]
        return np.array([vocab.setdefault(t, len(vocab)) for terms in term_lists for t in terms], dtype=np.int64)

    def _merge(self) -> None:
        width = len(self.vocab)
        mats = [sp.csc_matrix((b.matrix.data, b.matrix.indices, np.concatenate(
            [b.matrix.indptr, np.full(width - b.matrix.shape[1], b.matrix.indptr[-1])])),
            shape=(b.matrix.shape[0], width)) for b in self.blocks]
        self.blocks = [_Block(sp.vstack(mats, format="csc"))]

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        df = self.df[term_ids].astype(np.float64)
        return np.log(1 + (self.size - df + 0.5) / (df + 0.5)).astype(np.float32)

    def query_ids(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct known term ids of a query and how often each occurs in it."""
        counts: dict[int, int] = {}
        for t in terms:
            tid = self.vocab.get(t)
            if tid is not None:
                counts[tid] = counts.get(tid, 0) + 1
        return (np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
                np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))

    def columns(self, ids: np.ndarray) -> sp.csr_matrix:
        """passages x len(ids) BM25 term weights (without idf) of the given term ids."""
        parts = []
        for block in self.blocks:
            n, width = block.matrix.shape
            if len(ids) and ids.max() < width:
                parts.append(block.matrix[:, ids])
            else:
                keep = ids < width
                sub = block.matrix[:, ids[keep]].tocoo()
                parts.append(sp.csc_matrix((sub.data, (sub.row, np.flatnonzero(keep)[sub.col])),
                                           shape=(n, len(ids))))
        if not parts:
            return sp.csr_matrix((self.size, len(ids)), dtype=np.float32)
        return sp.vstack(parts, format="csr")

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every indexed passage (zeros where no term matches)."""
        ids, counts = self.query_ids(terms)
        if not len(ids):
            return np.zeros(self.size, dtype=np.float32)
        return self.scores_for(ids, counts)[0]

    def scores_for(self, ids: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        """BM25 scores for query term ids, and the column matrix they came from."""
        cols = self.columns(ids)
        qweights = self.idf(ids) * counts
        return np.asarray(cols @ qweights, dtype=np.float32).reshape(-1), cols


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
        q = np.asarray(query, dtype=np.float32).reshape(self.dim)
        m = self.matrix
        # Row chunks keep each product under OpenBLAS's threading threshold: a threaded
        # matrix-vector product is ~30x slower on a busy 2-core machine than a serial one.
        out = np.empty(len(m), dtype=np.float32)
        for start in range(0, len(m), DENSE_CHUNK):
            np.dot(m[start:start + DENSE_CHUNK], q, out=out[start:start + DENSE_CHUNK])
        return out


class PassageIndex:
    """Both indexes plus the passage -> version map, kept in step with a store."""

    def __init__(self, store: Store, dim: int | None, analyzer=None) -> None:
        self.store = store
        self.analyzer = analyzer
        self.lexical = LexicalIndex(MORPH_K1, MORPH_B, keep_sequences=True)
        self.bigram = LexicalIndex(BIGRAM_K1, BIGRAM_B)
        self.titles: list[str] = []  # distinct titles
        self.title_terms: list[list[str]] = []  # their index terms
        self._title_ids: dict[str, int] = {}
        self._title_letters: list[str] = []
        self._title_term_ids: dict[int, np.ndarray] = {}
        self.title_of = np.zeros(0, dtype=np.int64)  # per passage, into titles
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
            details: dict[int, dict] = {}
            for start in range(0, len(new), DETAIL_BATCH):
                details.update(self.store.passage_details([r.passage_id for r in new[start:start + DETAIL_BATCH]]))
            self._add_titles({d["title"] or "" for d in details.values()})
            title_of = [self._title_ids[details[r.passage_id]["title"] or ""] for r in new]
            # The title's terms go with every passage: chunks of a long article often never
            # name the entity the article is about.
            self.lexical.add([self.title_terms[t] + r.terms.split() for t, r in zip(title_of, new)])
            self.bigram.add([np.concatenate([bigram_keys(details[r.passage_id]["title"] or ""),
                                             bigram_keys(details[r.passage_id]["text"] or "")]) for r in new])
            self.title_of = np.concatenate([self.title_of, title_of]).astype(np.int64)
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

    def _add_titles(self, titles: set[str]) -> None:
        """Register unseen titles, analysing them in one batch."""
        fresh = sorted(t for t in titles if t not in self._title_ids)
        for title, terms in zip(fresh, self._terms_batch(fresh)):
            self._title_ids[title] = len(self.titles)
            self.titles.append(title)
            self.title_terms.append(terms)
            self._title_letters.append(letters_of(title))

    def title_term_ids(self, title_id: int) -> np.ndarray:
        """Morpheme-index term ids of a title's terms (all indexed with its passages)."""
        ids = self._title_term_ids.get(title_id)
        if ids is None:
            vocab = self.lexical.vocab
            ids = np.array(sorted({vocab[t] for t in self.title_terms[title_id] if t in vocab}), dtype=np.int64)
            self._title_term_ids[title_id] = ids
        return ids

    def title_letters(self, title_id: int) -> str:
        return self._title_letters[title_id]

    def _terms_batch(self, texts: list[str]) -> list[list[str]]:
        if not texts:
            return []
        if self.analyzer is None:
            from .korean import get_analyzer
            self.analyzer = get_analyzer()
        from .korean import normalize, terms_from_morphemes
        return [terms_from_morphemes(m) for m in self.analyzer.morphemes_batch([normalize(t) for t in texts])]

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

