"""Question memory and freshness: never serve a superseded answer."""

import threading

from jisik.app import Jisik
from jisik.read import EMPTY_QUESTION, NO_CONTENT, model_fingerprint

from .conftest import SAMPLE, doc

BOTH_STORES = True

RECORD_Q = "한빛 리그 한 시즌 최다 홈런 기록은 몇 개인가?"


def key(app, q):
    return app.memory.key(q)


def test_repeat_and_reordered_question_come_from_memory(sample_app):
    first = sample_app.ask(RECORD_Q)
    assert first["answer"] == "52개" and not first["from_memory"]
    again = sample_app.ask(RECORD_Q)
    assert again["from_memory"] and again["answer"] == "52개"
    assert again["evidence"] == first["evidence"]
    reordered = sample_app.ask("한빛 리그 최다 홈런 기록은 한 시즌에 몇 개인가?")
    assert reordered["from_memory"] and reordered["answer"] == "52개"
    dropped = sample_app.ask("한빛 리그 최다 홈런 기록은 몇 개인가?")
    assert dropped["from_memory"]


def test_questions_differing_in_a_number_or_a_name_never_match(app):
    a = key(app, "2015년 리그 최우수 선수는 누구인가?")
    b = key(app, "2016년 리그 최우수 선수는 누구인가?")
    c = key(app, "부산의 인구는 몇 명인가?")
    d = key(app, "서울의 인구는 몇 명인가?")
    e = key(app, "세종이 만든 문자는 무엇인가?")
    f = key(app, "세종이 만든 시계는 무엇인가?")
    assert not a.same_meaning(b) and not b.same_meaning(a)
    assert not c.same_meaning(d) and not e.same_meaning(f)
    assert a.same_meaning(key(app, "2015년 리그 최우수 선수는 누구인가"))


def test_number_changed_question_is_read_not_remembered(sample_app):
    sample_app.ask("지식연구소는 몇 년에 설립되었나?")
    other = sample_app.ask("지식연구소 연구원은 2024년 현재 몇 명인가?")
    assert not other["from_memory"]


def test_update_invalidates_memory_in_the_same_write(sample_app):
    sample_app.ask(RECORD_Q)
    assert sample_app.stats()["memories"] == 1
    sample_app.ingest_paths([SAMPLE / "updates.jsonl"])
    assert sample_app.stats()["memories"] == 0
    after = sample_app.ask(RECORD_Q)
    assert after["answer"] == "58개" and not after["from_memory"]
    assert after["evidence"]["version"] == 2 and after["evidence"]["published_at"] == "2024-10-02"


def test_delete_invalidates_memory_and_the_answer_goes(sample_app):
    sample_app.ask(RECORD_Q)
    sample_app.delete("baseball-record")
    assert sample_app.stats()["memories"] == 0
    after = sample_app.ask(RECORD_Q)
    assert after["abstained"] or after["evidence"]["id"] != "baseball-record"


def test_as_of_sees_old_versions_and_is_never_remembered(sample_app):
    sample_app.ingest_paths([SAMPLE / "updates.jsonl"])
    old = sample_app.ask(RECORD_Q, as_of="2020-01-01")
    assert old["answer"] == "52개" and old["evidence"]["version"] == 1
    assert sample_app.stats()["memories"] == 0
    before_any = sample_app.ask(RECORD_Q, as_of="2010-01-01")
    assert before_any["abstained"]
    assert sample_app.ask(RECORD_Q)["answer"] == "58개"


def test_a_newer_competing_document_bypasses_memory(sample_app):
    sample_app.ask(RECORD_Q)
    sample_app.ingest_documents([doc("news-1", "한빛 리그 한 시즌 최다 홈런 기록은 2025년 최민 선수가 세운 61개이다.",
                                     title="한빛 리그 소식", published_at="2025-10-01")])
    after = sample_app.ask(RECORD_Q)
    assert not after["from_memory"]


def test_no_memory_flag_always_reads(sample_app):
    sample_app.ask(RECORD_Q)
    assert not sample_app.ask(RECORD_Q, use_memory=False)["from_memory"]


