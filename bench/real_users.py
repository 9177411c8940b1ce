"""How often are `ask`'s answers to real users' questions right? Judged answers, kowiki-20k.

    python bench/real_users.py [--parts 5] [--db STORE] [--unjudged OUT.tsv]

MIRACL-ko and Mr. TyDi-ko questions were typed by people who had not seen an answer, and
neither set has answer strings. So we judged the answers by reading them:
`docs/results/real-users-judged.json` holds a judgement (right / partly / wrong) for every
span answer the reader gave to MIRACL-ko's 868 questions and Mr. TyDi-ko's 303 dev and 421
test questions on the kowiki-20k store (docs/benchmarks.md §3), keyed by question id, cited
document and a hash of the answer. This bench asks every question again as `jisik ask
--no-memory` does and looks each answer up. An answer that changed (a new reader, a new
store) is counted as unjudged, and `--unjudged` writes those out to be judged, so a change
can be measured on real users, not on a proxy (docs/judging.md says how to judge them and
add the judgements). `--parts 5` asks them on the kowiki-100k store (docs/benchmarks.md
§3b), whose differing answers are judged too.

Answers are read at min_confidence 0 and the shipped threshold is applied here, so one pass
gives both what users get and what the abstention declines. Reported per set (MIRACL-ko
halves A and B by `jisik.splits.miracl_half`; Mr. TyDi-ko dev and test; the confidence
calibration was fitted on half A and dev only): the share declined as
yes/no or definition questions, the share answered, the precision of the answers (right
among judged answers), the right answers the threshold declines, how well the confidence
ranks right above wrong (AUC) and a reliability table (`jisik.eval.reliability`). Prints
one JSON object.
"""

from __future__ import annotations

import json
import sys

from common import REPO, data_dir, add_kowiki_args, open_kowiki, parser

sys.path.insert(0, str(REPO))

from jisik.eval import real_user_answers, reliability  # noqa: E402
from jisik.splits import miracl_half  # noqa: E402

JUDGED = REPO / "docs" / "results" / "real-users-judged.json"


def rank_auc(scores: list[float], positive: list[bool]) -> float | None:
    """Probability that a right answer outranks a wrong one (ties count half)."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 3)


def summarise(rows: list[dict], threshold: float) -> dict:
    spans = [r for r in rows if r["kind"] == "span"]
    judged = [r for r in spans if r["judged"] is not None]
    answered = [r for r in judged if r["confidence"] >= threshold]
    right = sum(r["judged"] == "right" for r in answered)
    partly = sum(r["judged"] == "partly" for r in answered)
    return {
        "questions": len(rows),
        **{kind: sum(r["kind"] == kind for r in rows) for kind in ("yes_no", "why", "definition", "none")},
        "span_answers": len(spans),
        "unjudged": len(spans) - len(judged),
        "answered": len(answered),
        "answered_share": round(len(answered) / len(rows), 4) if rows else None,
        "right": right,
        "partly": partly,
        "precision": round(right / len(answered), 4) if answered else None,
        "right_or_partly": round((right + partly) / len(answered), 4) if answered else None,
        "right_declined": sum(r["confidence"] < threshold and r["judged"] == "right" for r in judged),
        "wrong_answered": len(answered) - right - partly,
        "confidence_auc": rank_auc([r["confidence"] for r in judged], [r["judged"] == "right" for r in judged]),
        "confidence_reliability": reliability([r["confidence"] for r in judged],
                                              [float(r["judged"] == "right") for r in judged]),
    }


def main() -> None:
    ap = parser(__doc__.split("\n")[0])
    add_kowiki_args(ap)
    ap.add_argument("--judged", default=str(JUDGED))
    ap.add_argument("--unjudged", default=None, help="write the span answers without a judgement here (TSV)")
    args = ap.parse_args()
    data = data_dir(args)
    app, db = open_kowiki(args)
    rows = real_user_answers(app, data, args.judged)
    if args.unjudged:
        with open(args.unjudged, "w", encoding="utf-8") as w:
            for r in rows:
                if r["kind"] == "span" and r["judged"] is None:
                    fields = [r["set"], r["id"], r["evidence"]["id"], r["question"], r["answer"],
                              r["evidence"]["title"], r["evidence"]["sentence"]]
                    w.write("\t".join(" ".join(str(x).split()) for x in fields) + "\n")
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(f"miracl_{miracl_half(r['id'])}" if r["set"] == "miracl" else r["set"], []).append(r)
    threshold = app.reader.threshold
    result = {"store": str(db), "threshold": round(threshold, 4),
              "calibrated": app.reader.calibration is not None,
              **{g: summarise(rows, threshold) for g, rows in sorted(groups.items())}}
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
