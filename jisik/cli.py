"""The `jisik` command: a thin shell over jisik.app, for people (Korean-friendly text) and
scripts (--json, one JSON object per line)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from .documents import InputError
from .index import SAVE_MIN_NEW
from .present import answer_lines, hit_json


def db_option(f):
    return click.option("--db", "db", default=None, metavar="PATH|URL",
                        help="Store: a SQLite file, or a postgresql:// URL "
                             "(default: $JISIK_DB, else ~/.local/share/jisik/jisik.db).")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(f)


def min_confidence_option(f):
    return click.option("--min-confidence", "min_confidence", type=click.FloatRange(0.0, 1.0), default=None,
                        help="Answer only at this confidence (the chance of a right answer, 0..1) or above, "
                             "instead of the calibrated threshold: lower answers more and guesses more. "
                             "Skips the question memory.")(f)


def emit(obj) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def emit_result(result: dict, as_json: bool) -> None:
    """An eval result: indented for reading, or one line with --json."""
    if as_json:
        emit(result)
    else:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@contextmanager
def reporting_input_errors():
    """Bad input (a malformed file, an unknown id) ends the command with its message, not a traceback."""
    try:
        yield
    except InputError as exc:
        raise click.ClickException(str(exc)) from None


def open_app(db, create=False, **kwargs):
    from .app import Jisik

    try:
        return Jisik.open(db, create=create, **kwargs)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="jisik")
def main() -> None:
    """jisik (지식): Korean question answering over your own documents, kept current."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@db_option
@json_option
@click.option("--encoder", type=click.Choice(["use", "e5", "none"]), default=None,
              help="Dense encoder for a new store (default use). Fixed once the store exists.")
@click.option("--analyzer", type=click.Choice(["kiwi", "mecab"]), default=None,
              help="Morphological analyser for a new store (default kiwi).")
def ingest(paths, db, as_json, encoder, analyzer):
    """Add or update documents: .jsonl/.jsonl.gz records, .txt/.md files, or folders of them."""
    from tqdm import tqdm

    app = open_app(db, create=True, encoder=encoder, analyzer=analyzer)
    with tqdm(unit=" docs", desc="ingest", file=sys.stderr, disable=as_json or None) as bar:
        report = app.ingest_paths(paths, progress=bar)
    for problem in report.problems:
        click.echo(f"경고: {problem}", err=True)
    if report.passages >= SAVE_MIN_NEW:
        if not as_json:
            click.echo("검색 인덱스를 만들어 저장하는 중…", err=True)
        app.retriever.index.refresh()  # builds and saves the index next to the store

    if as_json:
        emit(report.to_json())
    else:
        r = report.to_json()
        click.echo(f"문서 {report.documents}건 처리 (추가 {r['added']}, 갱신 {r['updated']}, 변경 없음 {r['unchanged']}), "
                   f"패시지 {r['passages']}개, {r['seconds']}초 ({r['documents_per_s']} 문서/s, "
                   f"{r['passages_per_s']} 패시지/s), 문제 {len(report.problems)}건 → {app.store.location}")
    app.close()
    if report.problems and report.documents == 0:
        sys.exit(1)


@main.command()
@click.argument("query", required=False)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--batch", type=click.Path(exists=True, dir_okay=False),
              help='JSONL of {"id", "question", "candidate_ids"?, "as_of"?}; one result line each.')
@click.option("--as-of", "as_of", default=None, help="See the documents as they were on this date (YYYY-MM-DD).")
@click.option("--mode", type=click.Choice(["hybrid", "fused", "lexical", "bigram", "dense"]), default="hybrid", show_default=True,
              help="hybrid = fused BM25 channels + learned reranker; the others are its parts.")
