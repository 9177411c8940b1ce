"""Train the stage-2 reranker (jisik/models/rerank.json) on non-held-out KorQuAD questions.

    python scripts/train_rerank.py [--data ../shared/data] [--db /tmp/jisik-rerank.db]
    python scripts/train_rerank.py --no-dense    # jisik/models/rerank-lexical.json

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
from jisik.splits import is_heldout


def featurize(app: Jisik, questions: list[dict], transform=lambda q: q):
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
        gold = np.array([details[int(p)]["id"] == q["gold_id"] for p in r.index.passage_ids[pool]])
        # One positive: the gold document's best passage by the first stage (the pool is in
        # that order, dense extras last), which is the one collapse keeps.
        labels = np.zeros(len(pool), dtype=bool)
        if gold.any():
            labels[np.argmax(gold)] = True
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
    if args.eval_only:
        app.retriever.reranker = Reranker.load(args.out)
        app.retriever.search("warm up", 5)
        result = {"heldout": evaluate(app, held, modes, args.no_spaces),
                  "all": evaluate(app, questions, modes, args.no_spaces)}
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    rng = np.random.default_rng(args.seed)
    spaced_off = [train[i] for i in np.sort(rng.choice(len(train), int(len(train) * args.no_spaces_share),
                                                        replace=False))]
    start = time.time()
    groups = featurize(app, train) + featurize(app, spaced_off, remove_spaces)
    print(f"features for {len(groups)} training queries in {time.time() - start:.0f}s", file=sys.stderr)
    model = fit_listwise(groups, l2=args.l2, seed=args.seed)
    model.meta.update({"dense": not args.no_dense, "train_questions": len(train), "no_spaces_copies": len(spaced_off),
                       "heldout_questions_excluded": len(held)})
    model.save(args.out)
    print(f"saved {args.out}", file=sys.stderr)
    if not args.skip_eval:
        app.retriever.reranker = model
        app.retriever.search("warm up", 5)
        result = {"heldout": evaluate(app, held, modes, args.no_spaces),
                  "all": evaluate(app, questions, modes, args.no_spaces)}
        print(json.dumps(result, ensure_ascii=False, indent=1))
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
