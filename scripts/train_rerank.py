"""Train the stage-2 reranker (jisik/models/rerank.json) on non-held-out KorQuAD questions.

    python scripts/train_rerank.py [--data ../shared/data] [--db /tmp/jisik-rerank.db]
    python scripts/train_rerank.py --no-dense    # jisik/models/rerank-lexical.json
    python scripts/train_rerank.py --no-dense --miracl ../shared/data/miracl_ko/questions.jsonl \
        --out jisik/models/rerank-lexical-miracl.json   # + MIRACL-ko half A (kowiki store)

The store holds the KorQuAD paragraphs plus the NoMIRACL-ko passages as distractors (the
same setting as `jisik eval retrieval` in docs/retrieval.md); it is built on first use and
reused after. Questions of held-out articles (`jisik.splits.is_heldout`) are never used for
training; the script reports recall on them and on all questions, with and without stage 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from jisik.app import Jisik
from jisik.eval import read_jsonl, remove_spaces, run_queries, score_rankings
from jisik.korean import normalize
from jisik.rerank import LEXICAL_MODEL_PATH, MODEL_PATH, Reranker, candidate_features, fit_listwise
from jisik.retrieve import MAX_QUERY_CHARS, Retriever
from jisik.splits import is_heldout, miracl_half

MIRACL_DB = "/tmp/jisik-bench/kowiki20k-lex.db"


def with_present_pages(questions: list[dict], present: set[str]) -> list[dict]:
    """Relevant pages restricted to those in the store; questions with none dropped."""
    out = [{**q, "relevant_pages": [str(p) for p in q["relevant_pages"] if str(p) in present]} for q in questions]
    return [q for q in out if q["relevant_pages"]]


def featurize(app: Jisik, questions: list[dict], transform=lambda q: q):
    """One group per question; positive: the gold document's best pool passage, or with
    `relevant_pages` (MIRACL), the best pool passage of each relevant page."""
    r = app.retriever
    mask = r.visible()
    groups = []
    for q in questions:
        query = normalize(transform(q["question"])).strip()[:MAX_QUERY_CHARS]
        ch = r.channels(query, mask)
        positions, _ = r.candidates(ch, mask, 100)
        pool = r.pool(ch, positions, mask)
        if not len(pool):
            continue
        details = app.store.passage_details(r.index.passage_ids[pool].tolist())
        doc_ids = [details[int(p)]["id"] for p in r.index.passage_ids[pool]]
        wanted = set(map(str, q["relevant_pages"])) if q.get("relevant_pages") else {q["gold_id"]}
        # One positive per relevant document: its best passage by the first stage (the pool
        # is in that order, dense extras last), which is the one collapse keeps.
        labels = np.zeros(len(pool), dtype=bool)
        seen = set()
        for i, d in enumerate(doc_ids):
            if d in wanted and d not in seen:
                labels[i] = True
                seen.add(d)
        groups.append((candidate_features(r.index, ch, pool), labels))
    return groups


def evaluate(app: Jisik, questions: list[dict], modes=("fused", "hybrid"), no_spaces=False) -> dict:
    """Doc recall@1/5/20, MRR@10 and latency per mode (k=20, as `jisik eval retrieval`)."""
    out = {}
    for mode in modes:
        def search(q, mode=mode):
            return app.retriever.search(q, 20, mode=mode, refresh=False)
        rankings, lat = run_queries(search, questions)
        out[mode] = score_rankings(questions, rankings, lat)
        if no_spaces:
            rankings, lat = run_queries(search, questions, remove_spaces)
            out[mode + "_no_spaces"] = score_rankings(questions, rankings, lat)
    return out


def evaluate_miracl(mapp: Jisik, questions: list[dict], model: Reranker, baseline: Reranker | None) -> dict:
    """Page nDCG@10 / recall@100 (k=100, as bench/retrieval.py --setting miracl)."""
    r = mapp.retriever
    out = {}
    systems = [("lexical", "lexical", None), ("fused", "fused", None),
               ("hybrid_baseline", "hybrid", baseline), ("hybrid_new", "hybrid", model)]
    for name, mode, reranker in systems:
        if mode == "hybrid" and reranker is None:
            continue
        r.reranker = reranker
        rankings, lat = run_queries(lambda q, m=mode: r.search(q, 100, mode=m, refresh=False), questions)
        out[name] = score_rankings(questions, rankings, lat)
    r.reranker = None
    return out


def print_summary(result: dict) -> None:
    print("\nMIRACL half B (questions: %d)" % next(iter(result["miracl_half_b"].values()))["questions"],
          file=sys.stderr)
    for name, s in result["miracl_half_b"].items():
        print(f"  {name:16s} nDCG@10 {s['page_ndcg@10']:.3f}  R@100 {s['page_recall@100']:.3f}", file=sys.stderr)
    for split in ("heldout", "all"):
        s = result[split].get("hybrid")
        if s:
            print(f"KorQuAD {split} hybrid (new model): R@1 {s['recall@1']:.3f}  R@5 {s['recall@5']:.3f}",
                  file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="folder with korquad/ and nomiracl_ko/")
    ap.add_argument("--db", default="/tmp/jisik-rerank.db", help="store to build or reuse")
    ap.add_argument("--out", default=None,
                    help=f"weights file (default {MODEL_PATH.name}, or {LEXICAL_MODEL_PATH.name} with --no-dense)")
    ap.add_argument("--no-dense", action="store_true",
                    help="train/evaluate without the encoder (no dense features or dense candidates), "
                         "the variant used by stores built with --encoder none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--no-spaces-share", type=float, default=0.0,
                    help="share of training questions also added with their spaces removed")
    ap.add_argument("--miracl", default=None, metavar="QUESTIONS",
                    help="also train on MIRACL-ko questions of half A (sha1(id) %% 2 == 0) with candidates "
                         "from --miracl-db (relevant pages in that store are positives); evaluate on half B")
    ap.add_argument("--miracl-db", default=MIRACL_DB, help="kowiki store (built with --encoder none) for --miracl")
    ap.add_argument("--miracl-repeat", type=int, default=1, help="copies of each MIRACL training question")
    ap.add_argument("--baseline", default=str(LEXICAL_MODEL_PATH),
                    help="reranker compared with the new one on MIRACL half B")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the saved model, do not train")
    ap.add_argument("--modes", default="fused,hybrid", help="modes to evaluate, e.g. lexical,bigram,dense,fused,hybrid")
    ap.add_argument("--no-spaces", action="store_true", help="also evaluate questions with spaces removed")
    args = ap.parse_args()

    data = Path(args.data)
    questions_path = data / "korquad" / "questions.jsonl"
    passages = [data / "korquad" / "passages.jsonl", data / "nomiracl_ko" / "passages.jsonl"]
    if not questions_path.exists():
        print(f"no KorQuAD data under {data}: pass --data DIR", file=sys.stderr)
        return 2
    app = Jisik.open(args.db)
    report = app.ingest_paths([str(p) for p in passages if p.exists()])
    print(f"store {args.db}: {report.to_json().get('added', '')} added", file=sys.stderr)
    if args.out is None:
        args.out = str(LEXICAL_MODEL_PATH if args.no_dense else MODEL_PATH)
    if args.no_dense:
        app._retriever = Retriever(app.store, analyzer=app.analyzer, encoder=None, reranker=None)
    app.retriever.reranker = None
    app.retriever.index.refresh()

    questions = read_jsonl(questions_path)
    train = [q for q in questions if not is_heldout(q)]
    held = [q for q in questions if is_heldout(q)]
    modes = args.modes.split(",")
    mapp = None
    if args.miracl:
        mapp = Jisik.open(args.miracl_db, create=False)
        mapp._retriever = Retriever(mapp.store, analyzer=mapp.analyzer, encoder=None, reranker=None)
        mapp.retriever.index.refresh()
        present = set(mapp.store.doc_ids())
        mq = read_jsonl(args.miracl)
        miracl_a = with_present_pages([q for q in mq if miracl_half(q["id"]) == "A"], present)
        miracl_b = with_present_pages([q for q in mq if miracl_half(q["id"]) == "B"], present)
        print(f"MIRACL: {len(mq)} questions; with a relevant page in {args.miracl_db}: "
              f"half A {len(miracl_a)}, half B {len(miracl_b)}", file=sys.stderr)
    if args.eval_only:
        app.retriever.reranker = Reranker.load(args.out)
        app.retriever.search("warm up", 5)
        result = {"heldout": evaluate(app, held, modes, args.no_spaces),
                  "all": evaluate(app, questions, modes, args.no_spaces)}
        if mapp is not None:
            result["miracl_half_b"] = evaluate_miracl(mapp, miracl_b, Reranker.load(args.out),
                                                      Reranker.load(args.baseline))
        print(json.dumps(result, ensure_ascii=False, indent=1))
        if mapp is not None:
            print_summary(result)
        return 0
    rng = np.random.default_rng(args.seed)
    spaced_off = [train[i] for i in np.sort(rng.choice(len(train), int(len(train) * args.no_spaces_share),
                                                        replace=False))]
    start = time.time()
    groups = featurize(app, train) + featurize(app, spaced_off, remove_spaces)
    print(f"features for {len(groups)} training queries in {time.time() - start:.0f}s", file=sys.stderr)
    miracl_meta = {}
    if mapp is not None:
        start = time.time()
        mgroups = featurize(mapp, miracl_a)
        usable = sum(1 for _, y in mgroups if y.any())
        print(f"features for {len(mgroups)} MIRACL half-A queries ({usable} with a relevant candidate) "
              f"in {time.time() - start:.0f}s", file=sys.stderr)
        groups += mgroups * args.miracl_repeat
        miracl_meta = {"miracl_half_a_questions": len(miracl_a), "miracl_half_a_with_positive": usable,
                       "miracl_repeat": args.miracl_repeat, "miracl_store": Path(args.miracl_db).name}
    model = fit_listwise(groups, l2=args.l2, seed=args.seed)
    model.meta.update({"dense": not args.no_dense, "train_questions": len(train), "no_spaces_copies": len(spaced_off),
                       "heldout_questions_excluded": len(held), **miracl_meta})
    model.save(args.out)
    print(f"saved {args.out}", file=sys.stderr)
    if not args.skip_eval:
        app.retriever.reranker = model
        app.retriever.search("warm up", 5)
        result = {"heldout": evaluate(app, held, modes, args.no_spaces),
                  "all": evaluate(app, questions, modes, args.no_spaces)}
        if mapp is not None:
            result["miracl_half_b"] = evaluate_miracl(mapp, miracl_b, model, Reranker.load(args.baseline))
        print(json.dumps(result, ensure_ascii=False, indent=1))
        if mapp is not None:
            print_summary(result)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