def test_a_new_reader_forgets_what_the_old_one_remembered(sample_app, store_location):
    """Remembered answers are the installed reader's: after an upgrade (new weights, a new
    calibration) the same store answers afresh, in the new reader's words and scale."""
    sample_app.ask(RECORD_Q)
    assert sample_app.ask(RECORD_Q)["from_memory"] and sample_app.store.stats()["memories"] == 1
    db = store_location
    sample_app.close()
    reopened = Jisik.open(db)
    assert reopened.ask(RECORD_Q)["from_memory"]  # same reader: the memory holds
    reopened.close()
    upgraded = Jisik.open(db)
    upgraded.reader.fingerprint = "neural:another-model"
    after = upgraded.ask(RECORD_Q)
    assert not after["from_memory"] and after["answer"] == "52개"
    assert upgraded.store.stats()["memories"] == 1  # only the answer just given
    assert upgraded.ask(RECORD_Q)["from_memory"]
    upgraded.close()


def test_the_reader_fingerprint_names_its_model_files_and_its_code(tmp_path):
    """A release that changes how answers are read (same weights, new code) is a new reader
    to the memory too."""
    models, code = tmp_path / "models", tmp_path / "read.py"
    models.mkdir()
    (models / "reader.json").write_text('{"w": 1}')
    code.write_text("def read(): return 1\n")
    first = model_fingerprint(models, "neural", [code])
    assert model_fingerprint(models, "neural", [code]) == first
    assert model_fingerprint(models, "features", [code]) != first
    code.write_text("def read(): return 2\n")
    assert model_fingerprint(models, "neural", [code]) != first
    code.write_text("def read(): return 1\n")
    (models / "reader.json").write_text('{"w": 2}')
    assert model_fingerprint(models, "neural", [code]) != first


def test_recreated_document_is_answerable_again(sample_app):
    sample_app.delete("ktx")
    gone = sample_app.ask("KTX는 언제 개통했나?")
    assert gone["abstained"] or gone["evidence"]["id"] != "ktx"
    sample_app.ingest_documents([doc("ktx", "KTX는 2004년 4월 1일에 개통하였다.")])
    again = sample_app.ask("KTX는 언제 개통했나?")
    assert again["answer"] == "2004년 4월 1일" and again["evidence"]["version"] == 2


def test_concurrent_ingest_and_ask_never_serve_a_stale_answer(store_location):
    db = store_location
    writer = Jisik.open(db)
    writer.ingest_documents([doc("rec", "한빛 리그 최다 홈런 기록은 50개이다.", title="기록")])
    reader = Jisik.open(db)
    reader.warm_up()
    committed = [50]
    errors, stale = [], []
    done = threading.Event()

    def write():
        try:
            for n in range(51, 59):
                writer.ingest_documents([doc("rec", f"한빛 리그 최다 홈런 기록은 {n}개이다.", title="기록")])
                committed.append(n)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=write)
    t.start()
    asked = 0
    while not done.is_set() or asked < 3:
        floor = committed[-1]
        try:
            out = reader.ask("한빛 리그 최다 홈런 기록은 몇 개인가?")
        except Exception as exc:
            errors.append(exc)
            break
        asked += 1
        if out["abstained"] or int(out["answer"].rstrip("개")) < floor:
            stale.append((floor, out.get("answer"), out["from_memory"]))
    t.join()
    assert not errors and not stale and asked >= 3


def test_recent_source_wins_when_sources_disagree(sample_app):
    sample_app.ingest_documents([doc("news-2", "한빛 리그 한 시즌 최다 홈런 기록은 2025년 최민 선수가 세운 61개이다.",
                                     title="한빛 리그 소식", published_at="2025-10-01")])
    out = sample_app.ask(RECORD_Q)
    assert out["answer"] == "61개"
    assert out["evidence"]["id"] == "news-2" and out["evidence"]["published_at"] == "2025-10-01"
    assert "baseball-record" in [c["id"] for c in out["citations"]]


def test_older_source_answers_as_of_before_the_newer_one(sample_app):
    sample_app.ingest_documents([doc("news-2", "한빛 리그 한 시즌 최다 홈런 기록은 2025년 최민 선수가 세운 61개이다.",
                                     title="한빛 리그 소식", published_at="2025-10-01")])
    assert sample_app.ask(RECORD_Q, as_of="2024-12-31")["answer"] == "52개"


def test_ask_declines_cleanly_on_empty_contentless_and_huge_questions(sample_app):
    for q, reason in [("", EMPTY_QUESTION), ("   ", EMPTY_QUESTION), ("뭐야?", NO_CONTENT)]:
        out = sample_app.ask(q)
        assert out["abstained"] and out["answer"] is None and out["evidence"] is None
        assert out["reason"] == reason
    out = sample_app.ask("한라산의 높이는 얼마인가? " + "가" * 100_000)
    assert set(out) >= {"answer", "confidence", "evidence", "citations", "abstained", "latency_ms"}
