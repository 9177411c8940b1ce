"""Reading documents from files and writing them, analysed and embedded, into a store.

Bad input never stops an ingest: a malformed line or an undecodable file is reported with
its file and line number, and everything else still goes in.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from bisect import bisect_left
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .documents import Chunk, Document, InputError, chunk_sentences
from .embed import Encoder
from .korean import Analysis, Analyzer, terms_from_morphemes
from .store import Store

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson")
BATCH_DOCS = 64


@dataclass
class InputProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    passages: int = 0
    characters: int = 0
    seconds: float = 0.0
    problems: list[InputProblem] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    def to_json(self) -> dict:
        secs = max(self.seconds, 1e-9)
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "passages": self.passages, "characters": self.characters, "seconds": round(self.seconds, 3),
            "documents_per_s": round(self.documents / secs, 1), "passages_per_s": round(self.passages / secs, 1),
            "problems": [str(p) for p in self.problems],
        }


# --- reading -------------------------------------------------------------------------


def read_paths(paths: Iterable[str | Path], problems: list[InputProblem]) -> Iterator[Document]:
    """Documents from files and folders; problems are appended to `problems`, not raised."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
            for f in files:
                yield from _read_file(f, f.relative_to(path).as_posix(), problems)
        elif path.is_file():
            if _kind(path) is None:
                problems.append(InputProblem(str(path), None, "unsupported file type: use .jsonl, .jsonl.gz, .txt or .md"))
                continue
            yield from _read_file(path, path.name, problems)
        else:
            problems.append(InputProblem(str(path), None, "no such file or folder"))


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def _read_file(path: Path, rel_id: str, problems: list[InputProblem]) -> Iterator[Document]:
    if _kind(path) == "jsonl":
        yield from _read_jsonl(path, problems)
        return
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(InputProblem(str(path), None, f"not UTF-8 (byte {exc.start}): convert it, e.g. iconv -f cp949 -t utf-8"))
        return
    except OSError as exc:
        problems.append(InputProblem(str(path), None, f"cannot read: {exc.strerror}"))
        return
    first = text.lstrip().split("\n", 1)[0].strip()
    title = first.lstrip("#").strip() if first.startswith("#") else path.stem
    try:
        yield Document.from_record({"id": rel_id, "title": title, "text": text})
    except InputError as exc:
        problems.append(InputProblem(str(path), None, str(exc)))


def _read_jsonl(path: Path, problems: list[InputProblem]) -> Iterator[Document]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                    yield Document.from_record(record)
                except UnicodeDecodeError as exc:
                    problems.append(InputProblem(str(path), lineno, f"not UTF-8 (byte {exc.start} of the line)"))
                except json.JSONDecodeError as exc:
                    problems.append(InputProblem(str(path), lineno, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                except InputError as exc:
                    problems.append(InputProblem(str(path), lineno, str(exc)))
    except (OSError, EOFError) as exc:
        problems.append(InputProblem(str(path), None, f"cannot read: {exc}"))


# --- analysing and writing ----------------------------------------------------------


@dataclass
class PreparedDocument:
    doc: Document
    chunks: list[Chunk]
    terms: list[str]


def prepare(docs: list[Document], analysis: list[Analysis]) -> list[PreparedDocument]:
    """Chunk along sentences and give each chunk the content morphemes that fall inside it."""
    out = []
    for doc, a in zip(docs, analysis):
        chunks = chunk_sentences(a.sentences, doc.text)
        starts = [m.start for m in a.morphemes]
        terms = []
        for c in chunks:
            lo, hi = bisect_left(starts, c.start), bisect_left(starts, c.end)
            terms.append(" ".join(terms_from_morphemes(a.morphemes[lo:hi])))
        out.append(PreparedDocument(doc, chunks, terms))
    return out


class Ingester:
    """Analyse, embed and store documents in batches.

    Analysis (Kiwi, C++) and encoding (numpy BLAS) both release the GIL, so the next batch
    is analysed on a second thread while the current one is encoded: ingest runs near the
    slower of the two instead of their sum.
    """

    def __init__(self, store: Store, analyzer: Analyzer, encoder: Encoder | None) -> None:
        self.store = store
        self.analyzer = analyzer
        self.encoder = encoder
        self._lock = threading.Lock()

    def ingest(self, docs: Iterable[Document], report: IngestReport | None = None,
               progress=None) -> IngestReport:
        report = report or IngestReport()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for batch in _batches(docs, BATCH_DOCS):
                todo = [d for d in batch if self.store.current_hash(d.id) != d.content_hash]
                report.unchanged += len(batch) - len(todo)
                future = pool.submit(self._analyse, todo)
                if pending is not None:
                    self._write(pending.result(), report, progress)
                pending = future
                if progress is not None and len(todo) < len(batch):
                    progress.update(len(batch) - len(todo))
            if pending is not None:
                self._write(pending.result(), report, progress)
        report.seconds += time.perf_counter() - start
        return report

    def _analyse(self, docs: list[Document]) -> list[PreparedDocument]:
        if not docs:
            return []
        return prepare(docs, self.analyzer.analyze_batch([d.text for d in docs]))

    def _write(self, prepared: list[PreparedDocument], report: IngestReport, progress) -> None:
        texts = [c.text for p in prepared for c in p.chunks]
        vectors = self.encoder.encode_passages(texts) if self.encoder is not None and texts else None
        offset = 0
        for p in prepared:
            n = len(p.chunks)
            result = self.store.put(p.doc, p.chunks, p.terms,
                                    vectors[offset:offset + n] if vectors is not None else None)
            offset += n
            if result.status == "unchanged":
                report.unchanged += 1
            else:
                report.added += result.status == "added"
                report.updated += result.status == "updated"
                report.passages += n
                report.characters += len(p.doc.text)
        if progress is not None:
            progress.update(len(prepared))
            elapsed = max(progress.format_dict.get("elapsed", 0.0), 1e-9)
            progress.set_postfix_str(f"{report.passages / elapsed:.0f} passages/s", refresh=False)


def _batches(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

