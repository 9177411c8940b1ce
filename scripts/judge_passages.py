#!/usr/bin/env python
"""Label which sentences answer real users' questions, as `ask` reads them: reader training data.

    python scripts/judge_passages.py export --out /tmp/judge --batches 8    # batches to judge
    python scripts/judge_passages.py add /tmp/judge/out_*.json --instances /tmp/judge/instances.json   # check
    python scripts/judge_passages.py add ... --judges "..." --write         # -> docs/results/

The neural reader learned from KorQuAD, whose questions were written looking at the passage;
real users' questions were not, and on them it answers from a passage about a neighbouring
subject (docs/reader.md, "Real users' questions"). These labels show it what real users ask
and which of the passages `ask` reads do (and do not) answer it.

Questions: Mr. TyDi-ko train, except MIRACL-ko half B (the two share ids; half B and Mr.
TyDi-ko dev and test stay evaluation-only) and except yes/no, `왜` and definition questions,
which the reader does not answer with a span. For each, the passages `Jisik.ask` reads on the
kowiki-20k store (docs/benchmarks.md §3): the top `READ_PASSAGES` hits, long ones cut to the
window it reads, minus the KorQuAD held-out and validation articles (never trained on).

`export` writes `batch_NN.md` (the 8 sentences the reader's sentence model ranks first over
those passages, each with its title, numbered: the reader reads the first 5) and
`instances.json` (what was shown, to check the judgements against) to `--out`, outside the
repository. Judges follow docs/judging.md, "Judging passages". `add` checks every judgement
(each question of the batch judged once, sentence numbers in range, the answer a substring of
its sentence) and, with `--write`, stores `docs/results/real-users-passages-judged.json`: per
question id, the passages read (document, version, window offsets, a hash of the text) and
the sentences shown (passage, sentence) and the answers (which of them, document offsets);
no question or passage text.
`scripts/train_neural_reader.py --judged` reads it back from the same store.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from jisik.app import READ_PASSAGES, READ_WINDOW_CHARS, read_window  # noqa: E402
from jisik.documents import Hit  # noqa: E402
from jisik.korean import normalize  # noqa: E402
from jisik.splits import is_heldout_title, miracl_half  # noqa: E402

JUDGED = ROOT / "docs" / "results" / "real-users-passages-judged.json"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_DB = Path("/tmp/jisik-bench/kowiki20k-lex.db")
SENTENCES = 8  # shown per question: the pack's group size (train_neural_reader --sentences)


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def judged_questions(data: Path) -> list[dict]:
    """Mr. TyDi-ko train questions outside MIRACL-ko half B, in file order."""
    miracl = set()
    with open(data / "miracl_ko" / "questions.jsonl", encoding="utf-8") as f:
        for line in f:
            miracl.add(str(json.loads(line)["id"]))
    out = []
    with open(data / "mrtydi_ko" / "questions.train.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if str(q["id"]) not in miracl or miracl_half(str(q["id"])) == "A":
                out.append({"id": str(q["id"]), "question": q["question"]})
    return out


def is_trainable_title(title: str) -> bool:
    """Not a KorQuAD held-out or validation article (the reader is measured on those)."""
    import train_reader as tr

    base = title.split(" (")[0]
    return not any(is_heldout_title(t) or tr.is_val_title(t) for t in {title, base})


def read_hits(app, question: str) -> list[Hit] | None:
    """The passages `Jisik.ask` reads for a span question (None for the kinds it answers
    otherwise: yes/no, `왜`, definitions), without held-out and validation articles."""
    q = app.reader.question(question)
    if q.polar or q.asks == "reason" or q.defines or not q.term_set:
        return None
    hits = app.retriever.search(question, READ_PASSAGES, collapse=False)
    if any(len(h.text) > READ_WINDOW_CHARS for h in hits):
        terms = app.retriever.query_terms(question)
        hits = [read_window(h, terms) for h in hits]
    return [h for h in hits if is_trainable_title(h.title)]


def judged_hits(app, question: str, record: dict) -> list[Hit] | None:
    """The passages `ask` reads for `question` now, or None when they are not the ones its
    judged `record` was made on (another store, another retriever)."""
    hits = read_hits(app, question) or []
    if [(h.id, text_hash(h.text)) for h in hits] != [(p["doc"], p["sha1"]) for p in record["passages"]]:
        return None
    return hits


def instance(app, q: dict, sentences: int = SENTENCES) -> dict | None:
    """What a judge sees of one question: the `sentences` best sentences of the passages
    `ask` reads, ranked by the reader's sentence model (it reads the first few of them)."""
    text = normalize(q["question"]).strip()
    hits = read_hits(app, text)
    if not hits:
        return None
    infos = [app.reader.passage(h.text) for h in hits]
    ranked = app.reader.rank_sentences(app.reader.question(text), hits, infos)[1][:sentences]
    passages = [{"doc": h.id, "version": h.version, "start": h.start, "end": h.end, "sha1": text_hash(h.text),
                 "title": h.title, "text": h.text} for h in hits]
    read = [[pi, si, infos[pi].sentences[si].start, infos[pi].sentences[si].end] for _, pi, si in ranked]
    return {"qid": q["id"], "question": text, "passages": passages, "read": read}


