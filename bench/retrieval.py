"""Retrieval benchmark: jisik (lexical, dense, hybrid) against what Korean users get today.

Baselines, on the same passages and the same BM25 code, differing only in tokenisation:
  - whitespace BM25: lower-cased \\w\\w+ tokens (what Haystack's and LlamaIndex's default
    BM25 do with Korean text);
  - character-bigram BM25 (the CJK analyzer of Lucene/Elasticsearch).

Settings:
  korquad  corpus = korquad passages + nomiracl passages; KorQuAD dev questions; by gold_id
  kowiki   corpus = kowiki part 0 (--parts N: the first N of the 5 parts) + every KorQuAD
           title; KorQuAD questions; answer-string recall
  miracl   same corpus; MIRACL-ko train questions; page nDCG@10 and recall@100

  python bench/retrieval.py --setting korquad [--limit N] [--no-spaces]
  python bench/retrieval.py --setting miracl --parts 5    # all 100,000 kowiki articles
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_kowiki_args, data_dir, kowiki_store, kowiki_subset, parser  # noqa: E402

from jisik.app import Jisik  # noqa: E402
from jisik.documents import Hit  # noqa: E402
from jisik.eval import read_jsonl, remove_spaces, run_queries, score_rankings  # noqa: E402
from jisik.index import LexicalIndex, bigram_keys, top_k  # noqa: E402
from jisik.korean import normalize  # noqa: E402
from jisik.splits import is_heldout  # noqa: E402

WORD = re.compile(r"\w\w+")


def whitespace_tokens(text: str) -> list[str]:
    return WORD.findall(text.lower())


def bigram_tokens(text: str) -> np.ndarray:
    """Bigrams inside each whitespace-separated word, as integer keys (like bigram_keys)."""
    parts = [bigram_keys(word) for word in text.split()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class BaselineBM25:
    """BM25 over the store's current passages with a different tokenizer."""

    def __init__(self, app: Jisik, tokenize) -> None:
        self.tokenize = tokenize
        index = app.retriever.index
        index.refresh()
        positions = np.flatnonzero(index.visible())
        pids = index.passage_ids[positions].tolist()
        details = app.store.passage_details(pids)
        self.passages = [details[p] for p in pids]
        self.lexical = LexicalIndex()
        self.lexical.add([tokenize(normalize(d["text"])) for d in self.passages])
        self.doc_ids = np.array([d["id"] for d in self.passages], dtype=object)

    def search(self, query: str, k: int) -> list[Hit]:
        tokens = self.tokenize(normalize(query))
        scores = self.lexical.scores(tokens.tolist() if isinstance(tokens, np.ndarray) else tokens)
        ranked = top_k(scores, scores > 0, max(100, 4 * k))
        hits, seen = [], set()
        for pos in ranked.tolist():
            d = self.passages[pos]
            if d["id"] in seen:
                continue
            seen.add(d["id"])
            hits.append(Hit(d["id"], d["title"], float(scores[pos]), d["text"], d["start"], d["end"]))
            if len(hits) == k:
                break
        return hits


def build(app: Jisik, paths: list[Path]) -> dict:
    report = app.ingest_paths(paths)
    app.retriever.index.refresh()
    out = report.to_json()
    out.pop("problems")
    return out


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--setting", choices=["korquad", "kowiki", "miracl"], default="korquad")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--no-spaces", action="store_true", help="also run every question with spaces removed")
    p.add_argument("--systems", default=None,
                   help="default: whitespace,bigram,lexical,dense,hybrid (korquad); without dense otherwise")
    p.add_argument("--encoder", default=None, choices=["use", "none"],
                   help="default: use for korquad; none for the kowiki corpus (USE would take hours to ingest it)")
    p.add_argument("--out", default=None, help="write the JSON result here too")
    add_kowiki_args(p)
    args = p.parse_args()
    data = data_dir(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    if args.setting == "korquad":
        corpus = [data / "korquad" / "passages.jsonl", data / "nomiracl_ko" / "passages.jsonl"]
        db = work / "korquad.db"
        questions = read_jsonl(data / "korquad" / "questions.jsonl", args.limit)
    else:
        corpus = [kowiki_subset(data, work, args.parts)]
        db = kowiki_store(work, args.parts)
        qfile = data / ("korquad/questions.jsonl" if args.setting == "kowiki" else "miracl_ko/questions.jsonl")
        questions = read_jsonl(qfile, args.limit)
    if args.setting == "kowiki":
        questions = [{k: v for k, v in q.items() if k != "gold_id"} | {"heldout": is_heldout(q)} for q in questions]
    encoder = args.encoder or ("use" if args.setting == "korquad" else "none")
    systems = args.systems or ("whitespace,bigram,lexical,dense,hybrid" if encoder != "none"
                               else "whitespace,bigram,lexical,fused,hybrid")
    if encoder == "none":
        db = db.with_name(db.stem.removesuffix("-lex") + "-lex.db")
    if args.db:
        db = Path(args.db)
    app = Jisik.open(db, encoder=encoder)
    t = time.perf_counter()
    ingest = build(app, corpus)
    result = {"setting": args.setting, "questions": len(questions), "store": app.stats(), "ingest": ingest,
              "ingest_wall_s": round(time.perf_counter() - t, 1), "systems": {}}
    if args.setting == "miracl":
        present = set(app.store.doc_ids())
        # The corpus holds a fifth of Korean Wikipedia: judge each question only by the
        # relevant pages the corpus has, and drop questions that have none there.
        in_corpus = [(i, {**q, "relevant_pages": [p for p in q["relevant_pages"] if str(p) in present]})
                     for i, q in enumerate(questions)]
        in_corpus = [(i, q) for i, q in in_corpus if q["relevant_pages"]]
        result["questions_with_a_relevant_page_in_corpus"] = len(in_corpus)
    depth = 100 if args.setting == "miracl" else 20
    variants = [("", lambda q: q)] + ([("_no_spaces", remove_spaces)] if args.no_spaces else [])
    for system in systems.split(","):
        if system in ("whitespace", "bigram"):
            baseline = BaselineBM25(app, whitespace_tokens if system == "whitespace" else bigram_tokens)
            search = lambda q, b=baseline: b.search(q, depth)  # noqa: E731
        else:
            search = lambda q, m=system: app.retriever.search(q, depth, mode=m, refresh=False)  # noqa: E731
        for suffix, transform in variants:
            rankings, lat = run_queries(search, questions, transform)
            scores = score_rankings(questions, rankings, lat)
            if args.setting == "miracl":
                sub = score_rankings([q for _, q in in_corpus], [rankings[i] for i, _ in in_corpus],
                                     [lat[i] for i, _ in in_corpus])
                scores["relevant_pages_in_corpus"] = {k: v for k, v in sub.items() if not k.startswith("latency")}
            if args.setting == "korquad":
                held = [i for i, q in enumerate(questions) if is_heldout(q)]
                sub = score_rankings([questions[i] for i in held], [rankings[i] for i in held],
                                     [lat[i] for i in held])
                scores["heldout"] = {k: v for k, v in sub.items() if not k.startswith("latency")}
            result["systems"][system + suffix] = scores
            print(system + suffix, json.dumps(scores, ensure_ascii=False), file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
