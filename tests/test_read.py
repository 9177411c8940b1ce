"""Reader tests on Korean text written for this project (no evaluation data here)."""

from __future__ import annotations

import json
import math
import time

import pytest

from jisik.documents import Hit
from jisik.korean import get_analyzer
from jisik.read import (DEFINITION, EMPTY_QUESTION, MODEL_DIR, NO_ASKED_COUNT, NO_ASKED_DATE, NO_CONTENT, NO_EVIDENCE,
                        POLAR, REASON, Answer, Reader, _agrees, exact_match, f1, has_asked_form, normalize_answer, trim_span)
from jisik.reader_features import analyze_question, build_passage, definition_subject, is_polar_question

DOC_SEJONG = (
    "가람시는 한반도 남쪽 해안에 있는 가상의 항구 도시이다. "
    "가람시 시청은 1987년 3월 14일 문을 열었다. "
    "초대 시장은 김하늘이며, 그는 12년 동안 시장을 지냈다. "
    "가람시에는 초등학교 27개가 있고, 교사는 모두 640명이다. "
    "가람 대교는 부산에서 온 건축가 박소라가 설계하였다."
)
DOC_RIVER = (
    "은빛강은 북부 산맥에서 발원하여 서해로 흐르는 강이다. "
    "강의 길이는 약 412킬로미터이며, 유역에는 마을 36곳이 있다. "
    "1962년 강 하류에 청솔 댐이 건설되었다."
)


def _hits(*docs: tuple[str, str]) -> list[Hit]:
    return [Hit(id=i, title=i, score=10.0 - k, text=t, start=0, end=len(t))
            for k, (i, t) in enumerate(docs)]


@pytest.fixture(scope="module", params=["neural", "features"])
def reader(request) -> Reader:
    """Every behaviour test runs on both readers: the neural default and its fallback."""
    r = Reader.load(kind=request.param)
    assert r.kind == request.param
    return r


@pytest.fixture(scope="module")
def hits() -> list[Hit]:
    return _hits(("가람시", DOC_SEJONG), ("은빛강", DOC_RIVER))


def _check_offsets(ans: Answer, docs: dict[str, str]) -> None:
    assert ans.evidence is not None
    text = docs[ans.evidence.id]
    assert text[ans.evidence.start:ans.evidence.end] == ans.answer
    assert text[ans.evidence.sentence_start:ans.evidence.sentence_end] == ans.evidence.sentence
    assert ans.answer in ans.evidence.sentence


@pytest.mark.parametrize("question, expected", [
    ("가람시 시청이 문을 연 날짜는?", "1987년 3월 14일"),
    ("가람 대교를 설계한 건축가는 누구인가?", "박소라"),
    ("가람시의 초대 시장은 누구인가?", "김하늘"),
    ("가람시에 있는 초등학교는 몇 개인가?", "27개"),
    ("가람시의 교사는 모두 몇 명인가?", "640명"),
    ("김하늘은 몇 년 동안 시장을 지냈나?", "12년"),
    ("청솔 댐이 건설된 해는?", "1962년"),
])
def test_answer_types(reader, hits, question, expected):
    ans = reader.answer(question, hits)
    assert not ans.abstained, ans
    assert normalize_answer(ans.answer) == normalize_answer(expected), (question, ans.answer)
    _check_offsets(ans, {"가람시": DOC_SEJONG, "은빛강": DOC_RIVER})
    assert 0.0 <= ans.confidence <= 1.0
    assert ans.citations and ans.citations[0] == ans.evidence


def test_year_question_gets_the_year_not_the_full_date(reader, hits):
    if reader.kind == "features":
        pytest.xfail("known weakness of the feature reader: '몇 년' picks the full date '1987년 3월 14일'")
    ans = reader.answer("가람시 시청은 몇 년에 문을 열었나?", hits)
    assert ans.answer == "1987년"


