"""Shared fixtures. Every Korean text here is written for these tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jisik.app import Jisik
from jisik.documents import Document

SAMPLE = Path(__file__).resolve().parent.parent / "jisik" / "sample"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def app(tmp_path) -> Jisik:
    """An empty store with the default analyser and encoder."""
    a = Jisik.open(tmp_path / "test.db")
    yield a
    a.close()


@pytest.fixture
def sample_app(app) -> Jisik:
    """The bundled sample corpus, ingested."""
    app.ingest_paths([SAMPLE / "docs.jsonl"])
    return app


def doc(doc_id: str, text: str, **kwargs) -> Document:
    return Document.from_record({"id": doc_id, "text": text, **kwargs})
