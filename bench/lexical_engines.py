"""Which BM25 engine: jisik's scipy index vs bm25s vs SQLite FTS5, on the same morpheme terms.

  python bench/lexical_engines.py [--db /tmp/jisik-bench/korquad.db] [--questions 1000]

All three score the passages' stored Kiwi content-morpheme terms (no title terms, so the
comparison is of engines, not features). Reported: build seconds, query p50/p95 ms,
recall@1/5 by gold document, and whether the engine can add passages without a rebuild.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, parser  # noqa: E402

from jisik.app import Jisik  # noqa: E402
from jisik.eval import percentile, read_jsonl  # noqa: E402
from jisik.index import LexicalIndex, top_k  # noqa: E402


def measure(name, search, questions, doc_of, build_s, incremental) -> dict:
    lat, r1, r5 = [], [], []
    for q, terms in questions:
        t = time.perf_counter()
        ranked = search(terms)
        lat.append((time.perf_counter() - t) * 1000)
        docs = []
        for pos in ranked:
            d = doc_of[pos]
            if d not in docs:
                docs.append(d)
        r1.append(q["gold_id"] in docs[:1])
        r5.append(q["gold_id"] in docs[:5])
    return {"engine": name, "build_s": round(build_s, 2), "query_ms_p50": round(percentile(lat, 50), 2),
            "query_ms_p95": round(percentile(lat, 95), 2), "recall@1": round(float(np.mean(r1)), 4),
            "recall@5": round(float(np.mean(r5)), 4), "adds_without_rebuild": incremental}


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--db", default="/tmp/jisik-bench/korquad.db", help="a store built by bench/retrieval.py")
    p.add_argument("--questions", type=int, default=1000)
    args = p.parse_args()
    data = data_dir(args)
    if not Path(args.db).exists():
        print(f"SKIP: no store at {args.db}: run bench/retrieval.py --setting korquad first")
        return
    app = Jisik.open(args.db, create=False)
    conn = sqlite3.connect(args.db)
    rows = conn.execute("SELECT p.terms, d.doc_id FROM passages p JOIN versions v USING (version_key) "
                        "JOIN docs d USING (doc_key) WHERE v.valid_to IS NULL ORDER BY p.passage_id").fetchall()
    texts, doc_of = [r[0].split() for r in rows], [r[1] for r in rows]
    questions = [(q, app.retriever.query_terms(q["question"]))
                 for q in read_jsonl(data / "korquad" / "questions.jsonl", args.questions)]
    k = 20
    results = []

    t = time.perf_counter()
    index = LexicalIndex()
    index.add(texts)
    build = time.perf_counter() - t
    everything = np.ones(index.size, dtype=bool)
    results.append(measure("jisik (scipy sparse, numpy)", lambda terms: top_k(index.scores(terms), everything, k).tolist(),
                           questions, doc_of, build, True))

    try:
        import bm25s

        t = time.perf_counter()
        retriever = bm25s.BM25()
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in texts]
        retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        build = time.perf_counter() - t

        def bm25s_search(terms):
            q = [t for t in terms if t in vocab]
            if not q:
                return []
            docs, _ = retriever.retrieve([q], k=k, show_progress=False)
            return docs[0].tolist()
        results.append(measure("bm25s 0.3", bm25s_search, questions, doc_of, build, False))
    except ImportError:
        results.append({"engine": "bm25s", "skipped": "pip install bm25s==0.3.16"})

    fts = sqlite3.connect(":memory:")
    t = time.perf_counter()
    fts.execute("CREATE VIRTUAL TABLE p USING fts5(terms, tokenize='unicode61 remove_diacritics 0')")
    fts.executemany("INSERT INTO p(rowid, terms) VALUES (?, ?)", [(i, " ".join(d)) for i, d in enumerate(texts)])
    fts.commit()
    build = time.perf_counter() - t

    def fts_search(terms):
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in set(terms))
        return [r[0] for r in fts.execute("SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT ?", (match, k))]
    results.append(measure("SQLite FTS5", fts_search, questions, doc_of, build, True))

    out = {"passages": len(texts), "questions": len(questions), "engines": results}
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