@pytest.mark.parametrize("question, span, agrees", [
    ("KTX는 언제 개통했나?", "2004년 4월 1일", True),       # a when-question wants the whole date
    ("KTX는 언제 개통했나?", "2004년", False),              # ... not a piece of it
    ("KTX가 개통한 날짜는?", "2004년 4월 1일", True),
    ("KTX는 몇 년에 개통했나?", "2004년", True),            # a year question wants the year
    ("KTX는 몇 년에 개통했나?", "2004년 4월 1일", False),
    ("KTX의 열차는 몇 대인가?", "46대", True),               # a count holds the counter asked about
    ("KTX의 열차는 몇 대인가?", "2004년", False),
])
def test_agreement_between_question_and_span(question, span, agrees):
    text = "KTX는 2004년 4월 1일에 개통하였고, 열차 46대로 운행을 시작하였다."
    an = get_analyzer()
    passage = build_passage(text, [(0, len(text))], [an.morphemes(text)])
    q = analyze_question(question, an.morphemes(question))
    start = text.index(span)
    assert _agrees(q, passage.sentences[0], start, start + len(span)) is agrees


@pytest.mark.parametrize("question, asks", [
    ("KTX는 언제 개통했나?", "date"),
    ("가람시 시청은 며칠에 문을 열었나?", "date"),
    ("가람시의 교사는 모두 몇 명인가?", "count"),
    ("은빛강의 길이는 얼마인가요?", "count"),
    ("은빛강은 얼마나 긴가?", "count"),
    ("가람시 시청이 문을 연 날짜는?", ""),                 # no 언제/몇: the span model's agreement covers it
    ("심판이 언제나 볼 수 있어야 하는 것은?", ""),          # 언제나 is an adverb, not a question word
    ("몇 천 명의 학생들이 시위를 벌인 곳은?", ""),          # asks for the place, not the count
    ("몇 년 동안 시장을 지낸 사람은 누구인가?", ""),        # two question words: asks for a person
    ("가람 대교를 설계한 건축가는 누구인가?", ""),
    ("가람시 시청은 왜 문을 열었나?", "reason"),
    ("'하늘은 왜'를 펴낸 출판사는 어디인가?", ""),         # 왜 in a title: asks for a place
])
def test_questions_that_only_a_date_or_count_answers(question, asks):
    analyzer = get_analyzer()
    assert analyze_question(question, analyzer.morphemes(question)).asks == asks


@pytest.mark.parametrize("question, span, fits", [
    ("한국 전쟁은 언제 시작되었나?", "1950년 6월 25일", True),
    ("한국 전쟁은 언제 시작되었나?", "김일성의 남침", False),
    ("한국 전쟁은 언제 시작되었나?", "세 해", False),                     # a count is not a date
    ("한국 전쟁은 언제 시작되었나?", "제2차 세계 대전이 끝난 뒤", False),  # the number is incidental
    ("르네상스는 언제 시작되었나?", "15세기 말", True),
    ("풍수는 언제 전래되었나?", "삼국 시대", True),                       # an era is a date
    ("해수욕장은 언제 붐비나?", "매년 여름", True),                       # and so is a season
    ("필리핀에는 몇 개의 섬이 있나?", "7,641개", True),
    ("필리핀에는 몇 개의 섬이 있나?", "루손섬", False),
    ("필리핀에는 몇 개의 섬이 있나?", "일곱 개", True),                   # a numeral
    ("필리핀에는 몇 개의 섬이 있나?", "삼천 개", True),
    ("필리핀에는 몇 개의 섬이 있나?", "두 번째로 큰 섬", False),
    ("필리핀에는 몇 개의 섬이 있나?", "몇 개", False),                    # the question word itself
    ("필리핀에는 섬이 몇 개 있나?", "한가운데", False),                   # 한 before no counter
    ("전쟁은 몇 해 동안 이어졌나?", "세 해", True),                       # a determiner before a noun
    ("필리핀에는 몇 개의 섬이 있나?", "세 해", True),
    ("태풍의 풍속은 얼마인가?", "17.2m/s", True),
    ("태풍의 풍속은 얼마인가?", "17.2m/s 이상, 한가운데", False),
    ("필리핀의 수도는 어디인가?", "루손섬", True),                        # not a date or count question
])
def test_date_and_count_questions_take_only_spans_of_that_form(question, span, fits):
    text = ("한국 전쟁은 1950년 6월 25일 김일성의 남침으로 시작되어 제2차 세계 대전이 끝난 뒤 세 해 동안 이어졌고, "
            "르네상스는 15세기 말에 퍼졌으며 풍수는 삼국 시대에 전래되었고 해수욕장은 매년 여름 붐빈다. 필리핀에는 섬 7,641개가 있으며 두 번째로 큰 섬과 "
            "루손섬, 일곱 개의 주요 섬과 삼천 개의 작은 섬, 한가운데의 호수, 몇 개의 암초가 있다. "
            "태풍의 풍속은 17.2m/s 이상, 한가운데는 고요하다.")
    an = get_analyzer()
    passage = build_passage(text, [(0, len(text))], [an.morphemes(text)])
    q = analyze_question(question, an.morphemes(question))
    start = text.index(span)
    assert has_asked_form(q, passage.sentences[0], start, start + len(span)) is fits


