"""Add judged answers to docs/results/real-users-judged.json (docs/judging.md).

    python bench/add_judgements.py --unjudged UNJUDGED.tsv OUT.json... [--judges TEXT --write]

UNJUDGED.tsv is what `bench/real_users.py --unjudged` wrote; each OUT.json is one judge's
list of {"set", "id", "judged", "kind"?, "note"?}. Every TSV line must get exactly one
valid judgement, or nothing is written: a judgement lost in a merge would silently turn into
an unjudged answer. Without --write it only checks and prints the counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from common import REPO

sys.path.insert(0, str(REPO))

from jisik.eval import judged_answer_key  # noqa: E402

JUDGED = REPO / "docs" / "results" / "real-users-judged.json"
JUDGEMENTS = {"right", "partly", "wrong"}
WRONG_KINDS = {"other_subject", "wrong_slot", "no_span", "outdated_or_false", "other"}


def read_unjudged(path: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 7:
            sys.exit(f"{path}:{n}: expected 7 tab-separated fields (set, id, doc, question, answer, title, "
                     f"sentence), got {len(fields)}")
        set_name, qid, doc, _question, answer, _title, _sentence = fields
        rows[(set_name, qid)] = {"set": set_name, "id": qid, "doc": doc,
                                 "answer_sha1": judged_answer_key(doc, answer)}
    return rows


def check(unjudged: dict[tuple[str, str], dict], outputs: list[Path]) -> tuple[list[dict], list[str]]:
    """The judged rows, in TSV order, and every problem found."""
    problems, given = [], {}
    for path in outputs:
        for j in json.loads(path.read_text(encoding="utf-8")):
            key = (str(j.get("set")), str(j.get("id")))
            where = f"{path.name}: {key[0]}/{key[1]}"
            if key not in unjudged:
                problems.append(f"{where}: not a line of the TSV")
            elif key in given:
                problems.append(f"{where}: judged twice")
            elif j.get("judged") not in JUDGEMENTS:
                problems.append(f"{where}: judged must be one of {sorted(JUDGEMENTS)}, got {j.get('judged')!r}")
            elif (j["judged"] == "wrong") != ("kind" in j) or ("kind" in j and j["kind"] not in WRONG_KINDS):
                problems.append(f"{where}: a wrong answer needs a kind from {sorted(WRONG_KINDS)}, "
                                f"and only a wrong one has a kind (got {j.get('kind')!r})")
            else:
                given[key] = j
    problems += [f"{s}/{i}: no judgement" for s, i in unjudged if (s, i) not in given]
    rows = [{**row, "judged": given[key]["judged"], **({"kind": given[key]["kind"]} if "kind" in given[key] else {})}
            for key, row in unjudged.items() if key in given]
    return rows, problems


def write(path: Path, rows: list[dict], judges: str) -> None:
    """Appends, keeping the file's layout: a header object, then one answer per line."""
    record = json.loads(path.read_text(encoding="utf-8"))
    known = {(a["set"], a["id"], a["answer_sha1"]) for a in record["answers"]}
    record["answers"] += [r for r in rows if (r["set"], r["id"], r["answer_sha1"]) not in known]
    record["judges"] = record["judges"].rstrip(".") + "; " + judges
    counts: dict[str, Counter] = {}
    for a in record["answers"]:
        counts.setdefault(a["set"], Counter())[a["judged"]] += 1
    record["counts"] = {s: dict(c) for s, c in counts.items()}
    answers = record.pop("answers")
    head = json.dumps(record, ensure_ascii=False, indent=1)[:-2]
    lines = ",\n".join(json.dumps(a, ensure_ascii=False) for a in answers)
    path.write_text(f'{head},\n "answers": [\n{lines}\n ]\n}}\n', encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outputs", nargs="+", type=Path, help="the judges' JSON files")
    ap.add_argument("--unjudged", type=Path, required=True, help="the TSV of bench/real_users.py --unjudged")
    ap.add_argument("--judged", type=Path, default=JUDGED)
    ap.add_argument("--judges", default=None, help="who judged these, appended to the file's `judges` note")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows, problems = check(read_unjudged(args.unjudged), args.outputs)
    counts = Counter((r["set"], r["judged"]) for r in rows)
    print(json.dumps({"judged": len(rows), "problems": len(problems),
                      "counts": {f"{s} {j}": n for (s, j), n in sorted(counts.items())}}, ensure_ascii=False))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit("nothing written: fix the problems above and run again")
    if args.write:
        if not args.judges:
            sys.exit("--write needs --judges: say who judged these answers, as the file records for every batch")
        write(args.judged, rows, args.judges)


if __name__ == "__main__":
    main()
