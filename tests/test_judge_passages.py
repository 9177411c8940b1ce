"""Labelling which sentences answer real users' questions (scripts/judge_passages.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import judge_passages as jp  # noqa: E402

from tests.conftest import write_jsonl  # noqa: E402


def test_questions_leave_out_miracl_half_b(tmp_path):
    from jisik.splits import miracl_half

    ids = [str(i) for i in range(1, 40)]
    in_b = [i for i in ids if miracl_half(i) == "B"][:3]
    in_a = [i for i in ids if miracl_half(i) == "A"][:3]
    (tmp_path / "miracl_ko").mkdir()
    (tmp_path / "mrtydi_ko").mkdir()
    write_jsonl(tmp_path / "miracl_ko" / "questions.jsonl", [{"id": i, "question": "질문"} for i in in_a + in_b])
    write_jsonl(tmp_path / "mrtydi_ko" / "questions.train.jsonl", [{"id": i, "question": f"질문 {i}"} for i in ids])
    kept = [q["id"] for q in jp.judged_questions(tmp_path)]
    assert set(in_b).isdisjoint(kept)  # half B is only ever evaluated on
    assert set(in_a) <= set(kept) and len(kept) == len(ids) - len(in_b)


def test_instance_is_what_ask_reads(sample_app):
    sample_app.warm_up()
    it = jp.instance(sample_app, {"id": "7", "question": "한글을 창제한 왕은 누구인가?"})
    first = it["passages"][0]
    assert first["title"] == "한글"
    assert first["text"] == sample_app.store.document(first["doc"])["text"][first["start"]:first["end"]]
    assert "세종이 1443년에" in jp.sentence_text(it, 0)  # the sentence model ranks the answer first
    assert len(it["read"]) <= jp.SENTENCES
    shown = jp.batch_text([it])
    assert shown.startswith("## Q 7: 한글을 창제한 왕은 누구인가?\nS1. [한글] 한글은 조선의 제4대 왕인 세종이")
    assert jp.instance(sample_app, {"id": "8", "question": "한글은 세종이 만들었나요?"}) is None  # yes/no: no span to learn


TEXT = "가람시는 은빛강 하류의 도시이다. 가람시 시청은 1987년에 문을 열었다."
CUT = TEXT.index(". ") + 1
ITEMS = {"5": {"qid": "5", "question": "가람시 시청은 언제 문을 열었나?",
               "passages": [{"doc": "d1", "version": 2, "start": 100, "end": 100 + len(TEXT),
                             "sha1": jp.text_hash(TEXT), "title": "가람시", "text": TEXT}],
               "read": [[0, 1, CUT + 1, len(TEXT)], [0, 0, 0, CUT]]}}


def test_check_finds_every_problem():
    assert jp.check([{"qid": "5", "judged": [{"s": 1, "answer": "1987년"}]}], ITEMS) == []
    problems = jp.check([{"qid": "6", "judged": []},
                         {"qid": "5", "judged": [{"s": 3, "answer": "x"}, {"s": 2, "answer": "1987년"},
                                                 {"s": 1, "answer": ""}]},
                         {"qid": "5", "judged": []}], ITEMS)
    assert problems == ["6: not an exported question", "5: no sentence S3", "5: '1987년' is not in S2",
                        "5: '' is not in S1", "5: judged twice"]


def test_record_keeps_offsets_not_text():
    rec = jp.record({"qid": "5", "judged": [{"s": 1, "answer": "1987년"}]}, ITEMS["5"])
    (a,) = rec["answers"]
    assert a["read"] == 0 and rec["read"] == [[0, 1], [0, 0]]
    assert TEXT[a["start"] - 100:a["end"] - 100] == "1987년"  # document offsets
    assert "text" not in rec["passages"][0] and "question" not in rec
    assert rec["passages"][0]["sha1"] == jp.text_hash(TEXT)


def test_add_refuses_a_bad_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(jp, "JUDGED", tmp_path / "judged.json")
    (tmp_path / "instances.json").write_text(json.dumps(list(ITEMS.values()), ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "out_0.json"
    bad.write_text('{"qid": "5", "judged": [{"s": 1, "answer": "1988년"}]}\n', encoding="utf-8")
    args = jp.argparse.Namespace(files=[str(bad)], instances=str(tmp_path / "instances.json"), judges="t",
                                 store_note="test", write=True)
    with pytest.raises(SystemExit, match="1988년"):
        jp.add(args)
    assert not (tmp_path / "judged.json").exists()  # nothing half-written
    bad.write_text('{"qid": "5", "judged": [], "unsure": true}\n', encoding="utf-8")
    jp.add(args)
    stored = json.loads((tmp_path / "judged.json").read_text(encoding="utf-8"))
    assert stored["questions"]["5"]["unsure"] and stored["judges"] == ["t"]
