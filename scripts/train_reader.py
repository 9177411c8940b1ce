#!/usr/bin/env python
"""Train and evaluate the extractive reader (jisik/read.py).

    python scripts/train_reader.py                 # train, write jisik/models/reader.*, evaluate
    python scripts/train_reader.py --eval-only     # evaluate the shipped model
    python scripts/train_reader.py --data DIR      # another copy of the shared data

Data: DIR/korquad/{passages,questions}.jsonl and DIR/nomiracl_ko/{passages,questions}.jsonl
(DIR defaults to ../shared/data relative to the repository root).

Retrieval is simulated as the engine would give it: a BM25 (k1=1.2, b=0.75) over
`jisik.korean.terms` of all KorQuAD + NoMIRACL passages, top 5 as hits (each passage is a
whole document, so start=0, end=len(text)). Training questions are the KorQuAD questions
outside `jisik.splits.is_heldout`; their hits come from an index with the held-out articles
removed, so training never sees a held-out paragraph. Evaluation: held-out KorQuAD
questions (EM/F1, gold-in-evidence-sentence, latency) and NoMIRACL-ko (hallucination and
error rate). The abstention model is fit on one half of NoMIRACL (sha1(query id) even)
and reported on the other half and on all of it.

Kiwi analyses of the passages are cached in --cache (default /tmp/jisik_reader_cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jisik.documents import Hit  # noqa: E402
from jisik.korean import get_analyzer, normalize, terms_from_morphemes  # noqa: E402
from jisik.read import (  # noqa: E402
    MODEL_DIR, N_ABSTAIN_FEATURES, N_NEURAL_ABSTAIN_FEATURES, SPAN_TREE_FILE, TOP_SENTENCES, Reader, _Linear, exact_match, f1, normalize_answer,
)
from jisik.reader_features import (  # noqa: E402
    CAT_FEATURES, DIM, LIN_COLS, Idf, analyze_question, build_passage, candidate_spans, lin_columns,
    sentence_features, span_features, span_tree_matrix,
)
from jisik.splits import article_title, is_heldout, is_heldout_passage  # noqa: E402


def is_val_title(title: str) -> bool:
    """Validation articles for model selection: 1 in 5 of the TRAINING articles (salted hash)."""
    return int(hashlib.sha1(("val:" + title).encode("utf-8")).hexdigest(), 16) % 5 == 0

SEED = 13
# L2 strength (on the summed, then group-averaged loss), picked from a grid 3e-4..30
# (EM of the forced best span: 37.4 at 3e-4, 45.2 at 3e-2, 49.2 at 1, 49.7 at 3, 49.9 at 10, 48.0 at 30).
SENT_L2 = 1e-3
# Span-model L2 and tree parameters are picked with --select on a validation split of the
# TRAINING articles (is_val_title); the held-out articles are never used for any choice.
SPAN_L2 = 3.0
SPAN_L2_GRID = (0.3, 1.0, 3.0, 10.0)
TREE_BASE = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [1], "learning_rate": 0.05,
             "min_data_in_leaf": 40, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1,
             "lambda_l2": 1.0, "cat_smooth": 10, "max_cat_to_onehot": 8, "num_threads": 2,
             "seed": SEED, "verbose": -1, "lambdarank_truncation_level": 20}
TREE_GRID = ({"num_leaves": 15}, {"num_leaves": 31}, {"num_leaves": 63})
TREE_MAX_ROUNDS = 600
# chosen by --select (val EM/F1 of the top span, 1,108 validation questions):
# linear L2 0.3/1/3/10 -> EM 50.8/50.7/51.2/50.0; trees 15/31/63 leaves best at
# 300/300/200 rounds -> EM 55.8/55.5/55.6, F1 71.2/70.7/71.1
TREE_PARAMS = {**TREE_BASE, "num_leaves": 15}
TREE_ROUNDS = 300
# Abstention fit: NoMIRACL calibration queries count this much more than synthetic KorQuAD ones.
NOMIRACL_WEIGHT = 5.0


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# --------------------------------------------------------------------------- analysis cache


def analyze_all(passages: list[dict], questions: list[str], cache: Path):
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(
        ("\n".join(p["id"] + p["text"] for p in passages) + "\n".join(questions)).encode()
    ).hexdigest()[:12]
    path = cache / f"analysis-{key}.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    an = get_analyzer()
    t0 = time.time()
    pinfo, pterms = {}, {}
    for k, p in enumerate(passages):
        text = normalize(p["text"])
        sents = an.sentences(text)
        morphs = an.morphemes_batch([s.text for s in sents])
        info = build_passage(text, [(s.start, s.end) for s in sents], morphs)
        pinfo[p["id"]] = info
        pterms[p["id"]] = [t for s in info.sentences for t in terms_from_morphemes(s.morphs)]
        if k % 500 == 0:
            log(f"  analysed {k}/{len(passages)} passages ({time.time() - t0:.0f}s)")
    qmorphs = {}
    for k, q in enumerate(questions):
        qmorphs[q] = an.morphemes(q)
    out = (pinfo, pterms, qmorphs)
    with open(path, "wb") as fh:
        pickle.dump(out, fh)
    log(f"  analysis done in {time.time() - t0:.0f}s -> {path}")
    return out


# --------------------------------------------------------------------------- the KorQuAD + NoMIRACL setting


@dataclass
class Setting:
    """KorQuAD + NoMIRACL passages and questions, analysed, with a BM25 over all passages."""

    kq_q: list[dict]
    nm_q: list[dict]
    by_id: dict[str, dict]
    pinfo: dict
    qmorphs: dict
    ids: list[str]
    bm25: "BM25"


def load_setting(data: Path, cache: Path) -> Setting:
    if not (data / "korquad" / "questions.jsonl").exists():
        sys.exit(f"data not found under {data} (use --data DIR)")
    kq_p = read_jsonl(data / "korquad" / "passages.jsonl")
    kq_q = read_jsonl(data / "korquad" / "questions.jsonl")
    nm_p = read_jsonl(data / "nomiracl_ko" / "passages.jsonl")
    nm_q = read_jsonl(data / "nomiracl_ko" / "questions.jsonl")
    passages = kq_p + nm_p
    log(f"{len(passages)} passages, {len(kq_q)} KorQuAD + {len(nm_q)} NoMIRACL questions")
    qtexts = [normalize(q["question"]) for q in kq_q + nm_q]
    pinfo, pterms, qmorphs = analyze_all(passages, qtexts, cache)
    ids = [p["id"] for p in passages]
    return Setting(kq_q, nm_q, {p["id"]: p for p in passages}, pinfo, qmorphs, ids,
                   BM25(ids, [pterms[i] for i in ids]))


# --------------------------------------------------------------------------- BM25


class BM25:
    def __init__(self, ids: list[str], docs: list[list[str]], k1: float = 1.2, b: float = 0.75):
        self.ids = ids
        vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, d in enumerate(docs):
            for t, c in Counter(d).items():
                rows.append(i)
                cols.append(vocab.setdefault(t, len(vocab)))
                vals.append(c)
        tf = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float64)
        dl = np.array([len(d) for d in docs], dtype=np.float64)
        df = np.bincount(cols, minlength=len(vocab))
        idf = np.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        tf = tf.tocoo()
        denom = tf.data + k1 * (1 - b + b * dl[tf.row] / dl.mean())
        w = tf.data * (k1 + 1) / denom * idf[tf.col]
        self.m = sp.csc_matrix((w, (tf.row, tf.col)), shape=tf.shape)
        self.vocab = vocab

    def scores(self, q_terms: list[str]) -> np.ndarray:
        cols = [self.vocab[t] for t in q_terms if t in self.vocab]
        if not cols:
            return np.zeros(len(self.ids))
        return np.asarray(self.m[:, cols].sum(axis=1)).ravel()

    def top(self, q_terms: list[str], k: int, mask: np.ndarray | None = None):
        s = self.scores(q_terms)
        if mask is not None:
            s = np.where(mask, s, -1.0)
        order = np.argsort(-s, kind="stable")[:k]
        return [(self.ids[i], float(s[i])) for i in order if s[i] > 0]


# --------------------------------------------------------------------------- listwise training


def to_csr(rows: list[dict[int, float]]) -> sp.csr_matrix:
    indptr = [0]
    idx, val = [], []
    for r in rows:
        idx.extend(r.keys())
        val.extend(r.values())
        indptr.append(len(idx))
    return sp.csr_matrix((np.array(val, np.float64), np.array(idx, np.int64), np.array(indptr)),
                         shape=(len(rows), DIM))


def train_listwise(X: sp.csr_matrix, y: np.ndarray, groups: np.ndarray, l2: float, iters: int = 300):
    """Softmax over each group's rows; maximise the probability mass on its positive rows."""
    used = np.unique(X.indices)
    Xu = X[:, used].tocsr()
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    n_groups = len(starts)
    gid = np.repeat(np.arange(n_groups), np.diff(np.r_[starts, len(groups)]))
    pos = y > 0

    def fg(w):
        s = Xu @ w
        m = np.maximum.reduceat(s, starts)
        e = np.exp(s - m[gid])
        z = np.add.reduceat(e, starts)
        ep = np.where(pos, e, 0.0)
        zp = np.add.reduceat(ep, starts)
        loss = np.sum(np.log(z) - np.log(zp)) + l2 * w @ w
        g_rows = e / z[gid] - ep / zp[gid]
        grad = Xu.T @ g_rows + 2 * l2 * w
        return loss / n_groups, grad / n_groups

    w0 = np.zeros(Xu.shape[1])
    res = scipy.optimize.minimize(fg, w0, jac=True, method="L-BFGS-B", options={"maxiter": iters})
    log(f"    listwise: {n_groups} groups, {X.shape[0]} rows, {len(used)} features, loss {res.fun:.4f}")
    keep = np.abs(res.x) > 1e-6
    return used[keep].astype(np.int32), res.x[keep].astype(np.float32)


