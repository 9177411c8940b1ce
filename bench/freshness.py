"""Freshness benchmark: updates, as-of, deletion, real edits, ingest-to-answer lag, memory speed.

  python bench/freshness.py [--edits 150] [--parts counterfactual,real,lag,memory]

counterfactual  KorQuAD passages as of 2018; each edited passage gets its gold answer
                replaced by another answer of the same type (date, number, other) taken from
                a different question, as a 2024 version. Asked before, after (and paraphrased),
                as of 2020, and after deletion; untouched questions measure retention. Run
                with the question memory on and off. A *stale* answer is one whose evidence
                is not the current version of its document (or a deleted document), or that
                repeats the replaced answer from the edited document.
real            KorQuAD 2018 paragraphs of each article = version 1 of a document named by the
                title; the 2022 kowiki article of that title = version 2.
lag             time from an ingest call returning to another process seeing the new version.
memory          p50 and questions/s of memory hits vs the full path; hit rate on paraphrases.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_dir, korquad_titles, parser  # noqa: E402

from jisik.app import Jisik  # noqa: E402
from jisik.documents import Document  # noqa: E402
from jisik.eval import percentile, read_jsonl  # noqa: E402
from jisik.read import exact_match, normalize_answer  # noqa: E402

OLD_DATE, AS_OF, NEW_DATE = "2018-06-01", "2020-01-01", "2024-01-01"


def answer_type(answer: str) -> str:
    if re.search(r"\d+\s*(년|월|일)", answer):
        return "date"
    if re.search(r"\d", answer):
        return "number"
    return "other"


def gives(out: dict, expected: str) -> bool:
    """The answer is the expected string (KorQuAD EM) or contains it."""
    if out.get("abstained") or not out.get("answer"):
        return False
    return bool(exact_match(out["answer"], [expected])) or normalize_answer(expected) in normalize_answer(out["answer"])


def reorder(question: str) -> str:
    """Move the first word before the last: Korean word order tolerates it."""
    words = question.split()
    return " ".join(words[1:-1] + words[:1] + words[-1:]) if len(words) >= 3 else question


def drop_word(question: str) -> str:
    words = question.split()
    return " ".join(words[:1] + words[2:]) if len(words) >= 4 else question


def is_stale(app: Jisik, out: dict, edited: dict[str, str]) -> bool:
    ev = out.get("evidence")
    if out.get("abstained") or not ev:
        return False
    current = app.store.document(ev["id"])
    if current is None or current["version"] != ev["version"]:
        return True
    old = edited.get(ev["id"])
    return old is not None and gives(out, old) and normalize_answer(old) not in normalize_answer(current["text"])


# --- counterfactual updates ----------------------------------------------------------


def plan_edits(data: Path, n_edits: int, n_untouched: int, seed: int = 13):
    passages = {p["id"]: p for p in read_jsonl(data / "korquad" / "passages.jsonl")}
    questions = read_jsonl(data / "korquad" / "questions.jsonl")
    by_passage = defaultdict(list)
    for q in questions:
        by_passage[q["gold_id"]].append(q)
    rng = random.Random(seed)
    pool = defaultdict(list)
    for q in questions:
        pool[answer_type(q["answers"][0])].append(q["answers"][0])
    ids = sorted(by_passage)
    rng.shuffle(ids)
    edits, untouched = [], []
    for pid in ids:
        if len(edits) < n_edits:
            q = rng.choice(by_passage[pid])
            old = q["answers"][0]
            text = passages[pid]["text"]
            candidates = [a for a in pool[answer_type(old)] if a != old and a not in text and old not in a]
            if not candidates or len(old) < 2:
                continue
            new = rng.choice(candidates)
            edits.append({"question": q, "old": old, "new": new, "passage": passages[pid],
                          "new_text": text.replace(old, new)})
        elif len(untouched) < n_untouched:
            untouched.append(rng.choice(by_passage[pid]))
    return list(passages.values()), edits, untouched


def counterfactual(data: Path, work: Path, n_edits: int, use_memory: bool) -> dict:
    passages, edits, untouched = plan_edits(data, n_edits, n_edits)
    db = work / f"cf-{'mem' if use_memory else 'nomem'}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    app = Jisik.open(db)
    app.ingest_documents(Document.from_record({**p, "published_at": OLD_DATE}) for p in passages)
    app.warm_up()

    def ask(q, **kw):
        return app.ask(q, use_memory=use_memory, **kw)

    before = [ask(e["question"]["question"]) for e in edits]
    before_untouched = [ask(q["question"]) for q in untouched]
    known = [gives(o, e["old"]) for o, e in zip(before, edits)]

    app.ingest_documents(Document.from_record({**e["passage"], "text": e["new_text"], "published_at": NEW_DATE})
                         for e in edits)
    edited = {e["passage"]["id"]: e["old"] for e in edits}
    stale = defaultdict(int)
    after = [ask(e["question"]["question"]) for e in edits]
    stale["after_update"] = sum(is_stale(app, o, edited) for o in after)
    para = [ask(reorder(e["question"]["question"])) for e in edits] + \
           [ask(drop_word(e["question"]["question"])) for e in edits]
    stale["paraphrased"] = sum(is_stale(app, o, edited) for o in para)
    repeat = [ask(e["question"]["question"]) for e in edits]
    stale["repeated"] = sum(is_stale(app, o, edited) for o in repeat)
    as_of = [ask(e["question"]["question"], as_of=AS_OF) for e in edits]
    after_untouched = [ask(q["question"]) for q in untouched]

    for e in edits:
        app.delete(e["passage"]["id"])
    deleted = [ask(e["question"]["question"]) for e in edits]
    stale["after_delete"] = sum(is_stale(app, o, edited) for o in deleted)
    deletion_ok = [o["abstained"] or o["evidence"]["id"] not in edited for o in deleted]

    def share(flags, mask=None):
        flags = [f for f, m in zip(flags, mask or [True] * len(flags)) if m]
        return round(sum(flags) / len(flags), 4) if flags else float("nan")

    same = [(a.get("answer") == b.get("answer")) for a, b in zip(before_untouched, after_untouched)]
    app.close()
    return {
        "memory": use_memory, "edits": len(edits), "untouched": len(untouched),
        "known_before_update": share(known),
        "update_success": share([gives(o, e["new"]) for o, e in zip(after, edits)]),
        "update_success_where_known": share([gives(o, e["new"]) for o, e in zip(after, edits)], known),
        "update_success_paraphrased": share([gives(o, e["new"]) for o, e in zip(para, edits + edits)]),
        "update_success_repeated": share([gives(o, e["new"]) for o, e in zip(repeat, edits)]),
        "repeated_from_memory": share([o.get("from_memory", False) for o in repeat]),
        "paraphrased_from_memory": share([o.get("from_memory", False) for o in para]),
        "as_of_success": share([gives(o, e["old"]) for o, e in zip(as_of, edits)]),
        "as_of_success_where_known": share([gives(o, e["old"]) for o, e in zip(as_of, edits)], known),
        "retention_untouched": share(same),
        "deletion_success": share(deletion_ok),
        "stale_answers_served": sum(stale.values()),
        "stale_by_phase": dict(stale),
    }


# --- real edits ----------------------------------------------------------------------


def real_edits(data: Path, work: Path, limit: int | None) -> dict:
    import gzip

    titles = korquad_titles(data)
    paragraphs = defaultdict(list)
    for p in read_jsonl(data / "korquad" / "passages.jsonl"):
        paragraphs[p["title"]].append(p["text"])
    wiki = {}
    for path in sorted((data / "kowiki").glob("kowiki-2022-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec["title"] in titles and rec["title"] not in wiki and rec["text"].strip():
                    wiki[rec["title"]] = rec["text"]
    db = work / "real-edits.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    app = Jisik.open(db)
    app.ingest_documents(Document.from_record({"id": t, "title": t, "text": "\n\n".join(ps), "published_at": OLD_DATE})
                         for t, ps in paragraphs.items())
    app.ingest_documents(Document.from_record({"id": t, "title": t, "text": wiki[t], "published_at": "2022-06-01"})
                         for t in paragraphs if t in wiki)
    questions = [q for q in read_jsonl(data / "korquad" / "questions.jsonl")
                 if q["gold_id"].split(":", 1)[1].rsplit("#", 1)[0] in wiki]
    both = [q for q in questions if q["answers"][0] in wiki[q["gold_id"].split(":", 1)[1].rsplit("#", 1)[0]]]
    both = both[:limit] if limit else both
    app.warm_up()
    now = [app.ask(q["question"], use_memory=False) for q in both]
    old = [app.ask(q["question"], as_of="2019-01-01", use_memory=False) for q in both]
    app.close()
    n = max(len(both), 1)
    return {
        "articles_with_two_versions": sum(t in wiki for t in paragraphs),
        "questions_answer_in_both_versions": len(both),
        "retention_now_correct": round(sum(gives(o, q["answers"][0]) for o, q in zip(now, both)) / n, 4),
        "now_cites_version_2": round(sum((o.get("evidence") or {}).get("version") == 2 for o in now) / n, 4),
        "as_of_2019_correct": round(sum(gives(o, q["answers"][0]) for o, q in zip(old, both)) / n, 4),
        "as_of_2019_cites_version_1": round(sum((o.get("evidence") or {}).get("version") == 1 for o in old) / n, 4),
    }


# --- lag -----------------------------------------------------------------------------


def _watch(db: str, n: int, seen, ready) -> None:
    app = Jisik.open(db)
    app.warm_up()
    ready.set()
    i = 0
    while i < n:
        hits = app.search(f"측정용 문서의 암호는 코드{i:04d}이다", k=1, mode="lexical")
        if hits and f"코드{i:04d}" in hits[0].text:
            seen[i] = time.time()
            i += 1


def lag(work: Path, n: int) -> dict:
    db = str(work / "lag.db")
    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)
    writer = Jisik.open(db)
    writer.ingest_documents([Document.from_record({"id": "lag", "text": "측정용 문서의 암호는 시작이다."})])
    writer.warm_up()
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        seen, ready = manager.dict(), ctx.Event()
        proc = ctx.Process(target=_watch, args=(db, n, seen, ready))
        proc.start()
        ready.wait(120)
        returned = {}
        for i in range(n):
            writer.ingest_documents([Document.from_record({"id": "lag", "text": f"측정용 문서의 암호는 코드{i:04d}이다."})])
            returned[i] = time.time()
            while i not in seen and proc.is_alive():
                time.sleep(0.001)
        proc.join(30)
        lags = [(seen[i] - returned[i]) * 1000 for i in range(n) if i in seen]
    return {"updates": n, "seen": len(lags), "lag_ms_p50": round(percentile(lags, 50), 1),
            "lag_ms_p99": round(percentile(lags, 99), 1), "lag_ms_max": round(max(lags), 1) if lags else None}


# --- memory speed --------------------------------------------------------------------


def memory_speed(data: Path, work: Path, n: int) -> dict:
    db = work / "memory.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    app = Jisik.open(db)
    app.ingest_paths([data / "korquad" / "passages.jsonl", data / "nomiracl_ko" / "passages.jsonl"])
    app.warm_up()
    questions = [q["question"] for q in read_jsonl(data / "korquad" / "questions.jsonl")][:n]

    def timed(qs, **kw):
        outs, lat = [], []
        t0 = time.perf_counter()
        for q in qs:
            t = time.perf_counter()
            outs.append(app.ask(q, **kw))
            lat.append((time.perf_counter() - t) * 1000)
        return outs, lat, len(qs) / (time.perf_counter() - t0)

    full, full_lat, full_qps = timed(questions)
    # Only answers are remembered (not abstentions): rates are over the questions answered.
    answered = [q for q, o in zip(questions, full) if not o["abstained"]]
    repeat, rep_lat, _ = timed(answered)
    hit_lat = [l for l, o in zip(rep_lat, repeat) if o["from_memory"]]
    remembered, _, batch_qps = timed([q for q, o in zip(answered, repeat) if o["from_memory"]])
    para_r, _, _ = timed([reorder(q) for q in answered])
    para_d, _, _ = timed([drop_word(q) for q in answered])
    app.close()

    def rate(outs):
        return round(sum(o["from_memory"] for o in outs) / max(len(outs), 1), 4)

    return {
        "questions": n, "answered_first_time": len(answered),
        "full_path_ms_p50": round(statistics.median(full_lat), 2), "full_path_qps": round(full_qps, 1),
        "memory_hit_rate_exact_repeat": rate(repeat),
        "memory_hit_ms_p50": round(statistics.median(hit_lat), 3) if hit_lat else None,
        "memory_hit_ms_p95": round(percentile(hit_lat, 95), 3) if hit_lat else None,
        "memory_hits_qps": round(batch_qps, 1),
        "memory_hit_rate_reordered": rate(para_r),
        "memory_hit_rate_word_dropped": rate(para_d),
    }


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--edits", type=int, default=150, help="edited passages (and as many untouched questions)")
    p.add_argument("--parts", default="counterfactual,real,lag,memory")
    p.add_argument("--real-limit", type=int, default=None)
    p.add_argument("--lag-updates", type=int, default=100)
    p.add_argument("--memory-questions", type=int, default=500)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    data = data_dir(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    result = {}
    if "counterfactual" in parts:
        result["counterfactual_memory_on"] = counterfactual(data, work, args.edits, True)
        print(json.dumps(result["counterfactual_memory_on"], ensure_ascii=False), file=sys.stderr)
        result["counterfactual_memory_off"] = counterfactual(data, work, args.edits, False)
        print(json.dumps(result["counterfactual_memory_off"], ensure_ascii=False), file=sys.stderr)
    if "real" in parts:
        result["real_edits"] = real_edits(data, work, args.real_limit)
        print(json.dumps(result["real_edits"], ensure_ascii=False), file=sys.stderr)
    if "lag" in parts:
        result["lag"] = lag(work, args.lag_updates)
        print(json.dumps(result["lag"], ensure_ascii=False), file=sys.stderr)
    if "memory" in parts:
        result["memory"] = memory_speed(data, work, args.memory_questions)
        print(json.dumps(result["memory"], ensure_ascii=False), file=sys.stderr)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
