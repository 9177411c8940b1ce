"""Does `ask` cite the right page for real users' questions? MIRACL-ko on kowiki-20k.

    python bench/miracl_citations.py [--db STORE] [--limit N]

MIRACL-ko's questions were typed by people who had not seen the answer, and each comes with
the Wikipedia pages judged relevant to it. There are no answer strings, so this cannot say
whether an answer is right; it says whether the page the answer cites is one judged
relevant, which catches the failure real users see most: an answer about another subject
(`일본의 화폐 단위` -> 굴덴, from 오스트리아-헝가리 크로네; docs/reader.md). A page nobody judged
may still answer, so "cites a relevant page" is a lower bound on "cites a supporting page".
A yes/no question (15–16 % of these) is declined with related sentences (`jisik.read.POLAR`),
a definition question (`X란 무엇인가?`, 3 %) with the opening sentence of X's article
(`jisik.read.DEFINITION`); the bench counts those apart, with how often the first cited
sentence is on a relevant page.

The store is the kowiki-20k one of docs/benchmarks.md §3 (`--db`); only questions with a
relevant page in it count, split into halves by sha1(id) parity (half A, even, is where
reader settings may be chosen; half B only confirms). Every question is answered as
`jisik ask --no-memory` does (hybrid retrieval, 5 passages, the calibrated abstention).
Prints one JSON object.
"""

from __future__ import annotations

import json
import sys

from common import REPO, data_dir, add_kowiki_args, open_kowiki, parser

sys.path.insert(0, str(REPO))

from jisik.read import DEFINITION, POLAR  # noqa: E402
from jisik.splits import miracl_half  # noqa: E402

# declines that still cite sentences, by their reason
CITING_DECLINES = {POLAR: "yes_no", DEFINITION: "definition"}


def main() -> None:
    ap = parser(__doc__.split("\n")[0])
    add_kowiki_args(ap)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    data = data_dir(args)
    app, db = open_kowiki(args)
    present = set(app.store.doc_ids())
    questions = []
    with open(data / "miracl_ko" / "questions.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            relevant = {str(p) for p in q["relevant_pages"]} & present
            if relevant:
                questions.append({**q, "relevant": relevant, "half": miracl_half(q["id"])})
    if args.limit:
        questions = questions[:args.limit]
    counts = {h: {"questions": 0, "answered": 0, "answered_citing_relevant": 0,
                  **{f"{kind}{part}": 0 for kind in CITING_DECLINES.values() for part in ("", "_citing_relevant")}}
              for h in ("A", "B")}
    latencies = []
    for q in questions:
        out = app.ask(q["question"], use_memory=False)
        latencies.append(out["latency_ms"])
        c = counts[q["half"]]
        c["questions"] += 1
        if not out["abstained"]:
            c["answered"] += 1
            c["answered_citing_relevant"] += out["evidence"]["id"] in q["relevant"]
        elif out.get("reason") in CITING_DECLINES:
            kind = CITING_DECLINES[out["reason"]]
            c[kind] += 1
            c[f"{kind}_citing_relevant"] += bool(out["citations"]) and out["citations"][0]["id"] in q["relevant"]
    result = {"store": str(db), "questions": len(questions)}
    for h, c in counts.items():
        n = c["questions"] or 1
        result[f"half_{h}"] = {"questions": c["questions"], "answered": round(c["answered"] / n, 4),
                               "answered_citing_relevant": round(c["answered_citing_relevant"] / n, 4),
                               "precision": round(c["answered_citing_relevant"] / max(1, c["answered"]), 4)}
        for kind in CITING_DECLINES.values():
            result[f"half_{h}"][f"{kind}_declined"] = round(c[kind] / n, 4)
            result[f"half_{h}"][f"{kind}_first_citation_relevant"] = round(
                c[f"{kind}_citing_relevant"] / max(1, c[kind]), 4)
    latencies.sort()
    result["latency_ms_p50"] = latencies[len(latencies) // 2] if latencies else None
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