# --------------------------------------------------------------------------- data for one question


def make_hits(ranked: list[tuple[str, float]], by_id: dict[str, dict], pinfo) -> tuple[list[Hit], list]:
    hits, infos = [], []
    for pid, score in ranked:
        text = pinfo[pid].text
        hits.append(Hit(id=pid, title=by_id[pid].get("title", ""), score=score, text=text,
                        start=0, end=len(text)))
        infos.append(pinfo[pid])
    return hits, infos


def gold_sentence(q: dict, hits: list[Hit], infos) -> tuple[int, int] | None:
    for pi, h in enumerate(hits):
        if h.id != q["gold_id"]:
            continue
        a0 = q["answer_starts"][0]
        for si, s in enumerate(infos[pi].sentences):
            if s.start <= a0 < s.end:
                return pi, si
    return None


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--abstain-only", action="store_true",
                    help="keep the trained sentence/span models, refit only the abstention model")
    ap.add_argument("--select", action="store_true",
                    help="pick span L2 and tree parameters on the validation split (slower)")
    ap.add_argument("--kind", choices=("neural", "features"), default="features",
                    help="which reader --abstain-only / --eval-only calibrate or evaluate")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--latency-sample", type=int, default=200)
    args = ap.parse_args()
    np.random.seed(SEED)
    st = load_setting(Path(args.data), Path(args.cache))
    kq_q, nm_q, by_id, pinfo, qmorphs, ids, bm25 = st.kq_q, st.nm_q, st.by_id, st.pinfo, st.qmorphs, st.ids, st.bm25
    train_mask = np.array([not is_heldout_passage(i) for i in ids])
    train_q = [q for q in kq_q if not is_heldout(q)]
    test_q = [q for q in kq_q if is_heldout(q)]
    log(f"train {len(train_q)} questions / held-out {len(test_q)} questions")

    def qinfo(text):
        text = normalize(text)
        return analyze_question(text, qmorphs[text])

    out = Path(args.out)
    if not args.eval_only and not args.abstain_only:
        # IDF table from the training passages (held-out articles excluded).
        df = Counter()
        n_docs = 0
        for i in ids:
            if is_heldout_passage(i):
                continue
            n_docs += 1
            df.update(pinfo[i].term_set)
        df_small = {t: c for t, c in df.items() if c >= 2}
        idf = Idf(df_small, n_docs)

        # ---- per-question retrieval and sentence data
        items = []
        for q in train_q:
            qi = qinfo(q["question"])
            ranked = bm25.top(qi.terms, args.top_k, train_mask)
            hits, infos = make_hits(ranked, by_id, pinfo)
            items.append((q, qi, hits, infos))
        recall = np.mean([any(h.id == q["gold_id"] for h in hits) for q, _, hits, _ in items])
        log(f"train retrieval recall@{args.top_k}: {recall:.3f}")

        def sent_rows(qi, hits, infos):
            top = max((h.score for h in hits), default=0.0)
            rel = [h.score / top if top > 0 else 0.0 for h in hits]
            return sentence_features(qi, idf, infos, list(range(len(hits))), rel)

        # 2-fold cross-fitting by article so span training sees honest sentence scores
        fold = np.array([int(hashlib.sha1(article_title(q["gold_id"]).encode()).hexdigest(), 16) % 2
                         for q, *_ in items])
        sent_data = []
        for n, (q, qi, hits, infos) in enumerate(items):
            g = gold_sentence(q, hits, infos)
            rows = sent_rows(qi, hits, infos)
            sent_data.append((g, rows))

        def fit_sent(sel):
            R, Y, G = [], [], []
            for n in sel:
                g, rows = sent_data[n]
                if g is None:
                    continue
                for pi, si, f in rows:
                    R.append(f)
                    Y.append(1.0 if (pi, si) == g else 0.0)
                    G.append(n)
            return train_listwise(to_csr(R), np.array(Y), np.array(G), l2=SENT_L2)

        log("training sentence model")
        sent_models = {k: _Linear(*fit_sent(np.flatnonzero(fold != k))) for k in (0, 1)}
        sent_idx, sent_val = fit_sent(range(len(items)))

        log("building span data")
        t0 = time.time()
        qdata = []  # per question: (n, tree rows with lin placeholder, sparse CSR, labels, f1s)
        stats = Counter()
        for n, (q, qi, hits, infos) in enumerate(items):
            sm = sent_models[int(fold[n])]
            rows = sent_data[n][1]
            if not rows:
                continue
            slog = sorted(((sm.score(f), pi, si) for pi, si, f in rows), key=lambda x: -x[0])
            golds = [a for a in q["answers"]]
            ngolds = {normalize_answer(a) for a in golds}
            cands, feats, ex, fs = [], [], [], []
            for r, (lg, pi, si) in enumerate(slog[:TOP_SENTENCES]):
                for spn in candidate_spans(infos[pi], pi, si):
                    feats.append(span_features(qi, idf, infos[pi], spn, lg, lg - slog[0][0], pi, qi.text))
                    cands.append((spn, r))
                    surf = infos[pi].text[spn.start:spn.end]
                    ex.append(1.0 if normalize_answer(surf) in ngolds else 0.0)
                    fs.append(f1(surf, golds))
            stats["questions"] += 1
            stats["candidates"] += len(cands)
            if not cands:
                continue
            stats["no_positive"] += sum(ex) == 0
            tree = np.array(span_tree_matrix(qi, idf, infos, cands, feats, [0.0] * len(cands)), np.float32)
            qdata.append((n, tree, to_csr(feats), np.array(ex), np.array(fs)))
        log(f"  span data: {dict(stats)} in {time.time() - t0:.0f}s")
        is_val = np.array([is_val_title(article_title(q["gold_id"])) for q, *_ in items])
        n_val = int(is_val.sum())
        log(f"  validation split (training articles only): {n_val} questions")

        def fit_span_linear(sel_q, l2):
            X = sp.vstack([qd[2] for qd in sel_q]).tocsr()
            y = np.concatenate([qd[3] for qd in sel_q])
            g = np.concatenate([np.full(len(qd[3]), k) for k, qd in enumerate(sel_q)])
            keep = np.isin(g, [k for k, qd in enumerate(sel_q) if qd[3].sum() > 0])
            return train_listwise(X[keep], y[keep], g[keep], l2=l2)

        def lin_scores(model, qd):
            idx, val = model
            w = np.zeros(DIM)
            w[idx] = val
            return qd[2] @ w

        def top1(scores_per_q, sel_q):
            em = fs_ = 0.0
            for sc, qd in zip(scores_per_q, sel_q):
                b = int(np.argmax(sc))
                em += qd[3][b]
                fs_ += qd[4][b]
            return 100 * em / n_val, 100 * fs_ / n_val

        tr_q = [qd for qd in qdata if not is_val[qd[0]]]
        va_q = [qd for qd in qdata if is_val[qd[0]]]
        span_l2 = SPAN_L2
        if args.select:
            log("span linear L2 on the validation split")
            best = None
            for l2 in SPAN_L2_GRID:
                m = fit_span_linear(tr_q, l2)
                em, f = top1([lin_scores(m, qd) for qd in va_q], va_q)
                log(f"    L2={l2}: val EM {em:.1f} F1 {f:.1f}")
                if best is None or em > best[0]:
                    best = (em, l2)
            span_l2 = best[1]
            log(f"  chosen SPAN_L2={span_l2}")
        log("training span linear models (2 article folds for stacking + full)")
        fold_q = {k: [qd for qd in qdata if fold[qd[0]] != k] for k in (0, 1)}
        fold_models = {k: fit_span_linear(fold_q[k], span_l2) for k in (0, 1)}
        span_idx, span_val = fit_span_linear(qdata, span_l2)
        for qd in qdata:
            lc = np.array(lin_columns(lin_scores(fold_models[int(fold[qd[0]])], qd)), np.float32)
            qd[1][:, LIN_COLS] = lc
        log("training tree span ranker (LightGBM lambdarank)")
        import lightgbm as lgb

        def label(qd):
            return np.where(qd[3] > 0, 3, np.where(qd[4] >= 0.5, 1, 0)).astype(int)

        def ds(sel_q):
            return (np.vstack([qd[1] for qd in sel_q]), np.concatenate([label(qd) for qd in sel_q]),
                    [len(qd[3]) for qd in sel_q])

        Xtr, ytr, gtr = ds(tr_q)
        Xva, yva, gva = ds(va_q)
        best_params, best_iter = dict(TREE_PARAMS), TREE_ROUNDS
        if args.select:
            best = None
            for grid in TREE_GRID:
                params = {**TREE_BASE, **grid}
                bst = lgb.train(params, lgb.Dataset(Xtr, ytr, group=gtr, categorical_feature=CAT_FEATURES),
                                num_boost_round=TREE_MAX_ROUNDS)
                for it in range(100, TREE_MAX_ROUNDS + 1, 100):
                    pred = bst.predict(Xva, num_iteration=it)
                    sc, o = [], 0
                    for g in gva:
                        sc.append(pred[o:o + g])
                        o += g
                    em, f = top1(sc, va_q)
                    log(f"    {grid} rounds={it}: val EM {em:.1f} F1 {f:.1f}")
                    if best is None or em + 0.5 * f > best[0]:
                        best = (em + 0.5 * f, params, it)
            _, best_params, best_iter = best
            log(f"  chosen {best_params} rounds={best_iter}")
        X = np.vstack([Xtr, Xva])
        y = np.concatenate([ytr, yva])
        g = gtr + gva
        bst = lgb.train(best_params, lgb.Dataset(X, y, group=g, categorical_feature=CAT_FEATURES),
                        num_boost_round=best_iter)
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / "reader.npz", sent_idx=sent_idx, sent_val=sent_val,
                            span_idx=span_idx, span_val=span_val)
        bst.save_model(str(out / SPAN_TREE_FILE))
        meta = {"idf": {"df": df_small, "n_docs": n_docs},
                "abstain": {"coef": [0.0] * N_ABSTAIN_FEATURES, "bias": 10.0, "threshold": 0.5},
                "trained_on": f"{len(train_q)} KorQuAD dev questions outside jisik.splits held-out",
                "span_ranker": {"file": SPAN_TREE_FILE, "span_l2": span_l2, "params": best_params,
                                "rounds": best_iter},
                "seed": SEED}
        (out / "reader.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    if not args.eval_only:
        meta = json.loads((out / "reader.json").read_text(encoding="utf-8"))
        key = "abstain_neural" if args.kind == "neural" else "abstain"
        n_feats = N_NEURAL_ABSTAIN_FEATURES if args.kind == "neural" else N_ABSTAIN_FEATURES
        if meta.get(key, {}).get("calibration"):
            log("the confidence calibration is dropped with the old abstention model: "
                "run scripts/calibrate_confidence.py after this")
        meta[key] = {"coef": [0.0] * n_feats, "bias": 10.0, "threshold": 0.5}
        (out / "reader.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        # ---- abstention model on NoMIRACL calibration half
        reader = Reader.load(out, kind=args.kind)
        if reader.kind != args.kind:
            sys.exit(f"no {args.kind} reader model in {out}")
        X, yv, cal = nomiracl_features(reader, nm_q, by_id, pinfo, bm25, qinfo, n_feats)
        # Synthetic unanswerables from KorQuAD training questions: the same question with
        # hits from an index that lacks its whole article (topically close, no answer).
        rng = np.random.default_rng(SEED)
        sub = rng.choice(len(train_q), size=min(1200, len(train_q)), replace=False)
        KX, KY = [], []
        for k in sub:
            q = train_q[k]
            qi = qinfo(q["question"])
            title = article_title(q["gold_id"])
            for answerable, mask in ((1, train_mask), (0, train_mask & np.array(
                    [not i.startswith(f"korquad:{title}#") for i in ids]))):
                hits, infos = make_hits(bm25.top(qi.terms, args.top_k, mask), by_id, pinfo)
                if answerable == 1 and not any(h.id == q["gold_id"] for h in hits):
                    continue
                feats = reader.score(qi, hits, infos)[2] if hits else None
                KX.append(feats if feats is not None else np.zeros(n_feats))
                KY.append(answerable)
        from sklearn.linear_model import LogisticRegression
        clf = LogisticRegression(C=1.0, max_iter=2000)
        Xfit = np.vstack([X[cal], np.array(KX)])
        yfit = np.r_[yv[cal], np.array(KY)]
        wfit = np.r_[np.full(int(cal.sum()), NOMIRACL_WEIGHT), np.ones(len(KY))]
        clf.fit(Xfit, yfit, sample_weight=wfit)
        conf = clf.predict_proba(X[cal])[:, 1]
        best_t, best_v = 0.5, 9.0
        for t in np.unique(conf):
            h = np.mean(conf[cal_neg := (yv[cal] == 0)] >= t)
            e = np.mean(conf[~cal_neg] < t)
            v = max(h, e) + 0.01 * (h + e)
            if v < best_v:
                best_t, best_v = float(t), v
        meta[key] = {"coef": clf.coef_[0].tolist(), "bias": float(clf.intercept_[0]),
                           "threshold": best_t,
                           "calibrated_on": "NoMIRACL-ko queries with sha1(id) even"}
        (out / "reader.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    reader = Reader.load(out, kind=args.kind)
    evaluate(reader, test_q, nm_q, by_id, pinfo, bm25, qinfo, args)


def nomiracl_features(reader, nm_q, by_id, pinfo, bm25, qinfo, n_feats):
    rows, ys, cal = [], [], []
    pos_of = {pid: i for i, pid in enumerate(bm25.ids)}
    for q in nm_q:
        qi = qinfo(q["question"])
        s = bm25.scores(qi.terms)
        ranked = sorted(((pid, float(s[pos_of[pid]])) for pid in q["candidate_ids"]), key=lambda x: -x[1])
        hits, infos = make_hits(ranked[:5], by_id, pinfo)
        _, spans, feats = reader.score(qi, hits, infos)
        rows.append(feats if feats is not None else np.zeros(n_feats))
        ys.append(1 if q["subset"] == "relevant" else 0)
        cal.append(int(hashlib.sha1(q["id"].encode()).hexdigest(), 16) % 2 == 0)
    return np.array(rows), np.array(ys), np.array(cal)


def evaluate(reader, test_q, nm_q, by_id, pinfo, bm25, qinfo, args):
    res = {}
    ems, f1s, ins, rec, answered = [], [], [], [], 0
    ems_all, confs = [], []
    for q in test_q:
        qi = qinfo(q["question"])
        ranked = bm25.top(qi.terms, args.top_k)
        hits, infos = make_hits(ranked, by_id, pinfo)
        rec.append(any(h.id == q["gold_id"] for h in hits))
        scored = reader.score(qi, hits, infos) if hits else ([], [], None)
        pred = reader.answer_scored(qi, hits, infos, *scored).answer if hits else None
        confs.append(reader.confidence(scored[2]) if scored[1] else 0.0)
        # EM/F1 count abstentions as wrong; "forced" = best span even when abstaining
        spans = scored[1]
        forced = None
        if spans:
            b = spans[0]
            forced = hits[b.passage].text[b.start:b.end]
            sent = infos[b.passage].sentences[b.sentence]
            stext = infos[b.passage].text[sent.start:sent.end]
            contained = any(normalize_answer(a) in normalize_answer(stext) for a in q["answers"])
            ins.append((contained, contained and hits[b.passage].id == q["gold_id"]))
        else:
            ins.append((False, False))
        answered += pred is not None
        ems.append(exact_match(pred, q["answers"]))
        f1s.append(f1(pred, q["answers"]))
        ems_all.append((exact_match(forced, q["answers"]), f1(forced, q["answers"])))
    fa = np.array(ems_all)
    res["korquad_heldout"] = {
        "questions": len(test_q), "retrieval_recall@5": round(float(np.mean(rec)), 4),
        "EM": round(100 * float(np.mean(ems)), 2), "F1": round(100 * float(np.mean(f1s)), 2),
        "answered": answered,
        "EM_no_abstain": round(100 * float(fa[:, 0].mean()), 2),
        "F1_no_abstain": round(100 * float(fa[:, 1].mean()), 2),
        "gold_in_evidence_sentence": round(100 * float(np.mean([a for a, _ in ins])), 2),
        "gold_in_evidence_sentence_of_gold_passage": round(100 * float(np.mean([b for _, b in ins])), 2),
    }
    # NoMIRACL
    X, y, cal = nomiracl_features(reader, nm_q, by_id, pinfo, bm25, qinfo, len(reader.abstain_coef))
    conf = np.array([reader.confidence(x) for x in X])
    answered_m = conf >= reader.threshold
    for name, sel in (("calibration_half", cal), ("test_half", ~cal), ("all", np.ones_like(cal))):
        neg = sel & (y == 0)
        pos = sel & (y == 1)
        res[f"nomiracl_{name}"] = {
            "queries": int(sel.sum()),
            "hallucination_rate": round(100 * float(answered_m[neg].mean()), 2),
            "error_rate": round(100 * float((~answered_m[pos]).mean()), 2),
        }
    # what other thresholds would trade: KorQuAD answers kept vs NoMIRACL hallucinations
    confs = np.array(confs)
    contained = np.array([a for a, _ in ins])
    res["threshold_tradeoff"] = []
    for t in sorted({reader.threshold, *np.round(np.quantile(conf, [0.1, 0.2, 0.3, 0.4, 0.5]), 4)}):
        kept = confs >= t
        res["threshold_tradeoff"].append({
            "threshold": round(float(t), 4), "shipped": bool(t == reader.threshold),
            "korquad_EM": round(100 * float(np.mean(fa[:, 0] * kept)), 2),
            "korquad_F1": round(100 * float(np.mean(fa[:, 1] * kept)), 2),
            "korquad_evidence": round(100 * float(np.mean(contained & kept)), 2),
            "korquad_declined": round(100 * float(1 - kept.mean()), 2),
            "nomiracl_hallucination": round(100 * float((conf[y == 0] >= t).mean()), 2),
            "nomiracl_error": round(100 * float((conf[y == 1] < t).mean()), 2)})
    # latency: full Reader.answer (Kiwi analysis of question and passages included), cold cache
    rng = np.random.default_rng(SEED)
    sample = rng.choice(len(test_q), size=min(args.latency_sample, len(test_q)), replace=False)
    times = []
    for k in sample:
        q = test_q[k]
        qi = qinfo(q["question"])
        hits, _ = make_hits(bm25.top(qi.terms, args.top_k), by_id, pinfo)
        reader._cache.clear()
        t0 = time.perf_counter()
        reader.answer(q["question"], hits)
        times.append(1000 * (time.perf_counter() - t0))
    res["reader_latency_ms"] = {"p50": round(float(np.percentile(times, 50)), 1),
                                "p95": round(float(np.percentile(times, 95)), 1), "n": len(times)}
    print(json.dumps(res, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