def sentence_text(it: dict, n: int) -> str:
    pi, _, a, b = it["read"][n]
    return it["passages"][pi]["text"][a:b]


def batch_text(items: list[dict]) -> str:
    out = []
    for it in items:
        out.append(f"## Q {it['qid']}: {it['question']}")
        for n, (pi, _, _, _) in enumerate(it["read"]):
            out.append(f"S{n + 1}. [{it['passages'][pi]['title']}] {sentence_text(it, n)}")
        out.append("")
    return "\n".join(out)


def export(args: argparse.Namespace) -> None:
    from jisik.app import Jisik

    app = Jisik.open(args.db, create=False)
    app.warm_up()
    qs = judged_questions(Path(args.data))
    items, skipped = [], 0
    for q in qs:
        it = instance(app, q)
        if it is None:
            skipped += 1
        else:
            items.append(it)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "instances.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    size = -(-len(items) // args.batches)
    for b in range(args.batches):
        part = items[b * size:(b + 1) * size]
        (out / f"batch_{b:02d}.md").write_text(batch_text(part), encoding="utf-8")
        (out / f"batch_{b:02d}.ids").write_text("\n".join(it["qid"] for it in part), encoding="utf-8")
    print(json.dumps({"questions": len(qs), "instances": len(items), "skipped": skipped,
                      "batches": args.batches, "out": str(out)}))


def check(judgements: list[dict], items: dict[str, dict]) -> list[str]:
    """Problems with a batch's judgements, as messages (empty when it can be added)."""
    problems, seen = [], set()
    for j in judgements:
        qid = str(j.get("qid"))
        it = items.get(qid)
        if it is None:
            problems.append(f"{qid}: not an exported question")
            continue
        if qid in seen:
            problems.append(f"{qid}: judged twice")
        seen.add(qid)
        for a in j.get("judged", []):
            n, answer = a.get("s"), a.get("answer")
            if not (isinstance(n, int) and 1 <= n <= len(it["read"])):
                problems.append(f"{qid}: no sentence S{n}")
            elif answer is not None and (not answer or answer not in sentence_text(it, n - 1)):
                problems.append(f"{qid}: {answer!r} is not in S{n}")
    return problems


def record(j: dict, it: dict) -> dict:
    answers = []
    for a in j.get("judged", []):
        pi, _, lo, _ = it["read"][a["s"] - 1]
        row = {"read": a["s"] - 1}
        if a.get("answer"):
            k = it["passages"][pi]["start"] + lo + sentence_text(it, a["s"] - 1).index(a["answer"])
            row.update(start=k, end=k + len(a["answer"]))
        answers.append(row)
    return {"passages": [{k: p[k] for k in ("doc", "version", "start", "end", "sha1")} for p in it["passages"]],
            "read": [[pi, si] for pi, si, _, _ in it["read"]], "answers": answers,
            "no_span": bool(j.get("no_span")), "unsure": bool(j.get("unsure"))}


def add(args: argparse.Namespace) -> None:
    items = {it["qid"]: it for it in json.loads(Path(args.instances).read_text(encoding="utf-8"))}
    judgements, problems = [], []
    for path in args.files:
        rows = load_rows(Path(path))
        problems += [f"{path}: {m}" for m in check(rows, items)]
        judgements += rows
    dup = len(judgements) - len({str(j["qid"]) for j in judgements})
    if dup:
        problems.append(f"{dup} questions judged in more than one file")
    if problems:
        sys.exit("not added, fix these first:\n" + "\n".join(problems))
    out = json.loads(JUDGED.read_text(encoding="utf-8")) if JUDGED.exists() else {"judges": [], "questions": {}}
    for j in judgements:
        out["questions"][str(j["qid"])] = record(j, items[str(j["qid"])])
    answered = sum(bool(r["answers"]) for r in out["questions"].values())
    summary = {"judged": len(judgements), "total": len(out["questions"]), "with_an_answering_sentence": answered}
    if args.write:
        if args.judges and args.judges not in out["judges"]:
            out["judges"].append(args.judges)
        out["store"] = args.store_note
        JUDGED.write_text(json.dumps(out, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        summary["wrote"] = str(JUDGED)
    print(json.dumps(summary))


def load_rows(path: Path) -> list[dict]:
    """A judge's file: a JSON list, or one JSON object per line."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="write the batches to judge")
    ex.add_argument("--data", default=str(DEFAULT_DATA))
    ex.add_argument("--db", default=str(DEFAULT_DB), help="the kowiki-20k store (docs/benchmarks.md §3)")
    ex.add_argument("--out", required=True, help="a scratch folder outside the repository")
    ex.add_argument("--batches", type=int, default=8)
    ad = sub.add_parser("add", help="check judgements and add them")
    ad.add_argument("files", nargs="+")
    ad.add_argument("--instances", required=True, help="the instances.json that export wrote")
    ad.add_argument("--judges", default="", help="who judged (stored with the labels)")
    ad.add_argument("--store-note", default="kowiki-20k lexical store, docs/benchmarks.md §3")
    ad.add_argument("--write", action="store_true")
    args = ap.parse_args()
    export(args) if args.cmd == "export" else add(args)


if __name__ == "__main__":
    main()
