"""The saved index (<db>.index/): same results as a rebuild, picked up after more ingest,
ignored when stale or corrupt, and versions (update / delete / as-of) still right.
Every Korean text here is written for these tests."""

from __future__ import annotations

import json
import numpy as np
import pytest

import jisik.index as index_mod
from jisik.app import Jisik
from jisik.documents import Document
from jisik.index import PassageIndex
from jisik.index_cache import IndexCache
from jisik.retrieve import Retriever

DOCS = [
    {"id": "jeonju", "title": "전주", "text": "전주는 비빔밥과 한옥마을로 이름난 전라북도의 도시이다. 매년 봄에 국제영화제가 열린다."},
    {"id": "gyeongju", "title": "경주", "text": "경주는 신라의 천년 수도였다. 불국사와 석굴암이 경주에 있다.",
    },
    {"id": "tea", "title": "녹차밭", "text": "보성의 녹차밭은 산비탈을 따라 계단처럼 이어진다. 오월에 첫물 차를 딴다."},
    {"id": "robot", "title": "바다로봇연구소",
     "text": "바다로봇연구소는 2015년 포항에 세워졌다. 깊은 바다를 탐사하는 로봇을 만든다."},
    {"id": "festival", "title": "반딧불축제",
     "text": "무주 반딧불축제는 여름밤 반딧불이를 보러 온 사람들로 붐빈다. 남대천 일대에서 열린다."},
    {"id": "bridge", "title": "무지개다리",
     "text": "무지개다리는 밤마다 분수를 뿜는 다리이다. 한강 위에 놓여 있으며 길이는 천백 미터이다."},
]
MORE = [
    {"id": "island", "title": "울릉도", "text": "울릉도는 동해에 있는 화산섬이다. 오징어와 호박엿이 유명하다."},
    {"id": "jeonju", "title": "전주", "text": "전주는 전라북도의 도청 소재지이다. 콩나물국밥이 유명하다."},
]
QUERIES = ["비빔밥으로 유명한 도시", "신라의 수도", "녹차밭에서 차를 따는 달", "포항에 세워진 연구소",
           "반딧불이를보러가는축제", "분수를 뿜는 다리", "화산섬의 특산물", "전주 국제영화제"]
MODES = ["hybrid", "fused", "lexical", "bigram"]


def docs(records, published_at="2020-01-01"):
    return [Document.from_record({"published_at": published_at, **r}) for r in records]


def results(retriever, **kwargs):
    return {(q, mode): [(h.id, h.passage_id, h.score) for h in retriever.search(q, 5, mode=mode, **kwargs)]
            for q in QUERIES for mode in MODES}


def fresh(app, cache=True):
    """A new retriever over the app's store, as a new process would make it."""
    r = Retriever(app.store, analyzer=app.analyzer, encoder=None)
    if not cache:
        r.index = PassageIndex(app.store, None, analyzer=app.analyzer, cache=False)
    return r


@pytest.fixture
def app(tmp_path):
    a = Jisik.open(tmp_path / "c.db", encoder="none")
    a.ingest_documents(docs(DOCS))
    yield a
    a.close()


def cache_dir(app):
    return IndexCache.for_store(app.store).folder


def test_small_store_does_not_save(app):
    r = fresh(app)
    assert not r.index.loaded_from_cache
    assert not cache_dir(app).exists()  # far below SAVE_MIN_NEW passages


def test_saved_index_gives_identical_results(app):
    built = fresh(app)
    assert built.index.save()
    loaded = fresh(app)
    assert loaded.index.loaded_from_cache
    rebuilt = fresh(app, cache=False)
    assert results(loaded) == results(rebuilt) == results(built)
    assert results(loaded, as_of="2021-01-01") == results(rebuilt, as_of="2021-01-01")
    assert loaded.index.titles == rebuilt.index.titles
    assert np.array_equal(loaded.index.passage_ids, rebuilt.index.passage_ids)
    assert len([p for p in cache_dir(app).iterdir() if p.is_dir()]) == 1


def test_cache_is_extended_by_later_ingest(app):
    fresh(app).index.save()
    app.ingest_documents(docs(MORE))  # a new document and a new version of an old one
    loaded = fresh(app)
    assert loaded.index.loaded_from_cache and loaded.index.saved_size < loaded.index.size
    assert results(loaded) == results(fresh(app, cache=False))
    assert loaded.search("화산섬의 특산물", 1)[0].id == "island"
    assert "jeonju" not in [h.id for h in loaded.search("비빔밥 한옥마을", 3, mode="lexical")]


