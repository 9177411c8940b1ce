"""Training the neural reader end to end, tiny: pack -> fit (torch) -> the numpy runtime.

Skipped without torch (a training-only dependency: `pip install -e ".[train]"`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from train_neural_reader import (  # noqa: E402
    ANSWERABLE, ARTICLE_REMOVED, CLOZE, JUDGED, NOMIRACL, SWAPPED, Pack, answer_positions, base_weights)

from jisik.e5 import load_weights  # noqa: E402
from jisik.neural_reader import SpanModel, encode_pair, title_ids  # noqa: E402

CASES = [  # question, answer sentence, answer, distractor sentence, the question about another subject
    ("가람시 시청이 문을 연 날짜는?", "가람시 시청은 1987년 3월 14일 문을 열었다.", "1987년 3월 14일",
     "은빛강은 북부 산맥에서 발원하여 서해로 흐르는 강이다.", "나래시 시청이 문을 연 날짜는?"),
    ("한빛 리그 최다 홈런 기록 보유자는 누구인가?", "한빛 리그 최다 홈런 기록은 박서준이 세웠다.", "박서준",
     "가람시의 인구는 2020년에 12만 명이었다.", "누리 리그 최다 홈런 기록 보유자는 누구인가?"),
]


def encode(w, question, sentence, answer=None):
    enc = encode_pair(w, w.tokenizer.tokenize(question), sentence, title_ids(w, "문서"))
    k = sentence.find(answer) if answer else -1
    return enc, answer_positions(enc, [(k, k + len(answer))] if k >= 0 else [])


def test_pack_fit_and_runtime_agree(tmp_path):
    w = load_weights()
    pack = Pack()
    for q, sent, ans, other, swapped in CASES:
        pack.add_group([encode(w, q, sent, ans), encode(w, q, other)], ANSWERABLE)
        pack.add_group([encode(w, q, other)], ARTICLE_REMOVED)
        pack.add_group([encode(w, swapped, sent), encode(w, swapped, other)], SWAPPED)
        pack.add_group([encode(w, q, sent), encode(w, q, other)], NOMIRACL, label=1)
        pack.add_group([encode(w, q, other)], NOMIRACL, label=0)
    pack.add_group([encode(w, "가람시 시청은 몇 년 문을 열었나?", CASES[0][1], "1987년")], CLOZE)
    # judged real users' questions: one trained on (no sentence answers it), two validation ones, never trained on
    pack.add_group([encode(w, CASES[0][4], CASES[0][3])], JUDGED)
    pack.add_group([encode(w, CASES[1][0], CASES[1][1], CASES[1][2]), encode(w, CASES[1][0], CASES[1][3])], JUDGED, val=True)
    pack.add_group([encode(w, CASES[1][4], CASES[1][1])], JUDGED, val=True)
    arrays = pack.arrays()
    assert arrays["ans"].shape == (4, 2)  # one answer place per answering sentence, none elsewhere
    arrays.update(base_weights(w, np.unique(np.r_[arrays["ids"], [w.tokenizer.pad]])))
    arrays["meta"] = np.array(json.dumps({"test": True}))
    np.savez(tmp_path / "pack.npz", **arrays)

    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fit_neural_reader.py"), "--pack", str(tmp_path / "pack.npz"),
         "--out", str(tmp_path / "model"), "--first-tuned", "10", "--rank", "4", "--epochs", "100", "--lr", "2e-3",
         "--groups", "2", "--cloze-epochs", "20", "--cloze-groups", "4", "--sentences", "2", "--eval-sentences", "2", "--dropout", "0",
         "--swapped-weight", "1", "--judged-weight", "1"],
        capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.0 <= summary["nomiracl_all_auc_answerable"] <= 1.0  # NoMIRACL groups are scored, never trained on
    # the cloze phase (one batch an epoch), then 2 answerable + 2 subject-swapped + 1 judged groups, three batches an
    # epoch (article-removed groups have weight 0 by default and stay out, judged validation groups always)
    assert summary["steps"] == 20 + 3 * 100
    assert (summary["judged_val_questions"], summary["judged_val_answered"]) == (2, 1)
    assert summary["judged_val_span_overlaps_answer"] == 100.0 and summary["judged_val_auc_answerable"] == 1.0

    model = SpanModel.load(tmp_path / "model")
    assert model.first_tuned == 10
    for q, sent, ans, other, swapped in CASES:
        reading = model.forward(model.question_tokens(q), [sent, other], ["문서", "문서"])
        good, bad = (c[0] for c in model.spans(reading))
        assert sent[good.start:good.end] == ans
        assert good.answerable > bad.answerable
        (about_another,) = model.spans(model.forward(model.question_tokens(swapped), [sent], ["문서"]))
        assert about_another[0].answerable < good.answerable  # the sentence does not answer for 나래시 / 누리 리그

    # --init: start from that model. With a learning rate of 0 nothing new is learnt, so the
    # output (its deltas beside new zero ones, rank 4 + 2 from layer 8 up) must read exactly as it does
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fit_neural_reader.py"), "--pack", str(tmp_path / "pack.npz"),
         "--out", str(tmp_path / "again"), "--init", str(tmp_path / "model" / "neural_reader.npz"),
         "--first-tuned", "8", "--rank", "2", "--epochs", "1", "--lr", "0", "--groups", "2", "--sentences", "2",
         "--eval-sentences", "2", "--swapped-weight", "1"],
        capture_output=True, text=True, check=True)
    again = SpanModel.load(tmp_path / "again")
    assert (again.first_tuned, again.config["lora_rank"], again.config["init"]["lora_rank"]) == (8, 6, 4)
    q, sent, _, other, _ = CASES[0]
    before = model.forward(model.question_tokens(q), [sent, other], ["문서", "문서"])
    after = again.forward(again.question_tokens(q), [sent, other], ["문서", "문서"])
    for x, y in ((before.start, after.start), (before.end, after.end), (before.answerable, after.answerable)):
        np.testing.assert_allclose(x, y, atol=2e-2)
