"""Learned reranking of the top fused candidates.

The first stage (BM25 over morphemes + BM25 over character bigrams, normalised score sum)
finds the right document within its top 20 for ~99.8% of KorQuAD questions but puts it
first for ~93%. The second stage looks at each of the top ~40 candidates more closely:
how much of the query (idf-weighted) it covers, how tightly the matched terms sit together,
whether the query names the document's title, the dense cosine, and the first-stage scores
and ranks. A linear model over these features, trained with a listwise softmax loss on
non-held-out KorQuAD questions (`scripts/train_rerank.py`), orders them. Runtime is numpy
only; the weights are a small JSON file in `jisik/models/`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

MODEL_PATH = Path(__file__).parent / "models" / "rerank.json"
# Trained without dense features (Retriever without an encoder, e.g. stores built with
# --encoder none): the dense columns are constants there, which the full model never saw.
LEXICAL_MODEL_PATH = Path(__file__).parent / "models" / "rerank-lexical.json"


def default_model_path(dense: bool) -> Path:
    """The reranker variant for a retriever with (dense) or without an encoder."""
    return MODEL_PATH if dense else LEXICAL_MODEL_PATH

FEATURES = (
    "morph_norm",  # morpheme BM25 / best visible morpheme BM25
    "bigram_norm",  # bigram BM25 / best visible bigram BM25
    "fused_norm",  # first-stage fused score / best fused
    "morph_self",  # morpheme BM25 / the score of a passage matching every query term once
    "fused_rank",  # log(1 + rank) among candidates, by fused score
    "morph_rank",
    "bigram_rank",
    "dense_rank",
    "dense_cos",  # cosine of query and passage vectors (0 without an encoder)
    "dense_gap",  # cosine minus the best candidate cosine
    "morph_cover",  # idf-weighted share of query morphemes the passage contains
    "bigram_cover",  # idf-weighted share of query bigrams the passage contains
    "all_terms",  # 1 when every known query morpheme occurs
    "proximity",  # matched distinct terms / shortest window covering them
    "title_in_query",  # idf-weighted share of the title's terms that occur in the query
    "title_substring",  # the title (letters and digits) occurs in the query (same)
    "log_length",  # log(1 + passage terms)
)


@dataclass
class QueryChannels:
    """What the first stage computed for one query, reused for the features."""

    morph_ids: np.ndarray
    morph_idf: np.ndarray
    morph_counts: np.ndarray
    morph_scores: np.ndarray
    morph_cols: sp.csr_matrix | None
    bigram_idf: np.ndarray
    bigram_scores: np.ndarray
    bigram_cols: sp.csr_matrix | None
    dense_scores: np.ndarray | None
    fused: np.ndarray
    query_letters: str  # letters and digits of the query, lower-cased
    query_terms: set[str]


def _rank(values: np.ndarray) -> np.ndarray:
    """0 for the largest value; ties share the better rank."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values))
    return ranks


def shortest_window(sequence: np.ndarray, wanted: np.ndarray) -> tuple[int, int]:
    """(distinct wanted ids present, length of the shortest span containing all of them).

    `wanted` is a boolean lookup over term ids (True for query terms).
    """
    hits = np.flatnonzero(wanted[sequence]) if len(sequence) else np.zeros(0, dtype=np.int64)
    if not len(hits):
        return 0, 0
    ids = sequence[hits].tolist()
    need = len(set(ids))
    if need == 1:
        return 1, 1
    counts: dict[int, int] = {}
    have, best, lo = 0, len(sequence) + 1, 0
    pos = hits.tolist()
    for hi, tid in enumerate(ids):
        counts[tid] = counts.get(tid, 0) + 1
        if counts[tid] == 1:
            have += 1
        while have == need:
            best = min(best, pos[hi] - pos[lo] + 1)
            left = ids[lo]
            counts[left] -= 1
            if counts[left] == 0:
                have -= 1
            lo += 1
    return need, best


