"""How often the reader answers a question about an entity its documents never name.

    python bench/swapped_subjects.py [--models DIR]

Real users ask about entities a corpus lacks, and a reader that matches the *kind* of
question answers from a passage about a neighbour (`뉴질랜드는 몇 개의 섬으로` -> 83개, from
바누아투's article; docs/reader.md, "Real users' questions"). This measures that failure on
held-out KorQuAD questions (never trained or tuned on): the question's proper noun that its
gold passage names is swapped for a similar one that no retrieved passage names
(`scripts/train_neural_reader.py`'s subject swap, seed 13), then the engine's simulated
setting runs (BM25 top 5 over KorQuAD + NoMIRACL passages, the reader with its calibrated
abstention). Every answer to a swapped question is unsupported; the same questions
unswapped show what answering costs. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from common import REPO, data_dir, parser

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import train_neural_reader as tn  # noqa: E402
import train_reader as tr  # noqa: E402

from jisik.korean import normalize  # noqa: E402
from jisik.read import MODEL_DIR, Reader  # noqa: E402
from jisik.splits import is_heldout  # noqa: E402


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--models", default=str(MODEL_DIR), help="reader model folder (default: the shipped one)")
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--swap", choices=["near", "same-kind"], default="near",
                    help="the new name: near by USE (as the reader was trained) or of the same kind, by the "
                         "noun each kowiki article's first sentence predicates")
    args = ap.parse_args()
    data = data_dir(args)
    st = tr.load_setting(data, Path(args.cache))
    train_q = [q for q in st.kq_q if not is_heldout(q)]
    neighbours = tn.swap_neighbours(args.swap, train_q, st.qmorphs, data, Path(args.cache))
    rng = np.random.default_rng(13)
    reader = Reader.load(args.models, kind="neural")
    pairs = []
    for q in (q for q in st.kq_q if is_heldout(q)):
        text = normalize(q["question"])
        gold = st.by_id[q["gold_id"]]
        found = tn.swap_subject(neighbours, text, st.qmorphs[text], gold.get("title", "") + " " + gold["text"],
                                q["answers"][0], text + " " + gold["text"], rng)
        if found:
            swapped, new = found
            hits, _ = tr.make_hits(st.bm25.top(reader.question(swapped).terms, 5), st.by_id, st.pinfo)
            # a swapped-in name that a retrieved passage does name may really be answerable: skip it
            if any(tn.squash(new) in tn.squash(h.title + " " + h.text) for h in hits):
                continue
            pairs.append((q, text, swapped, hits))
    answered_swapped, answered_original, examples = [], [], []
    for q, text, swapped, hits in pairs:
        a = reader.answer(swapped, hits)
        answered_swapped.append(not a.abstained)
        orig_hits, _ = tr.make_hits(st.bm25.top(reader.question(text).terms, 5), st.by_id, st.pinfo)
        answered_original.append(not reader.answer(text, orig_hits).abstained)
        if not a.abstained and len(examples) < 10:
            examples.append({"question": swapped, "original": text, "answer": a.answer,
                             "confidence": round(a.confidence, 3), "title": a.evidence.title if a.evidence else None})
    print(json.dumps({
        "models": args.models, "swap": args.swap, "heldout_swapped_questions": len(pairs),
        "answered_swapped_pct": round(100 * float(np.mean(answered_swapped)), 1),
        "answered_original_pct": round(100 * float(np.mean(answered_original)), 1),
        "answered_swapped_examples": examples}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
