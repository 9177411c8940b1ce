"""Retrieval on small documents written for these tests (no encoder: fast, lexical channels)."""

from __future__ import annotations

import numpy as np
import pytest

from jisik.app import Jisik
from jisik.documents import Document
from jisik.index import LexicalIndex, bigram_keys, letters_of
from jisik.rerank import FEATURES, Reranker, shortest_window
from jisik.retrieve import MODES

DOCS = [
    {"id": "seoul", "title": "서울",
     "text": "서울은 대한민국의 수도이다. 서울에서 열린 올림픽은 1988년에 개최되었다. 한강이 도시를 가로지른다."},
    {"id": "busan", "title": "부산",
     "text": "부산은 대한민국 남동쪽의 항구 도시이다. 해운대 해수욕장과 자갈치 시장으로 유명하다."},
    {"id": "company", "title": "푸른하늘전자",
     "text": "김민수는 2001년 대전에서 푸른하늘전자를 설립했다. 이 회사는 작은 센서를 만든다."},
    {"id": "lake", "title": "별빛호수",
     "text": "별빛호수는 강원도 산골에 있는 맑은 호수이다. 겨울에는 호수 위에서 썰매를 탄다."},
    {"id": "library", "title": "은행나무도서관",
     "text": "은행나무도서관은 1975년에 문을 연 시립 도서관이다. 고서 삼천 권을 소장하고 있다."},
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    db = tmp_path_factory.mktemp("retrieve") / "t.db"
    app = Jisik.open(db, encoder="none")
    app.ingest_documents([Document.from_record(d) for d in DOCS])
    yield app
    app.close()


def ids(hits):
    return [h.id for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "fused", "lexical", "bigram"])
def test_particles_are_stripped(app, mode):
    assert ids(app.search("서울", 3, mode=mode))[0] == "seoul"
    assert ids(app.search("서울에서 열린 올림픽", 3, mode=mode))[0] == "seoul"


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_verb_forms_match(app, mode):
    # 설립했다 in the text, 설립한 in the question: both analyse to the stem 설립.
    assert ids(app.search("푸른하늘전자를 설립한 사람은?", 3, mode=mode))[0] == "company"
    assert ids(app.search("김민수가 설립한 회사", 3, mode=mode))[0] == "company"


def test_title_terms_are_indexed(app):
    # The lake passage never says 강원도 별빛 together with 썰매 except through its title.
    assert ids(app.search("별빛호수에서 타는 것", 3, mode="lexical"))[0] == "lake"


def test_candidate_ids_restrict(app):
    hits = app.search("서울에서 열린 올림픽", 5, candidate_ids=["busan", "lake"])
    assert set(ids(hits)) <= {"busan", "lake"}
    assert app.search("서울", 5, candidate_ids=[]) == []


def test_empty_and_blank_queries(app):
    for q in ["", "   ", "\n\t", "?!."]:
        assert app.search(q, 5) == []


def test_huge_query_is_cut_not_fatal(app):
    query = ("부산의 해운대 해수욕장 " * 10_000)[:100_000]
    assert len(query.encode("utf-8")) > 100_000
    assert ids(app.search(query, 3))[0] == "busan"


@pytest.mark.parametrize("mode", ["hybrid", "fused", "bigram"])
def test_no_spaces_query(app, mode):
    assert ids(app.search("은행나무도서관이문을연해는?", 3, mode=mode))[0] == "library"
    assert ids(app.search("부산의항구와자갈치시장", 3, mode=mode))[0] == "busan"


def test_collapse_and_k(app):
    hits = app.search("대한민국", 10)
    assert len(ids(hits)) == len(set(ids(hits)))
    assert len(app.search("대한민국", 1)) == 1
    assert app.search("대한민국", 0) == []


def test_unknown_mode(app):
    with pytest.raises(ValueError):
        app.search("서울", 3, mode="magic")
    assert "hybrid" in MODES and "lexical" in MODES and "dense" in MODES


def test_append_only_versions_mask_old_text(tmp_path):
    app = Jisik.open(tmp_path / "v.db", encoder="none")
    app.ingest_documents([Document.from_record(d) for d in DOCS])
    assert ids(app.search("해운대", 3))[0] == "busan"
    app.ingest_documents([Document.from_record(
        {"id": "busan", "title": "부산", "text": "부산은 대한민국 제2의 도시이다. 광안대교가 바다를 건넌다."})])
    assert "busan" in ids(app.search("광안대교", 3))
    assert "busan" not in ids(app.search("해운대 해수욕장", 3))  # old version, no longer visible
    app.delete("busan")
    assert "busan" not in ids(app.search("광안대교", 3))
    app.close()


def test_char_bigrams_ignore_spacing():
    assert bigram_keys("서울 에서").tolist() == bigram_keys("서울에서").tolist()
    assert len(bigram_keys("서울에서")) == 3
    assert bigram_keys("가").tolist() == [ord("가")]
    assert bigram_keys(" .").tolist() == []
    assert bigram_keys("서울").tolist() != bigram_keys("울서").tolist()
    assert letters_of("Ａ-1 가") == "a1가"


def test_lexical_index_blocks_agree():
    one, two = LexicalIndex(), LexicalIndex()
    lists = [["가", "나"], ["나", "다", "다"], ["라"]]
    one.add(lists)
    two.add(lists[:2])
    two.add(lists[2:])
    ids_, counts = one.query_ids(["다", "라", "없음"])
    assert len(ids_) == 2
    # Same terms, same idf once both hold the same passages; weights differ only by avg length.
    assert (one.scores(["다"]) > 0).tolist() == (two.scores(["다"]) > 0).tolist() == [False, True, False]
    assert (two.scores(["라"]) > 0).tolist() == [False, False, True]


def test_shortest_window():
    seq = np.array([5, 1, 9, 2, 1, 3, 2], dtype=np.int32)
    wanted = np.zeros(10, dtype=bool)
    wanted[[1, 2, 3]] = True
    assert shortest_window(seq, wanted) == (3, 3)  # 1, 3, 2 at positions 4..6
    wanted[:] = False
    assert shortest_window(seq, wanted) == (0, 0)


def test_reranker_roundtrip(tmp_path):
    n = len(FEATURES)
    model = Reranker(np.zeros(n), np.ones(n), np.arange(n, dtype=float))
    model.save(tmp_path / "m.json")
    loaded = Reranker.load(tmp_path / "m.json")
    x = np.ones((2, n))
    assert np.allclose(loaded.score(x), model.score(x))
    assert Reranker.load(tmp_path / "missing.json") is None
