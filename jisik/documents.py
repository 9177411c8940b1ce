"""The shapes that flow through jisik: documents in, passages stored, hits out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from .korean import Sentence, normalize

MAX_CHUNK_CHARS = 500


class InputError(ValueError):
    """Bad user input; the message says what to fix."""


@dataclass
class Document:
    id: str
    text: str
    title: str = ""
    url: str | None = None
    published_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Any) -> "Document":
        """Validate one input record (a JSON object) and normalise its text."""
        if not isinstance(record, dict):
            raise InputError("expected a JSON object with at least 'id' and 'text'")
        doc_id, text = record.get("id"), record.get("text")
        if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool) or str(doc_id) == "":
            raise InputError("'id' must be a non-empty string")
        if not isinstance(text, str):
            raise InputError("'text' must be a string")
        if not text.strip():
            raise InputError("'text' is empty")
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise InputError("'title' must be a string")
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InputError("'metadata' must be a JSON object")
        url = record.get("url")
        if url is not None and not isinstance(url, str):
            raise InputError("'url' must be a string")
        return cls(
            id=str(doc_id),
            text=normalize(text),
            title=normalize(title).strip(),
            url=url,
            published_at=parse_date(record.get("published_at")),
            metadata=metadata,
        )

    @property
    def content_hash(self) -> str:
        """What counts as 'changed': text, title, url, date and metadata."""
        payload = json.dumps(
            [self.title, self.text, self.url, self.published_at, self.metadata],
            ensure_ascii=False, sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A passage: a run of whole sentences, with offsets into its document's text."""

    start: int
    end: int
    text: str


def chunk_sentences(sentences: list[Sentence], text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Greedy packing of whole sentences up to max_chars.

    A longer "sentence" (lists and tables often have no sentence punctuation) is cut at
    whitespace into pieces of at most max_chars, so no passage is unboundedly long.
    """
    chunks: list[Chunk] = []
    start = end = None
    for s in _bounded(sentences, text, max_chars):
        if start is not None and s.end - start > max_chars:
            chunks.append(Chunk(start, end, text[start:end]))
            start = None
        if start is None:
            start = s.start
        end = s.end
    if start is not None:
        chunks.append(Chunk(start, end, text[start:end]))
    return chunks


def _bounded(sentences: list[Sentence], text: str, max_chars: int):
    for s in sentences:
        lo = s.start
        while s.end - lo > max_chars:
            cut = text.rfind(" ", lo + max_chars // 2, lo + max_chars)
            cut = cut if cut > lo else lo + max_chars
            yield Sentence(text[lo:cut], lo, cut)
            lo = cut
            while lo < s.end and text[lo].isspace():
                lo += 1
        if lo < s.end:
            yield Sentence(text[lo:s.end], lo, s.end)


@dataclass
class Hit:
    """One retrieved passage. `start`/`end` are offsets into the document's text."""

    id: str
    title: str
    score: float
    text: str
    start: int
    end: int
    passage_id: int = 0
    version: int = 1
    published_at: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(float(self.score), 6)
        return out


def parse_date(value: Any) -> str | None:
    """ISO date or datetime in, canonical 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM:SS' out (UTC)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"date must be an ISO string like '2022-03-01', got {value!r}")
    value = value.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an ISO date: {value!r} (use e.g. 2022-03-01 or 2022-03-01T09:00:00)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed.isoformat(timespec="seconds")


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def end_of_day(value: str) -> str:
    """An as-of date means 'at the end of that day': a version published that day is seen."""
    return value + "T23:59:59.999999" if len(value) == 10 else value
