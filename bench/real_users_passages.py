"""Does `ask` decline real users' questions when none of the sentences it reads answers them?

    python bench/real_users_passages.py [--db STORE]

NoMIRACL-ko (docs/benchmarks.md §6) measures declining on 264 queries with passages chosen by
its authors. `docs/results/real-users-passages-judged.json` holds the same kind of label for
real users' questions (Mr. TyDi-ko train, outside MIRACL-ko half B) over the passages `ask`
itself retrieves on the kowiki-20k store (docs/benchmarks.md §3): for each question, which
of the 8 sentences the reader's sentence model ranks first answers it, and where the answer
is (docs/judging.md, "Judging passages"). This bench reads each question again as `ask`
reads it (the same passages; a question whose passages changed is counted and skipped) at
min_confidence 0, applies the shipped threshold here, and reports as NoMIRACL does:

- hallucination rate: answered, though none of the 8 sentences answers;
- error rate: declined, though one of the sentences the reader reads answers;
- precision: answers that overlap a judged answer, among all answers given.

Questions judged unsure or answerable only by description are left out, and so are those
whose only answering sentences the reader does not read (ranked 6th to 8th). Reported for
all questions and for the fifth `scripts/train_neural_reader.py --judged` holds out
(`judged_val`), the one part that stays unseen if a reader is ever trained on the labels
(the shipped one was not). Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import REPO, add_kowiki_args, data_dir, open_kowiki, parser

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from real_users import rank_auc  # noqa: E402

from jisik.read import TOP_SENTENCES  # noqa: E402

JUDGED = REPO / "docs" / "results" / "real-users-passages-judged.json"
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)  # what other thresholds would trade, on all questions
TRADED = ("hallucination_rate", "error_rate", "answered", "precision")


def label(record: dict, sentences_read: int) -> str | None:
    """"answerable" (a sentence the reader reads answers), "none" (none of those shown
    does), or None: unsure, description-only, or answered only where the reader does not read."""
    if record["unsure"] or record["no_span"]:
        return None
    if not record["answers"]:
        return "none"
    return "answerable" if any(a["read"] < sentences_read for a in record["answers"]) else None


def is_right(record: dict, doc: str, start: int, end: int) -> bool:
    """The answer (document, offsets) overlaps a judged answer."""
    for a in record["answers"]:
        judged_doc = record["passages"][record["read"][a["read"]][0]]["doc"]
        if "start" in a and judged_doc == doc and start < a["end"] and a["start"] < end:
            return True
    return False


def summarise(rows: list[dict], threshold: float) -> dict:
    none = [r for r in rows if r["label"] == "none"]
    answerable = [r for r in rows if r["label"] == "answerable"]
    answers = lambda r: r["span"] and r["confidence"] >= threshold  # noqa: E731
    answered = [r for r in rows if answers(r)]
    right = sum(r["right"] for r in answered)
    rate = lambda part, of: round(100 * part / of, 1) if of else None  # noqa: E731
    return {
        "questions": len(rows), "answerable": len(answerable), "none": len(none),
        "hallucination_rate": rate(sum(map(answers, none)), len(none)),
        "error_rate": rate(sum(not answers(r) for r in answerable), len(answerable)),
        "answered": len(answered), "right": right, "precision": rate(right, len(answered)),
        "confidence_auc_answerable": rank_auc([r["confidence"] if r["span"] else 0.0 for r in rows],
                                              [r["label"] == "answerable" for r in rows]),
    }


def main() -> None:
    import judge_passages as jp
    from train_neural_reader import judged_val

    from jisik.korean import normalize

    ap = parser(__doc__.split("\n")[0])
    add_kowiki_args(ap)
    ap.add_argument("--judged", default=str(JUDGED))
    args = ap.parse_args()
    data = data_dir(args)
    app, db = open_kowiki(args)
    reader = app.reader
    sentences_read = int(reader.neural_choice["sentences"]) if reader.neural is not None else TOP_SENTENCES
    questions = {q["id"]: q["question"] for q in jp.judged_questions(data)}
    rows, changed, left_out = [], 0, 0
    for qid, record in sorted(json.loads(Path(args.judged).read_text(encoding="utf-8"))["questions"].items()):
        kind = label(record, sentences_read)
        if kind is None:
            left_out += 1
            continue
        text = normalize(questions[qid]).strip()
        hits = jp.judged_hits(app, text, record)
        if hits is None:
            changed += 1
            continue
        answer = reader.answer(text, hits, 0.0)
        span = not answer.abstained
        rows.append({"id": qid, "label": kind, "span": span, "confidence": answer.confidence,
                     "right": span and is_right(record, answer.evidence.id, answer.evidence.start, answer.evidence.end),
                     "val": judged_val(qid)})
    threshold = reader.threshold
    print(json.dumps({
        "store": str(db), "threshold": round(threshold, 4), "sentences_read": sentences_read,
        "left_out_unsure_description_or_unread": left_out, "changed_passages_skipped": changed,
        "all": summarise(rows, threshold),
        "judged_val": summarise([r for r in rows if r["val"]], threshold),
        "thresholds": {str(t): {k: v for k, v in summarise(rows, t).items() if k in TRADED} for t in THRESHOLDS},
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
