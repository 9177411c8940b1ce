#!/usr/bin/env python
"""Choose how the neural reader picks its answer, on validation articles only.

    python scripts/train_neural_reader.py --pack /tmp/reader-pack.npz
    python scripts/fit_neural_reader.py --pack /tmp/reader-pack.npz --holdout-val --out /tmp/reader-val
    python scripts/tune_neural_reader.py --model-dir /tmp/reader-val            # ~5 min, writes reader.json

The reader reads the best few sentences (by the sentence model), takes each one's best span
(up to three candidates per sentence) under a per-token length penalty, and scores each by
`span_logit + answerable * w_a + sentence_logit * w_s + agreement * w_t`, where agreement
says the span is the kind the question asks for (`jisik.read._agrees`: `몇 개` -> `27개`,
`언제` -> the whole date). This
script picks the number of sentences read, the length penalty and the weights. It uses the KorQuAD questions of the validation
articles (`train_reader.is_val_title`, part of the training articles) with a neural model
trained without them (`--holdout-val`), so neither the choice nor the model ever sees a
held-out question. Retrieval is simulated as in scripts/train_reader.py (BM25 top 5 over
KorQuAD + NoMIRACL passages).

The choice maximises EM + F1 of the top span (no abstention); among settings within 0.2 of the
best, the one that reads fewer sentences (faster) wins. The result goes to `neural_choice` in
`--write`/reader.json, where `jisik.read.Reader` reads it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_reader as tr  # noqa: E402

from jisik.korean import normalize  # noqa: E402
from jisik.neural_reader import MODEL_FILE  # noqa: E402
from jisik.read import MODEL_DIR, N_NEURAL_ABSTAIN_FEATURES, Reader, exact_match, f1, normalize_answer  # noqa: E402
from jisik.reader_features import analyze_question  # noqa: E402
from jisik.splits import article_title, is_heldout  # noqa: E402

SENTENCES = (4, 5, 6)
LENGTH_PENALTY = (0.0, 0.1, 0.2, 0.3, 0.5)
ANSWERABLE = (0.0, 0.5)
SENTENCE = (0.5, 1.0, 1.5)
AGREEMENT = (0.0, 0.5, 1.0, 2.0, 4.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--model-dir", required=True, help="a neural_reader.npz trained with --holdout-val")
    ap.add_argument("--write", default=str(MODEL_DIR), help="reader.json to update with the choice")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    target = Path(args.write) / "reader.json"
    if not target.exists():
        sys.exit(f"{target} not found: --write must be a model folder with reader.json (default {MODEL_DIR})")
    st = tr.load_setting(Path(args.data), Path(args.cache))
    kq_q, by_id, pinfo, qmorphs, bm25 = st.kq_q, st.by_id, st.pinfo, st.qmorphs, st.bm25
    val_q = [q for q in kq_q if not is_heldout(q) and tr.is_val_title(article_title(q["gold_id"]))]
    if args.limit:
        val_q = val_q[:args.limit]

    with tempfile.TemporaryDirectory() as tmp:
        # the shipped feature models + the validation neural model
        for f in MODEL_DIR.iterdir():
            if f.is_file():
                shutil.copy(f, tmp)
        shutil.copy(Path(args.model_dir) / MODEL_FILE, tmp)
        meta = json.loads((Path(tmp) / "reader.json").read_text(encoding="utf-8"))
        # choosing needs neither: placeholders so that a reader.json without them loads
        meta.setdefault("neural_choice", {"answerable": 0.0, "sentence": 0.0, "agreement": 0.0,
                                          "sentences": max(SENTENCES), "length_penalty": 0.0})
        meta.setdefault("abstain_neural", {"coef": [0.0] * N_NEURAL_ABSTAIN_FEATURES, "bias": 0.0, "threshold": 0.5})
        (Path(tmp) / "reader.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        reader = Reader.load(tmp, kind="neural")

    t0 = time.time()
    cases = []
    for q in val_q:
        text = normalize(q["question"])
        qi = analyze_question(text, qmorphs[text])
        hits, infos = tr.make_hits(bm25.top(qi.terms, 5), by_id, pinfo)
        if not hits:
            continue
        sfeats, slog = reader.rank_sentences(qi, hits, infos)
        read = slog[:max(SENTENCES)]
        reading = reader.neural.forward(reader.neural.question_tokens(qi.text), *reader._neural_inputs(hits, infos, read))
        cases.append((q, qi, infos, sfeats, slog, read, reading))
    print(f"read {len(val_q)} validation questions in {time.time() - t0:.0f}s", file=sys.stderr)

    rows = []
    for lp in LENGTH_PENALTY:
        spans_of = [reader.neural_readings(c[1], c[2], c[5], c[6], lp) for c in cases]
        for n, wa, ws, wt in itertools.product(SENTENCES, ANSWERABLE, SENTENCE, AGREEMENT):
            em = f = ev = 0.0
            for (q, qi, infos, sfeats, slog, _, _), readings in zip(cases, spans_of):
                _, spans, _ = reader.choose_neural(qi, infos, sfeats, slog, [r for r in readings if r.rank < n],
                                                   {"answerable": wa, "sentence": ws, "agreement": wt})
                if not spans:
                    continue
                b = spans[0]
                pred = infos[b.passage].text[b.start:b.end]
                s = infos[b.passage].sentences[b.sentence]
                sent = normalize_answer(infos[b.passage].text[s.start:s.end])
                em += exact_match(pred, q["answers"])
                f += f1(pred, q["answers"])
                ev += any(normalize_answer(a) in sent for a in q["answers"])
            k = len(val_q)
            rows.append({"sentences": n, "length_penalty": lp, "answerable": wa, "sentence": ws, "agreement": wt,
                         "EM": round(100 * em / k, 2), "F1": round(100 * f / k, 2), "evidence": round(100 * ev / k, 2)})
    best = max(r["EM"] + r["F1"] for r in rows)
    chosen = min((r for r in rows if r["EM"] + r["F1"] >= best - 0.2),
                 key=lambda r: (r["sentences"], -(r["EM"] + r["F1"])))
    for r in sorted(rows, key=lambda r: -(r["EM"] + r["F1"]))[:15]:
        print(json.dumps(r))
    base = next(r for r in rows if r["sentences"] == 5 and r["answerable"] == 0 and r["sentence"] == 1.0
                and r["length_penalty"] == 0.2 and r["agreement"] == 0)
    print("v2's weights, without agreement:", json.dumps(base))
    print("chosen:", json.dumps(chosen))
    meta = json.loads(target.read_text(encoding="utf-8"))
    meta["neural_choice"] = {"answerable": chosen["answerable"], "sentence": chosen["sentence"],
                             "agreement": chosen["agreement"],
                             "sentences": chosen["sentences"], "length_penalty": chosen["length_penalty"],
                             "chosen_on": f"{len(val_q)} validation questions (train_reader.is_val_title), "
                                          f"val EM {chosen['EM']} F1 {chosen['F1']} evidence {chosen['evidence']}"}
    target.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    print(f"wrote neural_choice to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
