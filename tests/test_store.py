"""Versions, as-of, deletion: the store's contract."""

import pytest

from jisik.app import Jisik
from jisik.documents import InputError, chunk_sentences
from jisik.korean import get_analyzer

from .conftest import doc

BOTH_STORES = True


def test_db_location_precedence(tmp_path, monkeypatch):
    from jisik.store import resolve_db_path

    monkeypatch.setenv("JISIK_DB", str(tmp_path / "env.db"))
    assert resolve_db_path(tmp_path / "flag.db") == tmp_path / "flag.db"
    assert resolve_db_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("JISIK_DB")
    assert str(resolve_db_path(None)).endswith("jisik/jisik.db")


def test_reingest_unchanged_is_a_noop(app):
    d = doc("a", "부산은 항구 도시이다.")
    first = app.ingest_documents([d])
    again = app.ingest_documents([doc("a", "부산은 항구 도시이다.")])
    assert (first.added, again.added, again.unchanged) == (1, 0, 1)
    s = app.stats()
    assert (s["documents"], s["versions"], s["passages"]) == (1, 1, 1)


def test_changed_content_makes_a_new_version_and_closes_the_old(app):
    app.ingest_documents([doc("a", "기록은 52개이다.", published_at="2016-01-01")])
    app.ingest_documents([doc("a", "기록은 58개이다.", published_at="2024-10-02")])
    h = app.history("a")
    assert [v.version for v in h] == [1, 2]
    assert h[0].valid_to == h[1].valid_from == "2024-10-02"
    assert h[1].valid_to is None and not h[1].deleted
    assert app.store.document("a")["text"] == "기록은 58개이다."
    assert app.store.document("a", as_of="2020-05-05")["text"] == "기록은 52개이다."
    assert app.store.document("a", as_of="2015-01-01") is None


def test_delete_closes_and_recreate_starts_a_new_version(app):
    app.ingest_documents([doc("a", "첫 내용이다.", published_at="2020-01-01")])
    assert app.delete("a")
    assert not app.delete("a")
    assert app.store.document("a") is None
    assert app.history("a")[-1].deleted
    assert app.stats()["documents"] == 0
    app.ingest_documents([doc("a", "첫 내용이다.")])
    h = app.history("a")
    assert [v.version for v in h] == [1, 2] and h[-1].valid_to is None
    assert h[1].valid_from >= h[0].valid_to


def test_published_date_earlier_than_current_version_never_overlaps(app):
    app.ingest_documents([doc("a", "새 내용.", published_at="2024-01-01")])
    app.ingest_documents([doc("a", "더 새 내용.", published_at="2020-01-01")])
    h = app.history("a")
    assert h[1].valid_from == h[0].valid_to == "2024-01-01"


def test_chunks_follow_sentences_and_keep_offsets():
    text = "가나다라 마바사. " * 80
    chunks = chunk_sentences(get_analyzer().sentences(text), text, max_chars=100)
    assert len(chunks) > 5
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert len(c.text) <= 100
        assert c.text.endswith(".")


def test_store_pins_its_encoder(store_location):
    Jisik.open(store_location, encoder="none").close()
    with pytest.raises(ValueError, match="built with encoder 'none'"):
        Jisik.open(store_location, encoder="use")


@pytest.mark.parametrize("record, message", [
    ({"text": "본문"}, "'id'"),
    ({"id": "a"}, "'text'"),
    ({"id": "a", "text": "   "}, "empty"),
    ({"id": "a", "text": "본문", "published_at": "어제"}, "ISO date"),
    ({"id": "a", "text": "본문", "metadata": [1]}, "metadata"),
    (["a", "b"], "JSON object"),
])
def test_bad_records_get_clear_errors(record, message):
    from jisik.documents import Document

    with pytest.raises(InputError, match=message):
        Document.from_record(record)


def test_open_missing_store_without_create_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="jisik ingest"):
        Jisik.open(tmp_path / "nope.db", create=False)


def test_a_sentence_longer_than_a_chunk_is_cut_at_spaces():
    text = "목록 " * 400 + "끝."
    chunks = chunk_sentences(get_analyzer().sentences(text), text, max_chars=100)
    assert len(chunks) >= 8
    for c in chunks:
        assert len(c.text) <= 100 and text[c.start:c.end] == c.text


def test_reading_window_keeps_document_offsets():
    from jisik.app import read_window
    from jisik.documents import Hit

    text = "가나다 " * 1000 + "한라산은 높다. " + "라마바 " * 1000
    hit = Hit(id="d", title="t", score=1.0, text=text, start=10, end=10 + len(text))
    w = read_window(hit, ["한라산"], width=400)
    assert "한라산" in w.text and len(w.text) <= 400
    assert text[w.start - 10:w.end - 10] == w.text


def test_id_lists_longer_than_sqlites_parameter_limit_are_sent_in_parts(tmp_path, monkeypatch):
    """A 100k-article store has 340k passages; one `IN (...)` with all of them fails."""
    import sqlite3

    import jisik.store.sqlite as sqlite_store

    app = Jisik.open(tmp_path / "limit.db")
    app.ingest_documents([doc(f"d{i}", f"{i}번 문서는 시험용 문장이다.") for i in range(12)])
    store = app.store
    store._connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
    monkeypatch.setattr(sqlite_store, "PARAMETER_CHUNK", 4)
    passage_ids = [int(r[0]) for r in store._connection().execute("SELECT passage_id FROM passages")]
    assert len(passage_ids) == 12
    details = store.passage_details(passage_ids)
    assert sorted(details) == sorted(passage_ids)
    assert {d["id"] for d in details.values()} == {f"d{i}" for i in range(12)}
    assert len(store.doc_keys_for([f"d{i}" for i in range(12)])) == 12
    assert store.passage_details([]) == {} and len(store.doc_keys_for([])) == 0