def test_date_or_count_question_over_text_without_one_is_declined(reader):
    doc = "나래 다리는 건축가 한솔이 설계하였다. 다리는 두 마을을 잇는 돌다리이며, 마을 사람들이 함께 세웠다."
    ans = reader.answer("나래 다리는 언제 설계되었나?", _hits(("나래 다리", doc)))
    assert ans.abstained and ans.answer is None and ans.evidence is None and ans.reason == NO_ASKED_DATE
    assert ans.reason.startswith(NO_EVIDENCE) and ans.to_json()["reason"] == NO_ASKED_DATE
    ans = reader.answer("나래 다리를 설계한 건축가는 몇 명인가?", _hits(("나래 다리", doc)))
    assert ans.abstained and ans.answer is None and ans.reason == NO_ASKED_COUNT
    # the same text answers what it does say
    ans = reader.answer("나래 다리를 설계한 건축가는 누구인가?", _hits(("나래 다리", doc)))
    assert ans.answer == "한솔"


def test_place_answer_mentions_place(reader, hits):
    ans = reader.answer("건축가 박소라는 어디에서 왔나?", hits)
    assert not ans.abstained
    assert "부산" in ans.answer


def test_offsets_are_document_offsets(reader):
    # The hit is a passage in the middle of a longer document.
    prefix = "머리말 문단입니다. 이 문단은 질문과 관계가 없습니다.\n\n"
    doc = prefix + DOC_RIVER + "\n\n맺음말 문단입니다."
    start = len(prefix)
    hit = Hit(id="doc", title="은빛강", score=3.0, text=doc[start:start + len(DOC_RIVER)],
              start=start, end=start + len(DOC_RIVER), version=2, url="https://example.org/river",
              published_at="2024-05-01")
    ans = reader.answer("청솔 댐이 건설된 해는?", [hit])
    assert not ans.abstained
    assert ans.answer == "1962년"
    ev = ans.evidence
    assert doc[ev.start:ev.end] == ans.answer
    assert doc[ev.sentence_start:ev.sentence_end] == ev.sentence
    assert ev.start >= start and ev.version == 2 and ev.url == "https://example.org/river"
    assert ev.published_at == "2024-05-01"
    data = ans.to_json()
    assert data["answer"] == ans.answer and data["abstained"] is False
    assert data["evidence"]["start"] == ev.start and "reason" not in data


def test_abstains_on_unrelated_question(reader, hits):
    ans = reader.answer("양자역학에서 불확정성 원리를 처음 발표한 물리학자는?", hits)
    assert ans.abstained and ans.answer is None
    assert ans.reason == NO_EVIDENCE
    assert ans.to_json()["reason"] == NO_EVIDENCE


