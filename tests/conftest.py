"""Shared fixtures. Every Korean text here is written for these tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jisik.app import Jisik
from jisik.documents import Document

SAMPLE = Path(__file__).resolve().parent.parent / "jisik" / "sample"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


STORES = ("sqlite", "postgres")


def pytest_generate_tests(metafunc):
    """A module that sets `BOTH_STORES = True` runs each test that opens a store twice: on
    the embedded SQLite store and on PostgreSQL, so the two cannot drift apart."""
    if getattr(metafunc.module, "BOTH_STORES", False) and "store_location" in metafunc.fixturenames:
        metafunc.parametrize("store_location", STORES, indirect=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole run: $JISIK_TEST_POSTGRES, else a throwaway one."""
    from .postgres_server import ExistingPostgres, TemporaryPostgres

    pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg: pip install -e '.[test]'")
    url = os.environ.get("JISIK_TEST_POSTGRES")
    try:
        server = ExistingPostgres(url) if url else TemporaryPostgres()
    except RuntimeError as e:
        pytest.skip(f"PostgreSQL store not tested: {e}")
    with server:
        yield server


@pytest.fixture
def store_location(request, tmp_path) -> str | Path:
    """Where `app` keeps its store: a SQLite file, or a new PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "postgres":
        return request.getfixturevalue("postgres_server").new_database()
    return tmp_path / "test.db"


@pytest.fixture
def app(store_location) -> Jisik:
    """An empty store with the default analyser and encoder."""
    a = Jisik.open(store_location)
    yield a
    a.close()


@pytest.fixture
def sample_app(app) -> Jisik:
    """The bundled sample corpus, ingested."""
    app.ingest_paths([SAMPLE / "docs.jsonl"])
    return app


def doc(doc_id: str, text: str, **kwargs) -> Document:
    return Document.from_record({"id": doc_id, "text": text, **kwargs})
