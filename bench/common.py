"""Shared pieces of the benchmarks: where the data is, and the corpora they build."""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def data_dir(args: argparse.Namespace) -> Path:
    """The data folder, or exit 0 with a clear message when it is absent (CI without data)."""
    data = Path(args.data)
    if not (data / "korquad" / "questions.jsonl").exists():
        print(f"SKIP: evaluation data not found in {data} (point --data at a copy of shared/data)")
        sys.exit(0)
    return data


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with korquad/, kowiki/, ... (default ../shared/data)")
    p.add_argument("--work", default="/tmp/jisik-bench", help="scratch folder for stores and derived files")
    return p


KOWIKI_PARTS = 5  # kowiki/ holds 100,000 articles in 5 parts of 20,000


def add_kowiki_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--parts", type=int, default=1, choices=range(1, KOWIKI_PARTS + 1),
                   help="kowiki parts in the corpus: 1 = kowiki-20k (docs/benchmarks.md §3, default), "
                        "5 = all 100,000 articles (§3b)")
    p.add_argument("--db", default=None, help="the store (default WORK/kowiki20k-lex.db, or kowiki100k-lex.db with --parts 5)")


def kowiki_store(work: Path, parts: int) -> Path:
    """Where the store of the first `parts` kowiki parts lives: kowiki20k-lex.db for one part."""
    return work / f"kowiki{20 * parts}k-lex.db"


def open_kowiki(args: argparse.Namespace):
    """The kowiki store of docs/benchmarks.md §3 (`--db`, else by `--parts`), opened and
    warmed up, and its path; exits saying how to build it when it is absent."""
    from jisik.app import Jisik

    db = Path(args.db) if args.db else kowiki_store(Path(args.work), args.parts)
    if not db.exists():
        corpus = Path(args.work) / f"kowiki-{args.parts}part-plus-korquad.jsonl"
        sys.exit(f"{db} not found: build it first with `python bench/retrieval.py --setting kowiki "
                 f"--parts {args.parts}`, or `jisik ingest {corpus} --db {db} --encoder none` "
                 "once that file exists (docs/benchmarks.md §3)")
    app = Jisik.open(db, create=False)
    app.warm_up()
    return app, db


def korquad_titles(data: Path) -> set[str]:
    titles = set()
    with open(data / "korquad" / "passages.jsonl", encoding="utf-8") as f:
        for line in f:
            titles.add(json.loads(line)["title"])
    return titles


def kowiki_subset(data: Path, work: Path, parts: int = 1) -> Path:
    """The first `parts` kowiki parts plus every article whose title is a KorQuAD title.

    Written to the scratch folder (never the repository), once.
    """
    out = work / f"kowiki-{parts}part-plus-korquad.jsonl"
    if out.exists():
        return out
    work.mkdir(parents=True, exist_ok=True)
    titles = korquad_titles(data)
    files = sorted((data / "kowiki").glob("kowiki-2022-*.jsonl.gz"))
    seen = set()
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as w:
        for i, path in enumerate(files):
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    if i < parts:
                        w.write(line)
                        seen.add(json.loads(line)["id"])
                    else:
                        rec = json.loads(line)
                        if rec["title"] in titles and rec["id"] not in seen:
                            w.write(line)
                            seen.add(rec["id"])
    tmp.rename(out)
    return out