@db_option
@json_option
def search(query, k, batch, as_of, mode, db, as_json):
    """Find the passages that best match QUERY."""
    from .retrieve import timed_search

    if (query is None) == (batch is None):
        raise click.UsageError("give a QUERY or --batch FILE (not both)")
    app = open_app(db)
    app.retriever.warm_up()
    with reporting_input_errors():
        if batch:
            def one(item):
                hits, ms = timed_search(app.retriever, item["question"], k=k, mode=mode,
                                        candidate_ids=item.get("candidate_ids"), as_of=item.get("as_of") or as_of)
                emit({"id": item["id"], "hits": [hit_json(h) for h in hits], "latency_ms": round(ms, 2)})
            _run_batch(batch, one)
            return
        hits, ms = timed_search(app.retriever, query, k=k, mode=mode, as_of=as_of)
    if as_json:
        emit({"query": query, "hits": [hit_json(h) for h in hits], "latency_ms": round(ms, 2)})
        return
    if not hits:
        click.echo("검색 결과가 없습니다.")
    for rank, h in enumerate(hits, 1):
        date = f" · {h.published_at[:10]}" if h.published_at else ""
        click.echo(f"{rank:>2}. {h.title or h.id} [{h.id} v{h.version}{date}] 점수 {h.score:.3f}")
        snippet = h.text.replace("\n", " ")
        click.echo(f"    {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
    click.echo(f"({len(hits)}건, {ms:.1f} ms)", err=True)


@main.command()
@click.argument("question", required=False)
@click.option("--batch", type=click.Path(exists=True, dir_okay=False),
              help='JSONL of {"id", "question", "candidate_ids"?, "as_of"?}; one answer line each.')
@click.option("--as-of", "as_of", default=None, help="Answer from the documents as they were on this date.")
@click.option("--no-memory", is_flag=True, help="Always read the documents; skip remembered answers.")
@min_confidence_option
@db_option
@json_option
def ask(question, batch, as_of, no_memory, min_confidence, db, as_json):
    """Answer a Korean QUESTION with the supporting sentence and its source, or decline."""
    if (question is None) == (batch is None):
        raise click.UsageError("give a QUESTION or --batch FILE (not both)")
    app = open_app(db)
    with reporting_input_errors():
        if batch:
            def one(item):
                out = app.ask(item["question"], as_of=item.get("as_of") or as_of,
                              candidate_ids=item.get("candidate_ids"), use_memory=not no_memory,
                              min_confidence=min_confidence)
                if as_json:
                    emit({"id": item["id"], **out})
                else:
                    click.echo(f"[{item['id']}] {item['question']}")
                    _print_answer(out)
            _run_batch(batch, one)
            return
        out = app.ask(question, as_of=as_of, use_memory=not no_memory, min_confidence=min_confidence)
    if as_json:
        emit(out)
    else:
        _print_answer(out)


def _print_answer(out: dict) -> None:
    for line in answer_lines(out):
        click.echo(f"  {line}")


def _run_batch(path, handle) -> None:
    """Call `handle` on each input line; a bad line or value gets an error line, not an abort."""
    for item in _batch_lines(path):
        if "error" not in item:
            try:
                handle(item)
                continue
            except InputError as exc:
                item = {"id": item["id"], "error": str(exc)}
                click.echo(f"경고: {path}: id {item['id']}: {exc}", err=True)
        emit(item)


def _batch_lines(path):
    """Parsed batch input; a bad line yields {"id", "error"} so outputs stay one per input."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            item = None
            try:
                item = json.loads(raw.decode("utf-8"))
                if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                    raise ValueError("expected an object with a 'question' string")
                item.setdefault("id", str(lineno))
                yield item
            except (UnicodeDecodeError, ValueError) as exc:
                click.echo(f"경고: {path}:{lineno}: {exc}", err=True)
                given = item.get("id") if isinstance(item, dict) else None  # so the error joins its input
                yield {"id": str(lineno) if given is None else given, "error": f"line {lineno}: {exc}"}


@main.command()
@db_option
@json_option
def stats(db, as_json):
    """Counts of documents, versions, passages and remembered answers."""
    app = open_app(db)
    s = app.stats()
    if as_json:
        emit(s)
        return
    labels = {"path": "저장소", "documents": "현재 문서", "deleted_documents": "삭제된 문서", "versions": "버전",
              "passages": "현재 패시지", "passages_all_versions": "전체 패시지(모든 버전)", "characters": "글자 수",
              "memories": "기억된 답변", "bytes": "파일 크기(바이트)", "encoder": "인코더", "analyzer": "형태소 분석기"}
    for key, value in s.items():
        click.echo(f"{labels.get(key, key)}: {value}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to accept other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@db_option
def serve(host, port, db):
    """Serve the HTTP API (/v1/ask, /v1/search, OpenAI-compatible /v1/chat/completions) and the page at /."""
    from .api import make_server

    app = open_app(db)
    app.warm_up()
    try:
        server = make_server(app, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc} (try another --port)") from None
    click.echo(f"지식 서버: http://{host}:{server.server_port}/  (API: /v1/ask, /v1/chat/completions; 끝내려면 Ctrl+C)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.argument("doc_ids", nargs=-1, required=True)
@db_option
@json_option
def delete(doc_ids, db, as_json):
    """Remove documents from search and answers from now on (history and as-of keep them)."""
    app = open_app(db)
    missing = []
    for doc_id in doc_ids:
        ok = app.delete(doc_id)
        if not ok:
            missing.append(doc_id)
        if as_json:
            emit({"id": doc_id, "deleted": ok})
        elif ok:
            click.echo(f"삭제됨: {doc_id}")
        else:
            click.echo(f"없음(이미 삭제되었거나 존재하지 않음): {doc_id}", err=True)
    if missing and len(missing) == len(doc_ids):
        sys.exit(1)


@main.command()
@click.argument("doc_id")
@db_option
@json_option
def history(doc_id, db, as_json):
    """Every version of a document, with the time each was current."""
    app = open_app(db)
    versions = app.history(doc_id)
    if not versions:
        raise click.ClickException(f"문서가 없습니다: {doc_id}")
    for v in versions:
        if as_json:
            emit(v.__dict__)
        else:
            until = "현재" if v.valid_to is None else v.valid_to
            flag = " (삭제됨)" if v.deleted else ""
            click.echo(f"v{v.version}: {v.valid_from} ~ {until}{flag} · {v.title} · 패시지 {v.passages}개")


@main.group(name="eval")
def eval_group() -> None:
    """Measure jisik on your own data (see docs/benchmarks.md)."""


@eval_group.command(name="retrieval")
@click.option("--passages", "passages", multiple=True, required=True, type=click.Path(exists=True),
              help="Documents to search (repeatable).")
@click.option("--questions", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, default=None, help="Use only the first N questions.")
@click.option("--modes", default="lexical,dense,hybrid", show_default=True)
@click.option("--no-spaces", is_flag=True, help="Also run every question with its spaces removed.")
@click.option("--encoder", type=click.Choice(["use", "e5", "none"]), default=None)
@db_option
@json_option
def eval_retrieval(passages, questions, limit, modes, no_spaces, encoder, db, as_json):
    """Ingest into a fresh (or the given) store and report recall, MRR, nDCG and latency."""
    from .eval import evaluate_retrieval

    emit_result(evaluate_retrieval(passages, questions, db=db, limit=limit, modes=modes.split(","),
                                   no_spaces=no_spaces, encoder=encoder), as_json)


@eval_group.command(name="qa")
@click.option("--passages", "passages", multiple=True, required=True, type=click.Path(exists=True))
@click.option("--questions", required=True, type=click.Path(exists=True, dir_okay=False),
              help='JSONL with "question" and gold "answers" (and "gold_id" for the held-out split).')
@click.option("--split", type=click.Choice(["heldout", "train", "all"]), default="heldout", show_default=True,
              help="KorQuAD questions kept out of training (jisik/splits.py), the rest, or all.")
@click.option("--limit", type=int, default=None)
@click.option("--encoder", type=click.Choice(["use", "e5", "none"]), default=None)
@min_confidence_option
@db_option
@json_option
def eval_qa(passages, questions, split, limit, encoder, min_confidence, db, as_json):
    """EM/F1 (KorQuAD 1.0 definitions), evidence-contains-gold and latency of `ask`."""
    from .eval import evaluate_qa

    with reporting_input_errors():
        emit_result(evaluate_qa(passages, questions, db=db, limit=limit, split=split, encoder=encoder,
                                min_confidence=min_confidence), as_json)


@eval_group.command(name="abstain")
@click.option("--passages", "passages", multiple=True, required=True, type=click.Path(exists=True))
@click.option("--questions", required=True, type=click.Path(exists=True, dir_okay=False),
              help='NoMIRACL-style JSONL: "question", "candidate_ids", "subset" (relevant / non_relevant).')
@click.option("--limit", type=int, default=None)
@click.option("--encoder", type=click.Choice(["use", "e5", "none"]), default=None)
@min_confidence_option
@db_option
@json_option
def eval_abstain(passages, questions, limit, encoder, min_confidence, db, as_json):
    """Hallucination rate (answered when no candidate answers) and error rate (declined when one does)."""
    from .eval import evaluate_abstention

    with reporting_input_errors():
        emit_result(evaluate_abstention(passages, questions, db=db, limit=limit, encoder=encoder,
                                        min_confidence=min_confidence), as_json)


if __name__ == "__main__":
    main()
