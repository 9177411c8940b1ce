"""What only the PostgreSQL store has to get right: several writers at once, connecting by
URL, and never printing a password. (The versioning contract itself runs on both stores:
test_store.py, test_memory.py.)"""

import threading

import numpy as np
import pytest

from jisik.app import Jisik
from jisik.documents import Chunk
from jisik.store import open_store
from jisik.store.postgres import PostgresStore, redact

from .conftest import doc


@pytest.fixture
def url(postgres_server):
    return postgres_server.new_database()


def put(store, doc_id: str, text: str) -> None:
    half = text.index(" ", len(text) // 2)
    chunks = [Chunk(0, half, text[:half]), Chunk(half + 1, len(text), text[half + 1:])]
    store.put(doc(doc_id, text), chunks, ["시험"] * len(chunks), np.zeros((len(chunks), 4)))


def test_a_reader_that_polls_while_writers_race_sees_every_passage(url):
    """Each reader's index catches up with `passages_after(last seen id)`. If a passage id
    could be committed after a larger one, a poll in between would skip it for good."""
    writers = [PostgresStore(url) for _ in range(4)]
    reader = PostgresStore(url)
    errors = []

    def write(w: int) -> None:
        try:
            for i in range(25):
                put(writers[w], f"w{w}-{i}", f"{w}번 작성자의 {i}번째 문장이다. 두 번째 문장도 있다.")
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    seen, last = [], 0

    def poll() -> None:
        nonlocal last
        for record in reader.passages_after(last):
            seen.append(record.passage_id)
            last = record.passage_id

    while any(t.is_alive() for t in threads):
        poll()
    for t in threads:
        t.join()
    poll()
    stored = [r[0] for r in reader._read("SELECT passage_id FROM passages ORDER BY passage_id").fetchall()]
    assert not errors
    assert len(stored) == 200 and seen == stored
    assert reader.stats()["documents"] == 100 and reader.generation() == 100


def test_a_url_in_jisik_db_opens_postgres_and_answers(url, monkeypatch):
    monkeypatch.setenv("JISIK_DB", url)
    app = Jisik.open()
    assert isinstance(app.store, PostgresStore)
    app.ingest_documents([doc("ktx", "KTX는 2004년 4월 1일에 개통하였다.", published_at="2004-04-01")])
    out = app.ask("KTX는 언제 개통했나?")
    assert out["answer"] == "2004년 4월 1일" and out["evidence"]["published_at"] == "2004-04-01"
    app.close()


def test_an_empty_database_without_create_says_what_to_do(url):
    with pytest.raises(FileNotFoundError, match="jisik ingest"):
        open_store(url, create=False)


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="cannot connect to postgresql://"):
        PostgresStore(f"postgresql://jisik@/none?host={tmp_path}")


def test_passwords_never_reach_messages_or_stats(url, tmp_path):
    assert redact("postgresql://kim:s3cret@db.example:5432/jisik") == "postgresql://kim:***@db.example:5432/jisik"
    assert redact("postgresql://kim@db/jisik") == "postgresql://kim@db/jisik"
    with pytest.raises(RuntimeError) as failed:
        PostgresStore(f"postgresql://kim:s3cret@/none?host={tmp_path}")
    assert "s3cret" not in str(failed.value) and "kim:***@" in str(failed.value)
    assert PostgresStore(url).stats()["path"] == url  # no password here: nothing to hide
