"""The PostgreSQL store against the embedded SQLite one, on the same corpus in the same run.

  python bench/stores.py [--postgres URL] [--questions 300] [--ingest-docs 800]

Corpus: KorQuAD + NoMIRACL passages (3,236 documents, the foundation benchmark's). Measured
for each store: (1) writing the analysed, embedded documents (the store's own cost, without
Kiwi and the encoder: their passages, terms and vectors are read back from a first SQLite
ingest), (2) opening it and building the in-memory index from it, (3) `ask` on held-out
KorQuAD questions (p50/p95, and whether both stores give the same answers), (4) `jisik
ingest` end to end of `--ingest-docs` documents by one process and by two at once (the
scale-out case: analysis and embedding run in parallel, writes are serialised). Without
`--postgres`, a throwaway local server with fsync on is started (needs Debian's
`postgresql`; tests/postgres_server.py).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import REPO, data_dir, parser  # noqa: E402

from jisik.app import Jisik  # noqa: E402
from jisik.documents import Chunk, Document  # noqa: E402
from jisik.eval import percentile, read_jsonl  # noqa: E402
from jisik.splits import is_heldout  # noqa: E402
from jisik.store import open_store  # noqa: E402

import numpy as np  # noqa: E402


def corpus(data: Path) -> list[Document]:
    records = read_jsonl(data / "korquad" / "passages.jsonl") + read_jsonl(data / "nomiracl_ko" / "passages.jsonl")
    return [Document.from_record(r) for r in records]


def analysed(store) -> list[tuple[Document, list[Chunk], list[str], np.ndarray]]:
    """Every current document of `store` with its passages, terms and vectors: what `put` takes."""
    out = []
    for doc_id in store.doc_ids():
        d = store.document(doc_id)
        rows = store._read(
            'SELECT p.start, p."end", p.terms, p.vector FROM passages p JOIN versions v USING (version_key) '
            "JOIN docs USING (doc_key) WHERE docs.doc_id=? AND v.valid_to IS NULL ORDER BY p.seq",
            (doc_id,)).fetchall()
        doc = Document.from_record({"id": d["id"], "title": d["title"], "text": d["text"], "url": d["url"],
                                    "published_at": d["published_at"], "metadata": d["metadata"]})
        chunks = [Chunk(a, b, d["text"][a:b]) for a, b, _, _ in rows]
        vectors = np.stack([np.frombuffer(v, dtype=np.float16) for *_, v in rows])
        out.append((doc, chunks, [t for _, _, t, _ in rows], vectors))
    return out


def write_all(location, payload) -> float:
    store = open_store(location)
    t = time.perf_counter()
    for doc, chunks, terms, vectors in payload:
        store.put(doc, chunks, terms, vectors)
    elapsed = time.perf_counter() - t
    store.close()
    return elapsed


def ask_all(location, questions: list[dict]) -> tuple[float, list[float], list]:
    t = time.perf_counter()
    app = Jisik.open(location, create=False)
    app.warm_up()
    opened = time.perf_counter() - t
    latencies, answers = [], []
    for q in questions:
        out = app.ask(q["question"], use_memory=False)
        latencies.append(out["latency_ms"])
        answers.append((out["answer"], (out["evidence"] or {}).get("id")))
    app.close()
    return opened, latencies, answers


def ingest_share(location: str, docs: list[Document], worker: int, workers: int) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    app = Jisik.open(location)
    app.ingest_documents(docs[worker::workers])
    app.close()


def ingest_wall(location, docs: list[Document], workers: int) -> float:
    Jisik.open(location).close()  # create the store and pin the encoder before the race
    ctx = mp.get_context("spawn")
    t = time.perf_counter()
    procs = [ctx.Process(target=ingest_share, args=(str(location), docs, w, workers)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"an ingest worker failed with exit code {p.exitcode}")
    return time.perf_counter() - t


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--postgres", default=None, help="a server URL (an empty database); default: a throwaway local one")
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--ingest-docs", type=int, default=800)
    p.add_argument("--out", default=str(REPO / "docs" / "results" / "stores.json"))
    args = p.parse_args()
    data = data_dir(args)
    os.environ["JISIK_INDEX_CACHE"] = "0"  # both stores build their index from the store
    docs = corpus(data)
    questions = [q for q in read_jsonl(data / "korquad" / "questions.jsonl") if is_heldout(q)][:args.questions]

    from tests.postgres_server import ExistingPostgres, TemporaryPostgres

    server = ExistingPostgres(args.postgres) if args.postgres else TemporaryPostgres(durable=True)
    with server, tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.db"
        t = time.perf_counter()
        Jisik.open(source).ingest_documents(docs)
        first_ingest = time.perf_counter() - t
        payload = analysed(open_store(source))
        passages = sum(len(c) for _, c, _, _ in payload)
        result = {"documents": len(payload), "passages": passages, "questions": len(questions),
                  "analyse_embed_write_s": round(first_ingest, 1), "stores": {}}
        for name, location in (("sqlite", Path(tmp) / "bench.db"), ("postgres", server.new_database())):
            write_s = write_all(location, payload)
            opened, latencies, answers = ask_all(location, questions)
            one = ingest_wall(Path(tmp) / "one.db" if name == "sqlite" else server.new_database(),
                              docs[:args.ingest_docs], 1)
            two = ingest_wall(Path(tmp) / "two.db" if name == "sqlite" else server.new_database(),
                              docs[:args.ingest_docs], 2)
            result["stores"][name] = {
                "write_s": round(write_s, 2), "write_docs_per_s": round(len(payload) / write_s, 1),
                "open_and_index_s": round(opened, 2),
                "ask_ms_p50": round(percentile(latencies, 50), 1), "ask_ms_p95": round(percentile(latencies, 95), 1),
                "ingest_1_process_s": round(one, 1), "ingest_2_processes_s": round(two, 1),
                "ingest_speedup_2_processes": round(one / two, 2), "answers": answers,
            }
            print(name, {k: v for k, v in result["stores"][name].items() if k != "answers"}, flush=True)
    a, b = result["stores"]["sqlite"].pop("answers"), result["stores"]["postgres"].pop("answers")
    result["same_answer_and_evidence"] = round(sum(x == y for x, y in zip(a, b)) / len(a), 4)
    s, g = result["stores"]["sqlite"], result["stores"]["postgres"]
    result["postgres_over_sqlite"] = {k: round(g[k] / s[k], 2) for k in
                                      ("write_s", "open_and_index_s", "ask_ms_p50", "ask_ms_p95",
                                       "ingest_1_process_s", "ingest_2_processes_s")}
    result["command"] = "python bench/stores.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