def test_abstains_without_content_words(reader, hits):
    ans = reader.answer("뭐야?", hits)
    assert ans.abstained and ans.answer is None and ans.evidence is None and ans.reason == NO_CONTENT


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_declined_as_empty_not_as_unsupported(reader, hits, question):
    for given in (hits, []):  # the engine retrieves nothing for it, so it arrives with no hits
        ans = reader.answer(question, given)
        assert ans.abstained and ans.answer is None and ans.reason == EMPTY_QUESTION
    # a question word alone has no content word to search for: it says so, not "no evidence"
    assert reader.answer("뭐야?", []).reason == NO_CONTENT


@pytest.mark.parametrize("question, polar", [
    ("가람시 시청은 1987년에 문을 열었나요?", True),
    ("가람시는 항구 도시인가?", True),
    ("가람시는 한반도 남쪽 해안에 있는 항구 도시인가요?", True),  # Kiwi: 이/VCP ᆫ가/EF 요/JX
    ("김하늘은 가람시의 초대 시장이었습니까?", True),
    ("은빛강은 서해로 흐르니?", True),
    ("박소라가 가람 대교를 설계했어요?", True),
    ("박소라가 가람 대교를 설계했어요.", False),   # a statement, not a question
    ("가람시의 초대 시장은 누구인가요?", False),
    ("은빛강의 길이는 얼마인가요?", False),
    ("가람 대교를 설계한 건축가는?", False),       # names what it asks for: a span answers it
    ("가람시의 초대 시장이 뭔가요?", False),        # contracted question word
    ("가람시 시청은 어딨나요?", False),             # 어디 있나요, contracted (Kiwi: 어딨/VA)
    ("가람시 시청이 문을 연 날짜를 알려 주세요?", False),  # a request
])
def test_yes_no_questions_are_recognised(question, polar):
    analyzer = get_analyzer()
    assert is_polar_question(question, analyzer.morphemes(question)) is polar
    assert analyze_question(question, analyzer.morphemes(question)).polar is polar


def test_yes_no_question_is_declined_with_the_sentences_that_bear_on_it(reader, hits):
    ans = reader.answer("가람시 시청은 1987년에 문을 열었나요?", hits)
    assert ans.abstained and ans.answer is None and ans.evidence is None
    assert ans.reason == POLAR
    assert ans.citations, "a yes/no question is declined with citations, not empty-handed"
    first = ans.citations[0]
    assert first.sentence == "가람시 시청은 1987년 3월 14일 문을 열었다."
    assert DOC_SEJONG[first.start:first.end] == first.sentence
    assert DOC_SEJONG[first.sentence_start:first.sentence_end] == first.sentence
    assert ans.to_json()["citations"][0]["sentence"] == first.sentence


@pytest.mark.parametrize("question, term", [
    ("가람시란 무엇인가?", "가람시"),
    ("은빛강은 무엇인가요?", "은빛강"),
    ("가람 대교란 무엇인가?", "가람 대교"),          # more than one word, asked with 란
    ("가람시의 뜻은 무엇인가?", "가람시"),
    ("김하늘은 누구인가?", "김하늘"),                # a name: 누구 asks who the person is
    ("가람시의 초대 시장은 누구인가?", ""),          # asks for a fact about 가람시
    ("가람시 초대 시장은 누구인가?", ""),            # the same without 의: not only proper nouns
    ("가람시에 있는 초등학교는 무엇인가?", ""),
    ("제 200대 교황은 누구인가요?", ""),
    ("가람시는 어디인가?", ""),
])
def test_definition_questions_are_recognised(question, term):
    morphs = get_analyzer().morphemes(question)
    assert definition_subject(question, morphs) == term
    assert analyze_question(question, morphs).defines == term