def test_versions_are_not_cached(app):
    fresh(app).index.save()
    app.ingest_documents(docs(MORE[1:], "2021-06-01"))  # jeonju v2 closes v1
    app.delete("tea")
    loaded = fresh(app)
    assert loaded.index.loaded_from_cache
    assert "tea" not in [h.id for h in loaded.search("보성 녹차밭", 5)]
    assert "jeonju" not in [h.id for h in loaded.search("비빔밥 한옥마을", 5, mode="lexical")]
    assert loaded.search("콩나물국밥", 1)[0].id == "jeonju"
    # Before the edits, the old version and the deleted document are visible again.
    old = loaded.search("비빔밥 한옥마을", 1, as_of="2021-01-01", mode="lexical")
    assert old[0].id == "jeonju" and old[0].version == 1
    assert "tea" in [h.id for h in loaded.search("보성 녹차밭", 5, as_of="2021-01-01")]
    assert loaded.search("콩나물국밥", 5, as_of="2019-01-01") == []
    rebuilt = fresh(app, cache=False)
    for kwargs in ({"as_of": "2021-01-01"}, {"candidate_ids": ["gyeongju", "robot"]}, {}):
        assert results(loaded, **kwargs) == results(rebuilt, **kwargs)


def test_automatic_save_after_enough_new_passages(app, monkeypatch):
    monkeypatch.setattr(index_mod, "SAVE_MIN_NEW", 3)
    r = fresh(app)
    assert r.index.saved_size == r.index.size and (cache_dir(app) / "CURRENT").exists()
    app.ingest_documents(docs(MORE[:1]))  # one passage: not enough for another save
    r.index.refresh()
    assert r.index.saved_size < r.index.size


def test_chunked_build_is_identical(app, monkeypatch):
    whole = results(fresh(app, cache=False))
    monkeypatch.setattr(index_mod, "BUILD_CHUNK", 2)
    chunked = fresh(app, cache=False)
    assert len(chunked.index.bigram.blocks) == 1  # chunks merged at the end of the refresh
    assert results(chunked) == whole


def test_other_store_at_same_path_is_ignored(app, tmp_path):
    fresh(app).index.save()
    folder = cache_dir(app)
    app.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / ("c.db" + suffix)).unlink(missing_ok=True)
    other = Jisik.open(tmp_path / "c.db", encoder="none")
    other.ingest_documents(docs(DOCS[3:]))
    assert folder.exists()
    r = fresh(other)
    assert not r.index.loaded_from_cache
    assert results(r) == results(fresh(other, cache=False))
    other.close()


def _current(app):
    folder = cache_dir(app)
    return folder / (folder / "CURRENT").read_text().strip()


@pytest.mark.parametrize("damage", ["truncate", "manifest_format", "analyzer", "garbage_json", "missing_file",
                                    "bad_pointer", "fingerprint", "vocab_size"])
def test_damaged_cache_is_ignored(app, damage):
    fresh(app).index.save()
    folder = _current(app)
    manifest = json.loads((folder / "manifest.json").read_text())
    if damage == "truncate":
        path = folder / "bigram.b0.data.npy"
        path.write_bytes(path.read_bytes()[:-8])
    elif damage == "manifest_format":
        manifest["format"] = 0
    elif damage == "analyzer":
        manifest["analyzer"] = "mecab"
    elif damage == "garbage_json":
        (folder / "morph.vocab.json").write_text("{not json", encoding="utf-8")
        manifest["files"]["morph.vocab.json"] = 9
    elif damage == "missing_file":
        (folder / "title_of.npy").unlink()
    elif damage == "bad_pointer":
        (cache_dir(app) / "CURRENT").write_text("nowhere\n")
    elif damage == "fingerprint":
        manifest["fingerprint"][0][2] = "0" * 40
    elif damage == "vocab_size":
        manifest["morph_index"]["vocab_size"] += 1
    if damage in ("manifest_format", "analyzer", "garbage_json", "fingerprint", "vocab_size"):
        (folder / "manifest.json").write_text(json.dumps(manifest))
    r = fresh(app)
    assert not r.index.loaded_from_cache
    assert results(r) == results(fresh(app, cache=False))


def test_save_is_skipped_while_another_process_saves(app):
    import fcntl

    r = fresh(app)
    folder = cache_dir(app)
    folder.mkdir(parents=True)
    with open(folder / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert not r.index.save()
    assert r.index.save()
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())


def test_cache_with_dense_vectors(tmp_path):
    """Dense vectors travel through the cache (float16 on disk, like the store); a cache
    saved for another dimension is ignored."""
    from jisik.documents import Chunk
    from jisik.store import open_store

    store = open_store(tmp_path / "d.db")
    rng = np.random.default_rng(0)
    for rec in DOCS:
        d = Document.from_record(rec)
        vec = rng.normal(size=(1, 8)).astype(np.float32)
        store.put(d, [Chunk(0, len(d.text), d.text)], ["단어"], vec / np.linalg.norm(vec))
    built = PassageIndex(store, 8)
    assert built.save()
    loaded = PassageIndex(store, 8)
    assert loaded.loaded_from_cache
    assert np.array_equal(loaded.dense.matrix, built.dense.matrix)
    assert np.array_equal(loaded.dense.scores(built.dense.matrix[0]), built.dense.scores(built.dense.matrix[0]))
    assert not PassageIndex(store, None).loaded_from_cache
    store.close()
