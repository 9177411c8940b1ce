"""Make `confidence` the chance that an answer is right, on real users' questions.

    python scripts/calibrate_confidence.py [--db STORE] [--data DIR] [--dry-run]

The abstention model is fitted to tell NoMIRACL's answerable queries from unanswerable ones
and KorQuAD passages that hold the answer from ones that do not; its probability is not the
chance of a right answer. On real users' questions an answer at 0.93 was right about 4
times in 10 (docs/reader.md). This fits a Platt map (a logistic fit of "judged right" on the
abstention logit: a slope and an intercept) on the judged answers of
docs/results/real-users-judged.json for MIRACL-ko half A and Mr. TyDi-ko dev, reports the
calibration error on MIRACL-ko half B and Mr. TyDi-ko test (never fitted on) before and after,
and writes the map
into jisik/models/reader.json (`abstain_neural.calibration`). The map is monotone and the
threshold is mapped with it, so no answer-or-decline decision changes. Refitting the
abstention model (scripts/train_reader.py --abstain-only) drops the map; run this again after.

The store is the kowiki-20k one the answers were judged on (docs/benchmarks.md §3). An answer
that changed since it was judged is left out and counted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jisik.app import Jisik  # noqa: E402
from jisik.eval import real_user_answers, reliability  # noqa: E402
from jisik.read import MODEL_DIR  # noqa: E402
from jisik.splits import miracl_half  # noqa: E402

JUDGED = ROOT / "docs" / "results" / "real-users-judged.json"


def platt(logits: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of an unregularised logistic fit of `right` on `logits`."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logits[:, None], right)
    return float(fit.coef_[0][0]), float(fit.intercept_[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="/tmp/jisik-bench/kowiki20k-lex.db", help="the kowiki-20k store")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--judged", default=str(JUDGED))
    ap.add_argument("--dry-run", action="store_true", help="report, do not write reader.json")
    args = ap.parse_args()
    if not Path(args.db).exists():
        sys.exit(f"{args.db} not found: build the kowiki-20k store first (docs/benchmarks.md §3)")
    app = Jisik.open(args.db, create=False)
    app.warm_up()
    reader = app.reader
    if reader.kind != "neural":
        sys.exit("the judged answers are the neural reader's: calibrate with JISIK_READER unset")
    reader.calibration = None  # fit on the raw abstention probability
    rows = real_user_answers(app, args.data, args.judged)
    spans = [r for r in rows if r["kind"] == "span" and r["confidence"] > 0]
    judged = [r for r in spans if r["judged"] is not None]
    if not judged:
        sys.exit(f"none of the answers matches a judgement in {args.judged}: the reader or the store changed")
    logit = np.array([math.log(r["confidence"] / (1 - r["confidence"])) for r in judged])
    right = np.array([r["judged"] == "right" for r in judged])
    fit = np.array([r["set"] == "mrtydi_dev" or (r["set"] == "miracl" and miracl_half(r["id"]) == "A")
                    for r in judged])
    slope, intercept = platt(logit[fit], right[fit])
    reader.calibration = (slope, intercept)
    calibrated = np.array([reader.calibrate(r["confidence"]) for r in judged])
    raw = np.array([r["confidence"] for r in judged])
    meta_path = MODEL_DIR / "reader.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    report = {
        "slope": round(slope, 4), "intercept": round(intercept, 4),
        "fitted_on": int(fit.sum()), "unjudged": len(spans) - len(judged),
        "threshold": {"raw": meta["abstain_neural"]["threshold"],
                      "calibrated": round(reader.calibrate(meta["abstain_neural"]["threshold"]), 4)},
    }
    for name, held_out in (("miracl_B", np.array([r["set"] == "miracl" for r in judged]) & ~fit),
                           ("mrtydi_test", np.array([r["set"] == "mrtydi_test" for r in judged]))):
        report[name] = {"answers": int(held_out.sum()), "before": reliability(raw[held_out], right[held_out]),
                        "after": reliability(calibrated[held_out], right[held_out])}
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if not args.dry_run:
        meta["abstain_neural"]["calibration"] = {
            "slope": slope, "intercept": intercept,
            "fitted_on": f"{report['fitted_on']} judged answers to MIRACL-ko half A and Mr. TyDi-ko dev questions "
                         f"(docs/results/real-users-judged.json), kowiki-20k store"}
        meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        print(f"wrote the calibration into {meta_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