def test_definition_is_the_opening_sentence_of_the_article(reader, hits):
    ans = reader.answer_definition("가람시", hits[:1])
    assert ans is not None and ans.abstained and ans.answer is None and ans.reason == DEFINITION
    (c,) = ans.citations
    assert c.sentence == "가람시는 한반도 남쪽 해안에 있는 가상의 항구 도시이다."
    assert DOC_SEJONG[c.sentence_start:c.sentence_end] == c.sentence
    # an article that does not open by naming the term defines something else
    assert reader.answer_definition("가람시", hits[1:]) is None
    # of two articles that open with it, the one whose first sentence starts with it leads
    mention = _hits(("가람시사", "가람시의 역사는 천 년이 넘는다. 처음에는 작은 어촌이었다."))[0]
    ans = reader.answer_definition("가람시", [mention, hits[0]])
    assert [c.id for c in ans.citations] == ["가람시", "가람시사"]


def test_a_year_before_the_common_era_keeps_its_marker(reader):
    doc = "나래 왕국은 기원전 108년에 멸망하였다. 그 뒤 서기 1990년에 왕국의 유적이 발견되었다."
    ans = reader.answer("나래 왕국은 언제 멸망했나?", _hits(("나래 왕국", doc)))
    assert ans.answer == "기원전 108년"
    _check_offsets(ans, {"나래 왕국": doc})
    ans = reader.answer("나래 왕국의 유적은 몇 년에 발견되었나?", _hits(("나래 왕국", doc)))
    assert ans.answer == "서기 1990년"


def test_why_question_is_declined_with_the_sentences_that_bear_on_it(reader, hits):
    ans = reader.answer("가람시 시청은 왜 1987년에 문을 열었나?", hits)
    assert ans.abstained and ans.answer is None and ans.evidence is None and ans.reason == REASON
    first = ans.citations[0]
    assert first.sentence == "가람시 시청은 1987년 3월 14일 문을 열었다."
    assert DOC_SEJONG[first.sentence_start:first.sentence_end] == first.sentence


def test_abstains_on_empty_hits(reader):
    ans = reader.answer("가람시 시청이 문을 연 날짜는?", [])
    assert ans.abstained and ans.reason == NO_EVIDENCE and ans.citations == []


def test_very_long_question(reader, hits):
    question = "가람시 시청이 문을 연 날짜는? " * 6000  # about 100 KB
    assert len(question.encode("utf-8")) > 100_000
    t0 = time.perf_counter()
    ans = reader.answer(question, hits)
    assert time.perf_counter() - t0 < 5.0
    assert isinstance(ans, Answer)
    if not ans.abstained:
        _check_offsets(ans, {"가람시": DOC_SEJONG, "은빛강": DOC_RIVER})


def test_metrics():
    assert exact_match("《어린 왕자》", ["어린 왕자"]) == 1.0
    assert exact_match("1989년", ["1989년 2월 15일"]) == 0.0
    assert exact_match(None, ["x"]) == 0.0
    assert f1("1989년", ["1989년 2월 15일"]) == pytest.approx(2 * 1.0 * (5 / 10) / (1.0 + 5 / 10))
    assert f1("전혀 다른 말", ["1989년"]) == 0.0
    assert f1("임수경", ["다른 답", "임수경"]) == 1.0


def test_tree_span_ranker_is_used(hits):
    # the feature reader ranks spans with the LightGBM trees stacked on the linear scores
    reader = Reader.load(kind="features")
    assert reader.span_trees is not None
    q = reader.question("가람 대교를 설계한 건축가는 누구인가?")
    passages = [reader.passage(h.text) for h in hits]
    _, spans, feats = reader.score(q, hits, passages)
    assert spans and feats is not None and len(feats) == 13
    assert all(spans[k].logit >= spans[k + 1].logit for k in range(len(spans) - 1))


def test_neural_reader_is_the_default():
    assert Reader.load().kind == "neural"
    with pytest.raises(ValueError, match="neural"):
        Reader.load(kind="bert")


