"""The neural span reader: input layout, the answerable output, and how the reader chooses."""

from __future__ import annotations

import pytest

from jisik.documents import Hit
from jisik.e5 import load_weights
from jisik.neural_reader import MAX_TITLE_TOKENS, encode_pair, title_ids
from jisik.read import NeuralReading, Reader

ANSWERING = "가람시 시청은 1987년 3월 14일 문을 열었다."
UNRELATED = "은빛강은 북부 산맥에서 발원하여 서해로 흐르는 강이다."


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load(kind="neural")


def test_title_sits_between_question_and_context():
    w = load_weights()
    q = w.tokenizer.tokenize("가람시 시청이 문을 연 날짜는?")
    title = title_ids(w, "가람시")
    plain = encode_pair(w, q, ANSWERING)
    titled = encode_pair(w, q, ANSWERING, title)
    assert title and titled.offset == plain.offset + len(title)
    assert titled.ids[plain.offset:titled.offset] == title
    assert titled.ids[titled.offset:] == plain.ids[plain.offset:]
    assert titled.context[0].start == 0 and titled.context[-1].end == len(ANSWERING)
    assert title_ids(w, "") == [] and title_ids(w, "   ") == [] and title_ids(w, None) == []
    assert len(title_ids(w, "아주 긴 제목 " * 40)) == MAX_TITLE_TOKENS


def test_answering_sentence_is_more_answerable(reader):
    q = reader.neural.question_tokens("가람시 시청이 문을 연 날짜는?")
    good, bad = (c[0] for c in reader.neural.spans(reader.neural.forward(q, [ANSWERING, UNRELATED], ["가람시", "은빛강"])))
    assert good.answerable > bad.answerable
    assert good.span_logit > bad.span_logit
    assert ANSWERING[good.start:good.end].startswith("1987년")


@pytest.fixture(scope="module")
def two_sentences(reader):
    """A question and one passage: an unrelated sentence, then the answering one."""
    text = UNRELATED + " " + ANSWERING
    hits = [Hit(id="a", title="가람시", score=2.0, text=text, start=0, end=len(text))]
    q = reader.question("가람시 시청이 문을 연 날짜는?")
    passages = [reader.passage(h.text) for h in hits]
    sfeats, slog = reader.rank_sentences(q, hits, passages)
    return q, hits, passages, sfeats, slog


def test_reading_keeps_sentence_order_and_offsets(reader, two_sentences):
    q, hits, passages, _, slog = two_sentences
    readings = reader.read_neural(q, hits, passages, slog)
    assert [r.rank for r in readings] == sorted(r.rank for r in readings)
    for r in readings:
        assert r.sentence_logit == slog[r.rank][0]
        s = passages[0].sentences[r.sentence]
        assert s.start <= r.start < r.end <= s.end


def test_choice_weights_decide_between_sentences(reader, two_sentences):
    """Span logit alone picks the first reading; a large answerable weight the second."""
    q, _, passages, sfeats, slog = two_sentences
    s0, s1 = passages[0].sentences[0], passages[0].sentences[1]
    readings = [
        NeuralReading(0, 1.0, 0, 0, s0.start, s0.start + 3, span_logit=5.0, answerable=-3.0),
        NeuralReading(1, 0.5, 0, 1, s1.start, s1.start + 5, span_logit=4.0, answerable=3.0),
    ]
    plain = reader.choose_neural(q, passages, sfeats, slog, readings, {"answerable": 0.0, "sentence": 0.0})[1]
    weighted = reader.choose_neural(q, passages, sfeats, slog, readings, {"answerable": 1.0, "sentence": 0.0})[1]
    assert plain[0].sentence == 0 and weighted[0].sentence == 1
    assert weighted[0].logit == pytest.approx(4.0 + 3.0)
    feats = reader.choose_neural(q, passages, sfeats, slog, readings)[2]
    assert feats is not None and len(feats) == len(reader.abstain_coef)