def candidate_features(index, ch: QueryChannels, positions: np.ndarray) -> np.ndarray:
    """Feature matrix (candidates x FEATURES) for passage positions, best fused first."""
    n = len(positions)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return out
    f = {name: i for i, name in enumerate(FEATURES)}

    def best(x: np.ndarray) -> float:
        m = float(x.max()) if len(x) else 0.0
        return m if m > 0 else 1.0

    ms, bs, fs = ch.morph_scores[positions], ch.bigram_scores[positions], ch.fused[positions]
    out[:, f["morph_norm"]] = ms / best(ms)
    out[:, f["bigram_norm"]] = bs / best(bs)
    out[:, f["fused_norm"]] = fs / best(fs)
    self_score = float((ch.morph_idf * ch.morph_counts).sum()) * (index.lexical.k1 + 1) if len(ch.morph_idf) else 0.0
    out[:, f["morph_self"]] = ms / self_score if self_score > 0 else 0.0
    out[:, f["fused_rank"]] = np.log1p(_rank(fs))
    out[:, f["morph_rank"]] = np.log1p(_rank(ms))
    out[:, f["bigram_rank"]] = np.log1p(_rank(bs))
    if ch.dense_scores is not None:
        ds = ch.dense_scores[positions].astype(np.float64)
        out[:, f["dense_rank"]] = np.log1p(_rank(ds))
        out[:, f["dense_cos"]] = ds
        out[:, f["dense_gap"]] = ds - ds.max()
    else:
        out[:, f["dense_rank"]] = np.log1p(np.arange(n))
    if ch.morph_cols is not None and len(ch.morph_idf):
        present = (ch.morph_cols[positions] > 0).toarray()
        total = float(ch.morph_idf.sum())
        out[:, f["morph_cover"]] = present @ ch.morph_idf / total if total > 0 else 0.0
        out[:, f["all_terms"]] = present.all(axis=1)
    if ch.bigram_cols is not None and len(ch.bigram_idf):
        present = (ch.bigram_cols[positions] > 0).toarray()
        total = float(ch.bigram_idf.sum())
        out[:, f["bigram_cover"]] = present @ ch.bigram_idf / total if total > 0 else 0.0
    lex = index.lexical
    wanted = np.zeros(len(lex.vocab), dtype=bool)
    wanted[ch.morph_ids] = True
    prox, title_hit, title_sub, length = (np.zeros(n) for _ in range(4))
    for row, pos in enumerate(positions.tolist()):
        title_id = int(index.title_of[pos])
        title_ids = index.title_term_ids(title_id)
        seq = lex.sequences[pos][len(index.title_terms[title_id]):]
        length[row] = len(seq)
        if len(ch.morph_ids):
            matched, window = shortest_window(seq, wanted)
            prox[row] = matched / window if window else 0.0
        if len(title_ids):
            idf = lex.idf(title_ids)
            title_hit[row] = float(wanted[title_ids] @ idf / max(float(idf.sum()), 1e-9))
        letters = index.title_letters(title_id)
        title_sub[row] = float(bool(letters) and letters in ch.query_letters)
    out[:, f["proximity"]] = prox
    out[:, f["title_in_query"]] = title_hit
    out[:, f["title_substring"]] = title_sub
    out[:, f["log_length"]] = np.log1p(length)
    return out


class Reranker:
    """Linear scorer over standardised features: score = ((x - mean) / scale) @ w."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray,
                 features: tuple[str, ...] = FEATURES, meta: dict | None = None) -> None:
        if tuple(features) != FEATURES:
            raise ValueError("reranker weights were trained on other features: retrain with "
                             "scripts/train_rerank.py")
        self.mean, self.scale, self.weights = mean, scale, weights
        self.meta = meta or {}

    def score(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "meta": self.meta}

    def save(self, path: str | Path = MODEL_PATH) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path = MODEL_PATH) -> "Reranker | None":
        path = Path(path)
        if not path.exists():
            return None
        d = json.loads(path.read_text(encoding="utf-8"))
        try:
            return cls(np.array(d["mean"]), np.array(d["scale"]), np.array(d["weights"]),
                       tuple(d["features"]), d.get("meta"))
        except ValueError as exc:  # stale weights: search still works, without stage 2
            warnings.warn(f"{path}: {exc}", stacklevel=2)
            return None


def fit_listwise(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = 1e-3,
                 seed: int = 0) -> Reranker:
    """Softmax cross-entropy over each query's candidates (labels: 1 = the right passage).

    Label one passage per query (the gold document's best first-stage passage): labelling
    every passage of the gold document taught the model to favour weak passages of long
    documents and cost ~2 points of recall@1.

    Queries without a gold candidate carry no signal and are dropped. L-BFGS from zero
    weights: the loss is convex, so the seed only matters for tie-breaking in the data order.
    """
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    groups = [(x, y) for x, y in groups if y.any() and len(y) > 1]
    order = rng.permutation(len(groups))
    groups = [groups[i] for i in order]
    allx = np.concatenate([x for x, _ in groups])
    mean = allx.mean(axis=0)
    scale = allx.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = [(x - mean) / scale for x, _ in groups]
    ys = [y.astype(np.float64) / y.sum() for _, y in groups]
    sizes = np.array([len(x) for x in xs])
    big_x = np.concatenate(xs)
    big_y = np.concatenate(ys)
    seg = np.repeat(np.arange(len(xs)), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = big_x @ w
        smax = np.maximum.reduceat(s, starts)
        e = np.exp(s - smax[seg])
        z = np.add.reduceat(e, starts)
        p = e / z[seg]
        value = float(-(big_y * (s - smax[seg] - np.log(z[seg]))).sum()) / len(xs)
        grad = big_x.T @ (p - big_y) / len(xs)
        return value + l2 * float(w @ w), grad + 2 * l2 * w

    res = minimize(loss, np.zeros(big_x.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500})
    return Reranker(mean, scale, res.x, meta={"train_queries": len(xs), "loss": round(float(res.fun), 5),
                                              "l2": l2, "seed": seed})
