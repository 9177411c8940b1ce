"""In-memory search indexes over the store, append-only like the store itself.

Passages are never changed or removed (a new version adds passages, a deletion closes a
version), so both indexes only grow, and "what may be seen" is a mask computed from the
version table: current versions by default, or the versions valid at an as-of date.

Lexical: BM25 over morpheme terms, kept as scipy sparse blocks (passages x terms, raw term
frequencies); a query weights the few columns it touches with the current average length
and sums them. New passages go into new blocks (built in chunks of BUILD_CHUNK passages to
bound memory); the blocks of one refresh are merged, and older ones while sizes are close.
Character bigrams: a second BM25 channel over overlapping character pairs of title + text
with whitespace and punctuation removed, so it does not care how a query is spaced
(서울에서열린 and 서울에서 열린 give the same bigrams) nor how a compound is split.
Dense: a float32 matrix of unit vectors; exact inner-product search with numpy.

Everything can be rebuilt from what the store keeps: each passage's `terms` string and
vector (`passages_after`) and its title and text (`passage_details`). Since that takes
~15 s per 40k passages, large indexes are also saved next to the store (`IndexCache`,
`<db>.index/`) and loaded by later processes, which then only index newer passages.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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
BUILD_CHUNK = 5000  # passages indexed per step of a (re)build: bounds its peak memory
# Save the index (IndexCache) once this many passages were added since the last save, and
# at least this share of what was saved: small stores never pay for saving, large ones
# re-save rarely.
SAVE_MIN_NEW = 2000
SAVE_SHARE = 0.1
FORMAT_VERSION = 1

log = logging.getLogger(__name__)


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


class IntVocab:
    """Integer keys (character bigrams) -> term ids, as a sorted key array.

    No per-key Python objects: loading a saved index is a file read, not a dict build.
    """

    def __init__(self, keys: np.ndarray | None = None, ids: np.ndarray | None = None) -> None:
        self.keys = np.zeros(0, dtype=np.int64) if keys is None else keys  # sorted
        self.ids = np.zeros(0, dtype=np.int64) if ids is None else ids  # id of each sorted key
        self._n = len(self.keys)

    def __len__(self) -> int:
        return self._n

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Ids of keys, -1 for unknown ones."""
        keys = np.asarray(keys, dtype=np.int64)
        if not self._n:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), self._n - 1)
        return np.where(self.keys[pos] == keys, self.ids[pos], -1)

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Ids of keys, giving unseen keys new ids (in key order)."""
        uniq, inverse = np.unique(keys, return_inverse=True)
        ids = self.lookup(uniq)
        new = ids < 0
        if new.any():
            fresh = uniq[new]
            ids[new] = np.arange(self._n, self._n + len(fresh), dtype=np.int64)
            at = np.searchsorted(self.keys, fresh)
            self.keys = np.insert(self.keys, at, fresh)
            self.ids = np.insert(self.ids, at, ids[new])
            self._n += len(fresh)
        return ids[inverse.reshape(-1)]


class _Ragged:
    """Per-passage int32 sequences stored as a few flat arrays plus offsets."""

    def __init__(self) -> None:
        self._flats: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []  # len(part) + 1 each
        self._starts: list[int] = []  # first passage of each part
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append_flat(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        self._flats.append(flat)
        self._offsets.append(offsets)
        self._starts.append(self._size)
        self._size += len(offsets) - 1

    def __getitem__(self, pos: int) -> np.ndarray:
        if pos < 0:
            pos += self._size
        if not 0 <= pos < self._size:
            raise IndexError(pos)
        part = bisect.bisect_right(self._starts, pos) - 1
        off, i = self._offsets[part], pos - self._starts[part]
        return self._flats[part][off[i]:off[i + 1]]

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """All sequences as one flat array and offsets (for saving)."""
        if len(self._flats) == 1:
            return self._flats[0], self._offsets[0]
        flats, offsets, base = [], [np.zeros(1, dtype=np.int64)], 0
        for f, o in zip(self._flats, self._offsets):
            flats.append(f)
            offsets.append(np.asarray(o[1:], dtype=np.int64) + base)
            base += int(o[-1])
        return (np.concatenate(flats) if flats else np.zeros(0, dtype=np.int32)), np.concatenate(offsets)


@dataclass
class _Block:
    matrix: sp.csc_matrix  # passages x terms, raw term frequencies (float32)
    start: int  # position of its first passage


def _stack_rows(mats: list[sp.csc_matrix], width: int) -> sp.csc_matrix:
    """Row-stack CSC matrices (narrower ones padded with empty columns) without a COO detour.

    Consumes `mats` (emptied as it goes) so that peak memory is the result plus one block.
    """
    counts = np.zeros(width, dtype=np.int64)
    rows = 0
    for m in mats:
        counts[:m.shape[1]] += np.diff(m.indptr)
        rows += m.shape[0]
    indptr = np.zeros(width + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=np.int32)
    fill = indptr[:-1].copy()
    row0 = 0
    while mats:
        m = mats.pop(0)
        w = m.shape[1]
        per_col = np.diff(m.indptr).astype(np.int64)
        cols = np.repeat(np.arange(w, dtype=np.int64), per_col)
        dest = fill[cols] + (np.arange(m.nnz, dtype=np.int64) - np.asarray(m.indptr, dtype=np.int64)[cols])
        del cols
        data[dest] = m.data
        indices[dest] = m.indices + row0
        del dest
        fill[:w] += per_col
        row0 += m.shape[0]
    out = sp.csc_matrix((data, indices, indptr), shape=(rows, width), copy=False)
    out.has_sorted_indices = True
    return out


class LexicalIndex:
    """BM25 over string terms (morphemes) or integer keys (character bigrams).

    Blocks keep raw term frequencies; the BM25 weight of the few columns a query touches is
    computed at query time with the current average length. So an index built in one go,
    in chunks, or loaded from a saved copy and extended scores exactly the same.
    """

    def __init__(self, k1: float = K1, b: float = B, keep_sequences: bool = False,
                 integer_keys: bool | None = None) -> None:
        self.k1, self.b = k1, b
        self.keep_sequences = keep_sequences
        self.sequences = _Ragged()  # term ids in order, per passage (for proximity)
        self.integer_keys = integer_keys  # decided by the first add when None
        self.vocab: dict[str, int] | IntVocab = IntVocab() if integer_keys else {}
        self.df = np.zeros(0, dtype=np.int64)
        self.blocks: list[_Block] = []
        self.size = 0
        self._total_len = 0
        self._lengths: list[np.ndarray] = []  # float32 passage lengths, in parts
        self._norm: np.ndarray | None = None  # k1 * (1 - b + b * len / avg_len), per passage

    def add(self, term_lists: list, compact: bool = True) -> None:
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
            self.sequences.append_flat(ids.astype(np.int32), np.concatenate([[0], np.cumsum(lengths)]))
        width = max(len(self.vocab), 1)
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        # Column-major keys: unique() sorts them into CSC order directly.
        pairs, tf = np.unique(ids * n + rows, return_counts=True)
        del rows, ids
        cols_a = pairs // n
        rows_a = (pairs - cols_a * n).astype(np.int32)
        del pairs
        indptr = np.zeros(width + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols_a, minlength=width), out=indptr[1:])
        matrix = sp.csc_matrix((tf.astype(np.float32), rows_a, indptr), shape=(n, width), copy=False)
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])
        self.df += np.diff(indptr)[:len(self.df)]
        self.blocks.append(_Block(matrix, self.size))
        self._lengths.append(lengths.astype(np.float32))
        self._total_len += int(lengths.sum())
        self.size += n
        self._norm = None
        if compact:
            self.compact()

    def _term_ids(self, term_lists: list) -> np.ndarray:
        """Vocabulary ids of all terms of a batch, in order, growing the vocabulary."""
        if self.integer_keys is None:
            self.integer_keys = isinstance(term_lists[0], np.ndarray)
            if self.integer_keys:
                self.vocab = IntVocab()
        if self.integer_keys:
            return self.vocab.add(np.concatenate([np.asarray(t, dtype=np.int64) for t in term_lists]))
        vocab = self.vocab
        return np.array([vocab.setdefault(t, len(vocab)) for terms in term_lists for t in terms], dtype=np.int64)

    def compact(self, since: int = 0) -> None:
        """Merge blocks: those from `since` on into one, then the newest ones while the block
        before them is less than 4x larger (block sizes fall geometrically, so merging costs
        O(n log n) in all and a query looks at a few blocks)."""
        if len(self.blocks) - since > 1:
            self._merge_tail(since)
        while len(self.blocks) > 1 and (len(self.blocks) > MAX_BLOCKS or
                                        self.blocks[-2].matrix.shape[0] < 4 * self.blocks[-1].matrix.shape[0]):
            self._merge_tail(len(self.blocks) - 2)

    def _merge_tail(self, since: int) -> None:
        tail = self.blocks[since:]
        del self.blocks[since:]
        start = tail[0].start
        mats = [b.matrix for b in tail]
        del tail
        self.blocks.append(_Block(_stack_rows(mats, len(self.vocab)), start))

    @property
    def lengths(self) -> np.ndarray:
        if len(self._lengths) > 1:
            self._lengths = [np.concatenate(self._lengths)]
        return self._lengths[0] if self._lengths else np.zeros(0, dtype=np.float32)

    def _length_norm(self) -> np.ndarray:
        if self._norm is None:
            avg_len = max(self._total_len / max(self.size, 1), 1.0)
            self._norm = self.k1 * (1 - self.b + self.b * self.lengths / avg_len)
        return self._norm

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        df = self.df[term_ids].astype(np.float64)
        return np.log(1 + (self.size - df + 0.5) / (df + 0.5)).astype(np.float32)

    def query_ids(self, terms) -> tuple[np.ndarray, np.ndarray]:
        """Distinct known term ids of a query (in order of first occurrence) and how often
        each occurs in it. Terms are strings, or integer keys for an integer-key index."""
        if self.integer_keys:
            ids = self.vocab.lookup(np.asarray(terms, dtype=np.int64).reshape(-1))
            ids = ids[ids >= 0]
            uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
            order = np.argsort(first, kind="stable")
            return uniq[order].astype(np.int64), counts[order].astype(np.float32)
        counts: dict[int, int] = {}
        for t in terms:
            tid = self.vocab.get(t)
            if tid is not None:
                counts[tid] = counts.get(tid, 0) + 1
        return (np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
                np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))

    def columns(self, ids: np.ndarray) -> sp.csr_matrix:
        """passages x len(ids) BM25 term weights (without idf) of the given term ids."""
        norm = self._length_norm()
        k1 = self.k1
        parts = []
        for block in self.blocks:
            n, width = block.matrix.shape
            if len(ids) and ids.max() < width:
                sub = block.matrix[:, ids]
            else:
                keep = ids < width
                sub = block.matrix[:, ids[keep]].tocoo()
                sub = sp.csc_matrix((sub.data, (sub.row, np.flatnonzero(keep)[sub.col])),
                                    shape=(n, len(ids)))
            tf = sub.data
            sub.data = tf * (k1 + 1) / (tf + norm[block.start + sub.indices])
            parts.append(sub)
        if not parts:
            return sp.csr_matrix((self.size, len(ids)), dtype=np.float32)
        return sp.vstack(parts, format="csr")

    def scores(self, terms) -> np.ndarray:
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

    # --- saving and loading (see PassageIndex.save) ------------------------------------

    def save_to(self, folder: Path, prefix: str, files: dict) -> dict:
        """Write arrays as .npy files (memory-mappable); return what the manifest records."""
        def put(name: str, array: np.ndarray) -> None:
            files[f"{prefix}.{name}.npy"] = np.ascontiguousarray(array)

        put("df", self.df)
        put("lengths", self.lengths)
        for i, block in enumerate(self.blocks):
            m = block.matrix
            put(f"b{i}.data", m.data.astype(np.float32, copy=False))
            put(f"b{i}.indices", m.indices.astype(np.int32, copy=False))
            put(f"b{i}.indptr", m.indptr.astype(np.int64, copy=False))
        if self.keep_sequences:
            flat, offsets = self.sequences.flat()
            put("seq.flat", flat.astype(np.int32, copy=False))
            put("seq.offsets", offsets.astype(np.int64, copy=False))
        if self.integer_keys:
            put("vocab.keys", self.vocab.keys)
            put("vocab.ids", self.vocab.ids)
        else:
            files[f"{prefix}.vocab.json"] = json.dumps(list(self.vocab), ensure_ascii=False)
        return {"k1": self.k1, "b": self.b, "size": self.size, "total_len": self._total_len,
                "integer_keys": bool(self.integer_keys), "vocab_size": len(self.vocab),
                "keep_sequences": self.keep_sequences,
                "blocks": [[b.start, *b.matrix.shape] for b in self.blocks]}

    @classmethod
    def load_from(cls, folder: Path, prefix: str, meta: dict) -> "LexicalIndex":
        """The inverse of save_to; raises on any inconsistency."""
        def get(name: str, mmap: bool = True) -> np.ndarray:
            # Plain ndarray views of the maps: np.memmap's subclass hooks cost per slice.
            return np.load(folder / f"{prefix}.{name}.npy", mmap_mode="r" if mmap else None,
                           allow_pickle=False).view(np.ndarray)

        index = cls(meta["k1"], meta["b"], keep_sequences=meta["keep_sequences"],
                    integer_keys=meta["integer_keys"])
        size, nvocab = int(meta["size"]), int(meta["vocab_size"])
        if index.integer_keys:
            index.vocab = IntVocab(np.array(get("vocab.keys")), np.array(get("vocab.ids")))
        else:
            terms = json.loads((folder / f"{prefix}.vocab.json").read_text(encoding="utf-8"))
            index.vocab = dict(zip(terms, range(len(terms))))
        if len(index.vocab) != nvocab:
            raise ValueError("vocabulary size mismatch")
        index.df = np.array(get("df"))
        lengths = np.array(get("lengths"))
        if len(index.df) != nvocab or len(lengths) != size:
            raise ValueError("array size mismatch")
        index._lengths = [lengths]
        index.size, index._total_len = size, int(meta["total_len"])
        expect = 0
        for i, (start, rows, width) in enumerate(meta["blocks"]):
            data, indices, indptr = get(f"b{i}.data"), get(f"b{i}.indices"), get(f"b{i}.indptr")
            if (start != expect or width > nvocab or len(indptr) != width + 1 or len(data) != len(indices)
                    or int(indptr[-1]) != len(data) or data.dtype != np.float32 or indices.dtype != np.int32):
                raise ValueError(f"block {i} is inconsistent")
            matrix = sp.csc_matrix((data, indices, indptr), shape=(rows, width), copy=False)
            matrix.has_sorted_indices = True
            index.blocks.append(_Block(matrix, start))
            expect += rows
        if expect != size:
            raise ValueError("blocks do not cover the index")
        if index.keep_sequences:
            flat, offsets = get("seq.flat"), np.array(get("seq.offsets"))
            if len(offsets) != size + 1 or int(offsets[-1]) != len(flat):
                raise ValueError("sequences are inconsistent")
            index.sequences.append_flat(flat, offsets)
        return index


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
    """Both indexes plus the passage -> version map, kept in step with a store.

    With `cache` (default: on for stores with a file path), the index is saved next to the
    store (`<db>.index/`, see `IndexCache`) once enough passages were added since the last
    save, and a later process loads it and only indexes the passages written after it.
    """

    def __init__(self, store: Store, dim: int | None, analyzer=None, cache: bool | None = None) -> None:
        self.store = store
        self.analyzer = analyzer
        self.dim = dim
        self.lexical = LexicalIndex(MORPH_K1, MORPH_B, keep_sequences=True, integer_keys=False)
        self.bigram = LexicalIndex(BIGRAM_K1, BIGRAM_B, integer_keys=True)
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
        from .index_cache import IndexCache

        self.cache = IndexCache.for_store(store) if cache is not False else None
        self.saved_size = 0  # passages covered by the saved copy this process loaded or wrote
        self.loaded_from_cache = False
        if self.cache is not None:
            self.loaded_from_cache = self.cache.load_into(self)
        self.refresh()

    @property
    def analyzer_name(self) -> str:
        return getattr(self.analyzer, "name", None) or "kiwi"

    def refresh(self) -> bool:
        """Pick up passages and version changes written since the last call (by any process)."""
        generation = self.store.generation()
        if generation == self._generation:
            return False
        last = int(self.passage_ids[-1]) if len(self.passage_ids) else 0
        blocks_before = (len(self.lexical.blocks), len(self.bigram.blocks))
        added = 0
        batch: list[PassageRecord] = []
        for record in self.store.passages_after(last):
            batch.append(record)
            if len(batch) >= BUILD_CHUNK:
                self._add(batch)
                added += len(batch)
                batch = []
        if batch:
            self._add(batch)
            added += len(batch)
        if added:
            self.lexical.compact(blocks_before[0])
            self.bigram.compact(blocks_before[1])
        self.versions = self.store.versions_table()
        self._passage_version_row = np.searchsorted(self.versions.version_keys, self.version_keys)
        self._generation = generation
        if added and self.cache is not None and \
                self.size - self.saved_size >= max(SAVE_MIN_NEW, SAVE_SHARE * self.saved_size):
            self.save()
        return True

    def _add(self, new: list[PassageRecord]) -> None:
        """Index one chunk of new passages (chunks bound the memory of a large build)."""
        details: dict[int, dict] = {}
        for start in range(0, len(new), DETAIL_BATCH):
            details.update(self.store.passage_details([r.passage_id for r in new[start:start + DETAIL_BATCH]]))
        self._add_titles({d["title"] or "" for d in details.values()})
        title_of = [self._title_ids[details[r.passage_id]["title"] or ""] for r in new]
        # The title's terms go with every passage: chunks of a long article often never
        # name the entity the article is about.
        self.lexical.add([self.title_terms[t] + r.terms.split() for t, r in zip(title_of, new)], compact=False)
        bigrams = [np.concatenate([bigram_keys(details[r.passage_id]["title"] or ""),
                                   bigram_keys(details[r.passage_id]["text"] or "")]) for r in new]
        del details
        self.bigram.add(bigrams, compact=False)
        del bigrams
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

    def save(self) -> bool:
        """Write the index next to the store (atomically); False when it could not be."""
        if self.cache is None or not self.size:
            return False
        ok = self.cache.save(self)
        if ok:
            self.saved_size = self.size
        return ok

    def _add_titles(self, titles: set[str]) -> None:
        """Register unseen titles, analysing them in one batch."""
        fresh = sorted(t for t in titles if t not in self._title_ids)
        for title, terms in zip(fresh, self._terms_batch(fresh)):
            self._register_title(title, terms)

    def _register_title(self, title: str, terms: list[str]) -> None:
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

