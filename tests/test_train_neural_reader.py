"""Cloze and subject-swapped questions for the neural reader's training pack (scripts/train_neural_reader.py)."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from train_neural_reader import (  # noqa: E402
    SameKindNames, cloze_answers, cloze_examples, cloze_question, entity_kinds, entity_mentions, swap_mention, swap_subject)

from jisik.korean import get_analyzer  # noqa: E402


def test_answers_and_questions():
    s = "가람시 시청은 1987년 3월 14일에 문을 열었다."
    assert ("1987년 3월 14일", "언제") in cloze_answers(s)
    assert cloze_question(s, "1987년 3월 14일", "언제") == "가람시 시청은 언제 문을 열었나?"
    s = "한빛 리그에는 8개 구단이 있으며, 관중은 2019년에 120만 명이었다."
    found = dict(cloze_answers(s))
    assert found == {"8개": "몇 개", "2019년": "몇 년"}  # `120만 명` is no plain number: skipped
    assert cloze_question(s, "8개", "몇 개") == "한빛 리그에는 몇 개 구단이 있으며, 관중은 2019년에 120만 명이었나?"
    s = "그의 첫 소설은 《푸른 강》이다."
    assert cloze_answers(s) == [("푸른 강", "무엇")]
    assert cloze_question(s, "푸른 강", "무엇") == "그의 첫 소설은 무엇인가?"
    assert cloze_answers("명예로운 이름이다.") == []


def test_examples_pair_two_sentences():
    article = {"title": "가람시", "text": (
        "가람시는 은빛강 하류에 있는 도시이다. 가람시 시청은 1987년에 은빛강 옆 언덕에 문을 열었다. "
        "시청 건물은 1987년 당시 은빛강 언덕에 선 가장 높은 건물이었다. 가람시의 인구는 12만 명이다.")}
    (question, title, contexts, answer), = cloze_examples([article], limit=10)
    assert answer == "1987년" and title == "가람시"
    assert question == "가람시 시청은 몇 년에 은빛강 옆 언덕에 문을 열었나?"
    assert contexts[0] == "시청 건물은 1987년 당시 은빛강 언덕에 선 가장 높은 건물이었다"  # the *other* sentence answers
    assert contexts[1:] == ["가람시는 은빛강 하류에 있는 도시이다"]  # negatives: no answer; under 20 characters: dropped


def mentions(question: str) -> list[str]:
    return [question[a:b] for a, b in entity_mentions(question, get_analyzer().morphemes(question))]


def test_entity_mentions_are_whole_proper_nouns():
    assert mentions("뉴질랜드는 몇 개의 섬으로 이루어져 있나?") == ["뉴질랜드"]
    assert mentions("이순신이 한산도에서 이긴 해는?") == ["이순신", "한산도"]
    assert mentions("가장 높은 산은 어디인가?") == []  # nothing to swap


def test_swap_fits_the_particle_to_the_new_name():
    q = "뉴질랜드는 몇 개의 섬으로 이루어져 있나?"
    (span,) = entity_mentions(q, get_analyzer().morphemes(q))
    assert swap_mention(q, span, "바누아투") == "바누아투는 몇 개의 섬으로 이루어져 있나?"
    assert swap_mention(q, span, "일본") == "일본은 몇 개의 섬으로 이루어져 있나?"  # 받침: 는 -> 은
    q = "이순신이 이긴 해는? 이순신의 나이는?"
    assert swap_mention(q, (0, 3), "권율") == "권율이 이긴 해는? 권율의 나이는?"  # every occurrence
    assert swap_mention(q, (0, 3), "유비") == "유비가 이긴 해는? 유비의 나이는?"  # 이 -> 가
    assert swap_mention("서울을 지나는 강은?", (0, 2), "파리") == "파리를 지나는 강은?"  # 을 -> 를


ARTICLES = [  # title, opening: what kind of thing each is
    ("카르디아", "카르디아는 동쪽 바다에 있는 섬나라이다. 수도는 가람시이다."),
    ("벨로니아", "벨로니아(Belonia)는 남쪽 바다의 섬나라다."),
    ("타미르 (섬)", "타미르는 서쪽 바다에 있는 작은 섬나라이다."),
    ("박서준", "박서준은 한빛 리그의 야구 선수이다."),
    ("은빛강", "은빛강은 하천의 일종이다."),  # too general a kind: left out
    ("누리", "누리는 북부 지방의 옛 이름으로 쓰였다."),  # no copula in the first sentence
]


def test_entity_kinds_and_same_kind_swaps(tmp_path):
    (tmp_path / "kowiki").mkdir()
    with gzip.open(tmp_path / "kowiki" / "kowiki-2022-00.jsonl.gz", "wt", encoding="utf-8") as fh:
        for n, (title, text) in enumerate(ARTICLES):
            fh.write(json.dumps({"id": str(n), "title": title, "text": text}, ensure_ascii=False) + "\n")
    kinds = entity_kinds(tmp_path, tmp_path / "cache")
    assert kinds == {"카르디아": "섬나라", "벨로니아": "섬나라", "타미르 (섬)": "섬나라", "박서준": "선수"}
    assert entity_kinds(tmp_path, tmp_path / "cache") == kinds  # cached

    names = SameKindNames(kinds, min_members=2)
    rng = np.random.default_rng(0)
    assert {names.replacement("카르디아", "", rng) for _ in range(20)} == {"벨로니아", "타미르"}  # `(섬)` dropped
    assert names.replacement("카르디아", "벨로니아타미르", rng) is None  # both named where the swap must not be
    assert names.replacement("박서준", "", rng) is None  # the only 선수: no kind to draw from
    assert names.replacement("은빛강", "", rng) is None

    q = "카르디아의 수도 Garamton에 있는 다리는?"
    swapped, new = swap_subject(names, q, get_analyzer().morphemes(q), "카르디아: Garamton에는 다리가 많다", "은빛다리",
                                q + " 타미르", rng)
    # the longer name, Garamton, has no kind to draw from: 카르디아 is swapped, for the one island nation not named
    assert (swapped, new) == ("벨로니아의 수도 Garamton에 있는 다리는?", "벨로니아")