@pytest.mark.parametrize("sentence, raw, expected", [
    ("초대 시장은 김하늘이며, 그는 12년 동안 시장을 지냈다.", "김하늘이며,", "김하늘"),
    ("가람시 시청은 1987년 3월 14일에 문을 열었다.", " 1987년 3월 14일에", "1987년 3월 14일"),
    ("가람 대교는 박소라가 설계하였다.", "박소라가", "박소라"),
    ("가람시에는 초등학교 27개가 있다.", "27개", "27개"),
    # a nominalising ending makes the noun: kept
    ("실험에서 두 신호 사이의 깜빡임이 관찰되었다.", "깜빡임이", "깜빡임"),
    ("그 대회의 과제는 냄새로 길 찾기였다.", "길 찾기였다.", "길 찾기"),
    # a quoted title is kept whole, its final ending included
    ("그는 독립영화 《내일은 비가 온다》로 데뷔하였다.", "내일은 비가 온다", "내일은 비가 온다"),
    ("그녀의 첫 장편 <바다는 늘 그 자리에 있다>는 큰 상을 받았다.", "바다는 늘 그 자리에 있다>는", "바다는 늘 그 자리에 있다"),
    # a particle the span starts with belongs to the word before it
    ("이 평은 가람일보의 한서진 기자가 썼다.", "의 한서진", "한서진"),
    ("연구진은 뇌의 내후각피질을 관찰했다.", "내후각피질을", "내후각피질"),
    ("가람성은 그해 봄(1569년, 가람 12년)에 무너졌다.", "(1569년,", "1569년"),
])
def test_trim_span_cuts_particles_and_punctuation(sentence, raw, expected):
    reader = Reader.load(kind="features")
    p = reader.passage(sentence)
    start = sentence.index(raw)
    a, b = trim_span(p, 0, start, start + len(raw))
    assert sentence[a:b] == expected


def test_threshold_trades_declines_for_answers(reader, hits):
    """A lower threshold answers what the calibrated one declines; 1.0 declines everything."""
    unrelated = "양자역학에서 불확정성 원리를 처음 발표한 물리학자는?"
    declined = reader.answer(unrelated, hits)
    guessed = reader.answer(unrelated, hits, threshold=0.0)
    assert declined.abstained and not guessed.abstained and guessed.answer
    assert guessed.confidence == pytest.approx(declined.confidence)
    _check_offsets(guessed, {"가람시": DOC_SEJONG, "은빛강": DOC_RIVER})
    strict = reader.answer("가람 대교를 설계한 건축가는 누구인가?", hits, threshold=1.0)
    assert strict.abstained and strict.confidence > 0


def test_calibration_changes_the_confidence_not_the_decisions(hits, tmp_path):
    """A calibration maps every confidence and the threshold through one monotone map: the
    numbers a user reads change, what is answered and what is declined does not."""
    import shutil

    def reader_with(calibration: dict | None) -> Reader:
        d = tmp_path / ("calibrated" if calibration else "raw")
        shutil.copytree(MODEL_DIR, d)
        meta = json.loads((d / "reader.json").read_text(encoding="utf-8"))
        meta["abstain_neural"].pop("calibration", None)
        if calibration:
            meta["abstain_neural"]["calibration"] = calibration
        (d / "reader.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return Reader.load(d, kind="neural")

    raw = reader_with(None)
    calibrated = reader_with({"slope": 0.8, "intercept": -2.4})
    assert raw.calibration is None and calibrated.calibration == (0.8, -2.4)
    expected = 1 / (1 + math.exp(-(0.8 * math.log(raw.threshold / (1 - raw.threshold)) - 2.4)))
    assert calibrated.threshold == pytest.approx(expected)
    for question in ("가람 대교를 설계한 건축가는 누구인가?", "양자역학에서 불확정성 원리를 처음 발표한 물리학자는?"):
        a, b = raw.answer(question, hits), calibrated.answer(question, hits)
        assert (a.abstained, a.answer) == (b.abstained, b.answer)
        assert b.confidence == pytest.approx(calibrated.calibrate(a.confidence))
        assert b.confidence < a.confidence
        assert calibrated.uncalibrated(b.confidence) == pytest.approx(a.confidence)
