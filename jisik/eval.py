"""Evaluation: retrieval recall/MRR/nDCG and latency on question sets with gold labels.

Question lines: {"id", "question", "gold_id"?, "answers"?, "relevant_pages"?}.
gold_id and relevant_pages are document ids; answers are strings a good passage contains.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .documents import Hit, InputError

RECALL_KS = (1, 5, 20)


def read_jsonl(path: str | Path, limit: int | None = None,
               check: Callable[[dict], str | None] | None = None) -> list[dict]:
    """Records of a JSON Lines file (gzip when it ends in .gz). A bad line raises InputError
    naming the file and line; `check` says what a record lacks (or None), so that a command
    refuses an incomplete file before a long ingest rather than after it."""
    out = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise InputError(f"{path}:{n}: invalid JSON") from None
            if check is not None:
                problem = check(record) if isinstance(record, dict) else "not a JSON object"
                if problem:
                    raise InputError(f"{path}:{n}: {problem}")
            out.append(record)
            if limit is not None and len(out) >= limit:
                break
    return out


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def score_rankings(questions: list[dict], rankings: list[list[Hit]], latencies_ms: list[float],
                   ks: Iterable[int] = RECALL_KS) -> dict:
    """Recall@k and MRR@10 by gold document, answer-string recall@k, page nDCG@10/recall@100."""
    ks = tuple(ks)
    by_doc = {k: [] for k in ks}
    by_answer = {k: [] for k in ks}
    rr, ndcg, recall100 = [], [], []
    for q, hits in zip(questions, rankings):
        ids = [h.id for h in hits]
        if q.get("gold_id"):
            gold = q["gold_id"]
            for k in ks:
                by_doc[k].append(gold in ids[:k])
            rank = ids.index(gold) + 1 if gold in ids[:10] else None
            rr.append(1.0 / rank if rank else 0.0)
        if q.get("answers"):
            contains = [any(a in h.text for a in q["answers"]) for h in hits]
            for k in ks:
                by_answer[k].append(any(contains[:k]))
        if q.get("relevant_pages"):
            relevant = set(map(str, q["relevant_pages"]))
            gains = [1.0 if i in relevant else 0.0 for i in ids[:10]]
            dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
            ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), 10)))
            ndcg.append(dcg / ideal)
            recall100.append(len(relevant & set(ids[:100])) / len(relevant))
    out: dict = {"questions": len(questions)}
    if rr:
        out.update({f"recall@{k}": _mean(by_doc[k]) for k in ks})
        out["mrr@10"] = _mean(rr)
    if by_answer[ks[0]]:
        out.update({f"answer_recall@{k}": _mean(by_answer[k]) for k in ks})
    if ndcg:
        out["page_ndcg@10"] = _mean(ndcg)
        out["page_recall@100"] = _mean(recall100)
    out["latency_ms_p50"] = round(percentile(latencies_ms, 50), 2)
    out["latency_ms_p95"] = round(percentile(latencies_ms, 95), 2)
    return out


def _mean(values) -> float:
    return round(float(np.mean(values)), 4) if len(values) else float("nan")


CONFIDENCE_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def reliability(confidences: Sequence[float], correct: Sequence[float],
                edges: Sequence[float] = CONFIDENCE_BINS) -> dict:
    """How often an answer given at a confidence is right, by confidence bin, and the
    expected calibration error (the answers' share-weighted gap between the two): what a
    user needs to know to read `confidence` as a chance, or to pick a --min-confidence."""
    c = np.asarray(confidences, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    bins, gap = [], 0.0
    for lo, hi in zip(edges, edges[1:]):
        inside = (c >= lo) & ((c < hi) if hi < edges[-1] else (c <= hi))
        if not inside.any():
            continue
        share = float(inside.mean())
        bins.append({"from": lo, "to": hi, "answers": int(inside.sum()),
                     "confidence": round(float(c[inside].mean()), 4), "exact_match": round(float(y[inside].mean()), 4)})
        gap += share * abs(float(c[inside].mean()) - float(y[inside].mean()))
    return {"bins": bins, "expected_calibration_error": round(gap, 4) if len(c) else None}


# Real users' question sets (under the data folder) whose answers we judged by reading them.
REAL_USER_SETS = {"miracl": "miracl_ko/questions.jsonl", "mrtydi_dev": "mrtydi_ko/questions.dev.jsonl",
                  "mrtydi_test": "mrtydi_ko/questions.test.jsonl"}


def judged_answer_key(doc_id: str, answer: str) -> str:
    """Names one answer: a judgement holds while the reader gives the same span from the
    same document, and lapses when either changes."""
    return hashlib.sha1(f"{doc_id}\t{answer}".encode("utf-8")).hexdigest()[:16]


def real_user_answers(app, data: str | Path, judgements_path: str | Path) -> list[dict]:
    """Every real users' question answered as `jisik ask --no-memory` does, but at
    min_confidence 0 (what the threshold declines is judged too), with the judgement of its
    span answer from `judgements_path` (docs/results/real-users-judged.json) or None.

    Rows: set, id, question, kind ("span", "yes_no", "why", "definition" or "none"), confidence,
    judged, and for a span answer its answer and evidence.
    """
    from .read import DEFINITION, POLAR, REASON

    recorded = json.loads(Path(judgements_path).read_text(encoding="utf-8"))["answers"]
    judged = {(a["set"], a["id"], a["answer_sha1"]): a["judged"] for a in recorded}
    rows = []
    for name, path in REAL_USER_SETS.items():
        for q in read_jsonl(Path(data) / path):
            out = app.ask(q["question"], use_memory=False, min_confidence=0.0)
            kind = {POLAR: "yes_no", REASON: "why", DEFINITION: "definition"}.get(out.get("reason"), "span")
            row = {"set": name, "id": q["id"], "question": q["question"], "confidence": out["confidence"],
                   "kind": kind if kind != "span" or out["answer"] is not None else "none", "judged": None}
            if row["kind"] == "span":
                evidence = out["evidence"]
                row.update(answer=out["answer"], evidence=evidence,
                           judged=judged.get((name, q["id"], judged_answer_key(evidence["id"], out["answer"]))))
            rows.append(row)
    return rows


def run_queries(search: Callable[[str], list[Hit]], questions: list[dict],
                transform: Callable[[str], str] = lambda q: q) -> tuple[list[list[Hit]], list[float]]:
    rankings, latencies = [], []
    for q in questions:
        start = time.perf_counter()
        rankings.append(search(transform(q["question"])))
        latencies.append((time.perf_counter() - start) * 1000)
    return rankings, latencies


def remove_spaces(text: str) -> str:
    return "".join(text.split())


def evaluate_retrieval(passages: Sequence[str], questions_path: str, *, db: str | None = None,
                       limit: int | None = None, modes: Sequence[str] = ("lexical", "dense", "hybrid"),
                       no_spaces: bool = False, encoder: str | None = None, progress: bool = True) -> dict:
    app, report, tmp = _ingested_app(passages, db, encoder, progress)
    questions = read_jsonl(questions_path, limit)
    depth = 100 if any(q.get("relevant_pages") for q in questions) else max(RECALL_KS)
    result: dict = {"ingest": report.to_json(), "store": app.stats(), "modes": {}}
    result["ingest"].pop("problems")
    for mode in modes:
        def search(q, mode=mode):
            return app.retriever.search(q, depth, mode=mode, refresh=False)
        rankings, lat = run_queries(search, questions)
        result["modes"][mode] = score_rankings(questions, rankings, lat)
        if no_spaces:
            rankings, lat = run_queries(search, questions, remove_spaces)
            result["modes"][mode + "_no_spaces"] = score_rankings(questions, rankings, lat)
    app.close()
    if tmp is not None:
        tmp.cleanup()
    return result


def _qa_problem(q: dict) -> str | None:
    if not isinstance(q.get("question"), str):
        return 'needs a "question" string'
    answers = q.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
        return 'needs gold "answers": a non-empty list of strings'
    return None


def _abstain_problem(q: dict) -> str | None:
    if not isinstance(q.get("question"), str):
        return 'needs a "question" string'
    if not isinstance(q.get("candidate_ids"), list) or not q["candidate_ids"]:
        return 'needs "candidate_ids": the ids of the passages the question may use'
    if q.get("subset") not in ("relevant", "non_relevant"):
        return 'needs "subset": "relevant" (a candidate answers it) or "non_relevant" (none does)'
    return None


def _ingested_app(passages: Sequence[str], db: str | None, encoder: str | None, progress: bool):
    from tqdm import tqdm

    from .app import Jisik

    tmp = None
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="jisik-eval-")
        db = str(Path(tmp.name) / "eval.db")
    app = Jisik.open(db, encoder=encoder)
    with tqdm(unit=" docs", desc="ingest", file=sys.stderr, disable=not progress) as bar:
        report = app.ingest_paths(passages, progress=bar)
    app.warm_up()
    return app, report, tmp


def evaluate_qa(passages: Sequence[str], questions_path: str, *, db: str | None = None, limit: int | None = None,
                split: str = "heldout", encoder: str | None = None, progress: bool = True,
                min_confidence: float | None = None) -> dict:
    """EM/F1 (KorQuAD 1.0), evidence-contains-gold, abstention and latency of `ask`."""
    from .read import exact_match, f1
    from .splits import is_heldout

    questions = read_jsonl(questions_path, check=_qa_problem)
    if split == "heldout":
        questions = [q for q in questions if is_heldout(q)]
    elif split == "train":
        questions = [q for q in questions if not is_heldout(q)]
    questions = questions[:limit] if limit else questions
    if not questions:
        raise InputError(f"{questions_path}: no questions in split {split!r} (--split all uses every line)")
    app, report, tmp = _ingested_app(passages, db, encoder, progress)
    ems, f1s, in_evidence, abstained, latencies, confidences = [], [], [], [], [], []
    for q in questions:
        out = app.ask(q["question"], use_memory=False, min_confidence=min_confidence)
        latencies.append(out["latency_ms"])
        confidences.append(out["confidence"])
        abstained.append(out["abstained"])
        ems.append(exact_match(out["answer"], q["answers"]))
        f1s.append(f1(out["answer"], q["answers"]))
        sentence = (out["evidence"] or {}).get("sentence") or ""
        in_evidence.append(any(a in sentence for a in q["answers"]))
    app.close()
    if tmp is not None:
        tmp.cleanup()
    answered_in_evidence = [e for e, a in zip(in_evidence, abstained) if not a]
    answered = [k for k, a in enumerate(abstained) if not a]
    return {
        "questions": len(questions), "split": split, "min_confidence": min_confidence,
        "exact_match": round(100 * float(np.mean(ems)), 2), "f1": round(100 * float(np.mean(f1s)), 2),
        "evidence_contains_gold": _mean(in_evidence),
        # the same share among the questions answered (None when every question was declined)
        "evidence_contains_gold_of_answered": _mean(answered_in_evidence) if answered_in_evidence else None,
        "abstained": _mean(abstained),
        # over the answered questions: is an answer at confidence 0.9 exactly right 9 times in 10?
        "confidence_reliability": reliability([confidences[k] for k in answered], [ems[k] for k in answered]),
        "latency_ms_p50": round(percentile(latencies, 50), 1), "latency_ms_p95": round(percentile(latencies, 95), 1),
        "ingest": {k: v for k, v in report.to_json().items() if k != "problems"},
    }


def evaluate_abstention(passages: Sequence[str], questions_path: str, *, db: str | None = None,
                        limit: int | None = None, encoder: str | None = None, progress: bool = True,
                        min_confidence: float | None = None) -> dict:
    """NoMIRACL: each query sees only its candidate passages; subset says if any answers it."""
    questions = read_jsonl(questions_path, limit, check=_abstain_problem)
    if not questions:
        raise InputError(f"{questions_path}: no questions")
    app, _, tmp = _ingested_app(passages, db, encoder, progress)
    answered = {"relevant": [], "non_relevant": []}
    latencies = []
    for q in questions:
        out = app.ask(q["question"], candidate_ids=q["candidate_ids"], use_memory=False,
                      min_confidence=min_confidence)
        answered[q["subset"]].append(not out["abstained"])
        latencies.append(out["latency_ms"])
    app.close()
    if tmp is not None:
        tmp.cleanup()
    return {
        "questions": len(questions), "min_confidence": min_confidence,
        "relevant": len(answered["relevant"]), "non_relevant": len(answered["non_relevant"]),
        "hallucination_rate": _mean(answered["non_relevant"]),
        "error_rate": round(1 - _mean(answered["relevant"]), 4) if answered["relevant"] else float("nan"),
        "latency_ms_p50": round(percentile(latencies, 50), 1), "latency_ms_p95": round(percentile(latencies, 95), 1),
    }
