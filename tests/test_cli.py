"""The command line, as a script or a person uses it."""

import json

from click.testing import CliRunner

from jisik.cli import main

from .conftest import SAMPLE, write_jsonl

BOTH_STORES = True


def run(*args, env=None):
    result = CliRunner().invoke(main, list(map(str, args)), env=env, catch_exceptions=False)
    return result


def lines(output):
    return [json.loads(l) for l in output.splitlines() if l.startswith("{")]


def test_ingest_search_ask_stats_delete_history(store_location):
    db = store_location
    r = run("ingest", SAMPLE / "docs.jsonl", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    assert lines(r.output)[0]["added"] == 10

    r = run("search", "제주도에서 가장 높은 산", "-k", "3", "--db", db, "--json")
    out = lines(r.output)[0]
    assert out["hits"][0]["id"] == "jeju"
    assert set(out["hits"][0]) >= {"id", "title", "score", "text", "start", "end"}

    r = run("search", "한글을 만든 왕", "--db", db)
    assert r.exit_code == 0 and "한글" in r.output

    r = run("ask", "KTX는 언제 개통했나?", "--db", db, "--json")
    answer = lines(r.output)[0]
    assert answer["answer"] == "2004년 4월 1일" and answer["evidence"]["id"] == "ktx"

    r = run("stats", "--db", db, "--json")
    assert lines(r.output)[0]["documents"] == 10

    r = run("delete", "jeju", "--db", db)
    assert "삭제됨: jeju" in r.output
    r = run("search", "한라산", "--db", db, "--json", "--mode", "lexical")
    assert all(h["id"] != "jeju" for h in lines(r.output)[0]["hits"])
    r = run("history", "jeju", "--db", db)
    assert "(삭제됨)" in r.output


def test_env_var_chooses_the_store(tmp_path):
    db = tmp_path / "env.db"
    r = run("ingest", SAMPLE / "docs.jsonl", env={"JISIK_DB": str(db)})
    assert r.exit_code == 0 and db.exists()


def test_batch_search_one_line_per_input_with_candidates(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    batch = tmp_path / "q.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "a", "question": "한라산 높이"}, ensure_ascii=False),
        json.dumps({"id": "b", "question": "한라산 높이", "candidate_ids": ["seoul", "busan"]}, ensure_ascii=False),
        "{broken",
        json.dumps({"id": "d", "question": "한라산", "as_of": "작년"}, ensure_ascii=False),
        json.dumps({"id": "e", "question": "한라산", "as_of": "2030-01-01"}, ensure_ascii=False),
        json.dumps({"id": "f", "query": "한라산"}, ensure_ascii=False),  # bad, but it says its id
    ]) + "\n", encoding="utf-8")
    r = run("search", "--batch", batch, "-k", "2", "--db", db, "--json")
    out = lines(r.output)
    assert [o["id"] for o in out] == ["a", "b", "3", "d", "e", "f"]
    assert "line 6" in out[5]["error"] and "'question'" in out[5]["error"]
    assert "ISO date" in out[3]["error"] and out[4]["hits"][0]["id"] == "jeju"
    assert out[0]["hits"][0]["id"] == "jeju" and "latency_ms" in out[0]
    assert {h["id"] for h in out[1]["hits"]} <= {"seoul", "busan"}
    assert "error" in out[2]


def test_search_on_a_missing_store_tells_what_to_do(tmp_path):
    r = CliRunner().invoke(main, ["search", "서울", "--db", str(tmp_path / "none.db")])
    assert r.exit_code != 0 and "jisik ingest" in r.output


def test_empty_and_huge_queries(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    r = run("search", "   ", "--db", db, "--json")
    assert lines(r.output)[0]["hits"] == []
    r = run("search", "서울 " * 35000, "--db", db, "--json", "-k", "1")
    assert r.exit_code == 0 and lines(r.output)[0]["hits"][0]["id"] == "seoul"


def test_as_of_search_sees_the_old_version(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    run("ingest", SAMPLE / "updates.jsonl", "--db", db)
    now = lines(run("search", "최다 홈런 기록", "--db", db, "--json", "-k", "1").output)[0]["hits"][0]
    old = lines(run("search", "최다 홈런 기록", "--db", db, "--json", "-k", "1", "--as-of", "2020-01-01").output)[0]["hits"][0]
    assert "58개" in now["text"] and now["version"] == 2
    assert "52개" in old["text"] and old["version"] == 1


def test_ingest_reports_bad_lines_on_stderr_and_keeps_going(tmp_path):
    db = tmp_path / "cli.db"
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": "ok", "text": "정상이다."}])
    with open(path, "a", encoding="utf-8") as f:
        f.write("{oops\n")
    r = CliRunner().invoke(main, ["ingest", str(path), "--db", str(db), "--json"])
    assert r.exit_code == 0
    assert f"{path}:2: invalid JSON" in r.output


def test_min_confidence_answers_more_declines_more_and_skips_memory(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    r = run("ask", "한라산의 높이는 얼마인가?", "--min-confidence", "1", "--db", db, "--json")
    assert r.exit_code == 0
    out = lines(r.output)[0]
    assert out["abstained"] and out["answer"] is None
    for _ in range(2):  # answered at a custom threshold: never remembered, never served from memory
        out = lines(run("ask", "한라산의 높이는 얼마인가?", "--min-confidence", "0", "--db", db, "--json").output)[0]
        assert not out["abstained"] and not out["from_memory"]
    assert lines(run("stats", "--db", db, "--json").output)[0]["memories"] == 0
    r = run("ask", "한라산의 높이는 얼마인가?", "--min-confidence", "1.5", "--db", db)
    assert r.exit_code == 2 and "1.5" in r.output


def test_yes_no_question_is_declined_with_related_sentences(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    out = lines(run("ask", "한글은 세종이 창제했나요?", "--db", db, "--json").output)[0]
    assert out["abstained"] and out["answer"] is None and out["evidence"] is None
    assert out["reason"].startswith("예/아니요")
    assert any("세종" in c["sentence"] and c["id"] == "hangul" for c in out["citations"])
    text = run("ask", "한글은 세종이 창제했나요?", "--db", db).output
    assert "예/아니요" in text and "관련 문장: 한글은 조선의 제4대 왕인 세종이" in text
    assert "신뢰도" not in text  # no span was scored, so there is no confidence to show


def test_definition_question_cites_the_opening_sentence_of_the_article(tmp_path):
    db = tmp_path / "cli.db"
    run("ingest", SAMPLE / "docs.jsonl", "--db", db)
    out = lines(run("ask", "김치는 무엇인가요?", "--db", db, "--json").output)[0]
    assert out["abstained"] and out["answer"] is None and out["reason"].startswith("무엇(누구)인지")
    assert [c["id"] for c in out["citations"]] == ["kimchi"]
    assert out["citations"][0]["sentence"].startswith("김치는 배추나 무 같은 채소를")
    # a question about a fact, and a term no article is titled: the reader as before
    assert lines(run("ask", "한글을 창제한 왕은 누구인가?", "--db", db, "--json").output)[0]["answer"] == "세종"
    out = lines(run("ask", "화성이란 무엇인가?", "--db", db, "--json").output)[0]
    assert out["abstained"] and out["reason"] == "근거를 찾지 못했습니다"
