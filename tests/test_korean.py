from jisik.korean import get_analyzer, normalize, terms


def test_particles_are_stripped_so_inflected_forms_share_terms():
    assert "서울" in terms("서울은 크다")
    assert "서울" in terms("서울에서 태어났다")
    assert "서울" in terms("서울의 인구")


def test_verb_forms_share_the_stem():
    assert "설립" in terms("회사를 설립했다")
    assert "설립" in terms("회사를 설립한 사람")
    assert "태어나" in terms("그는 부산에서 태어났다")


def test_question_words_and_particles_are_not_terms():
    t = terms("누가 회사를 설립했는가?")
    assert "누구" not in t and "를" not in t and "?" not in t


def test_numbers_keep_digits_without_thousands_separator():
    assert "3500" in terms("약 3,500명이 참가했다")


def test_sentence_offsets_slice_the_text_exactly():
    text = "첫 문장입니다. 서울에서 태어났다!  세 번째 문장은 조금 더 길다."
    sents = get_analyzer().sentences(text)
    assert len(sents) == 3
    for s in sents:
        assert text[s.start:s.end] == s.text
    assert sents[1].text == "서울에서 태어났다!"


def test_analyze_batch_morpheme_offsets_point_into_each_text():
    texts = ["한글은 세종이 만들었다.", "KTX는 2004년에 개통하였다. 빠르다."]
    for text, a in zip(texts, get_analyzer().analyze_batch(texts)):
        for m in a.morphemes:
            if m.tag in ("NNP", "NNG", "SL", "SN"):
                assert text[m.start:m.end] == m.form


def test_nfkc_normalisation_unifies_full_width_forms():
    assert normalize("ＫＴＸ １２３") == "KTX 123"
    assert "ktx" in terms("ＫＴＸ는 빠르다")


def test_mecab_analyzer_gives_the_same_content_terms_when_installed():
    import pytest

    pytest.importorskip("mecab")
    mecab = get_analyzer("mecab")
    assert "서울" in terms("서울에서 태어났다", mecab)
    sents = mecab.sentences("하나. 둘!")
    assert [s.text for s in sents] == ["하나.", "둘!"]
