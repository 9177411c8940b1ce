"""Reading files: formats, folders, bad lines and bad bytes."""

import gzip
import json

from jisik.ingest import read_paths

from .conftest import write_jsonl


def test_jsonl_gz_txt_md_and_folders(tmp_path, app):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("제주도는 섬이다. 한라산이 있다.", encoding="utf-8")
    (folder / "sub" / "b.md").write_text("# 김장\n김치를 한꺼번에 담그는 일이다.", encoding="utf-8")
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    gz = tmp_path / "more.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"id": "g1", "title": "압축", "text": "압축된 문서이다."}, ensure_ascii=False) + "\n")
    report = app.ingest_paths([folder, gz])
    assert report.added == 3 and not report.problems
    assert app.store.document("a.txt")["title"] == "a"
    assert app.store.document("sub/b.md")["title"] == "김장"
    assert app.store.document("g1")["text"] == "압축된 문서이다."


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_goes_in(tmp_path, app):
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "ok1", "text": "첫 문서이다."}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "no-text"}),
        "",
        json.dumps({"id": "ok2", "text": "둘째 문서이다."}, ensure_ascii=False),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = app.ingest_paths([path])
    assert report.added == 2
    problems = [str(p) for p in report.problems]
    assert problems[0].startswith(f"{path}:2: invalid JSON")
    assert problems[1].startswith(f"{path}:3:") and "'text'" in problems[1]


def test_non_utf8_bytes_lose_only_that_line_or_file(tmp_path, app):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps({"id": "ok", "text": "정상 문서이다."}, ensure_ascii=False).encode()
    bad = '{"id": "bad", "text": "'.encode() + "깨진 글".encode("cp949") + b'"}'
    path.write_bytes(bad + b"\n" + good + b"\n")
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("옛날 인코딩 문서".encode("cp949"))
    report = app.ingest_paths([path, legacy])
    assert report.added == 1 and app.store.document("ok") is not None
    messages = [str(p) for p in report.problems]
    assert any(m.startswith(f"{path}:1: not UTF-8") for m in messages)
    assert any(m.startswith(str(legacy)) and "iconv" in m for m in messages)


def test_missing_and_unsupported_paths_are_problems_not_crashes(tmp_path):
    problems = []
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    assert list(read_paths([tmp_path / "missing.jsonl", tmp_path / "x.pdf"], problems)) == []
    assert "no such file" in str(problems[0]) and "unsupported" in str(problems[1])


def test_passage_offsets_point_into_the_document(tmp_path, app):
    text = "  서울은 수도이다.\n\n" + "한강이 흐른다. " * 60 + "끝 문장이다."
    app.ingest_paths([write_jsonl(tmp_path / "d.jsonl", [{"id": "d", "text": text}])])
    stored = app.store.document("d")["text"]
    hits = app.search("한강", k=50, collapse=False, mode="lexical")
    assert len(hits) >= 2
    for h in hits:
        assert stored[h.start:h.end] == h.text


def test_duplicate_ids_in_one_file_become_versions(tmp_path, app):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "x", "text": "첫 판이다.", "published_at": "2020-01-01"},
        {"id": "x", "text": "둘째 판이다.", "published_at": "2021-01-01"},
        {"id": "x", "text": "둘째 판이다.", "published_at": "2021-01-01"},
    ])
    report = app.ingest_paths([path])
    assert (report.added, report.updated, report.unchanged) == (1, 1, 1)
    assert [v.version for v in app.history("x")] == [1, 2]
