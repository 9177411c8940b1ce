"""bench/add_judgements.py: every unjudged answer gets exactly one valid judgement, or nothing
is written (a lost judgement would quietly become an unjudged answer)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import add_judgements  # noqa: E402

from jisik.eval import judged_answer_key  # noqa: E402

TSV = ("miracl\t1\td7\t한글을 만든 왕은?\t세종\t세종\t세종은 한글을 만들었다.\n"
       "mrtydi_dev\t2\td9\t한라산 높이는?\t1,947미터\t한라산\t한라산의 높이는 1,947미터이다.\n")


@pytest.fixture
def files(tmp_path):
    tsv = tmp_path / "unjudged.tsv"
    tsv.write_text(TSV, encoding="utf-8")
    judged = tmp_path / "judged.json"
    judged.write_text(json.dumps({"what": "test", "judges": "one judge.", "counts": {}, "answers": [
        {"set": "miracl", "id": "0", "doc": "d1", "answer_sha1": "0" * 16, "judged": "right"}]}), encoding="utf-8")
    return tsv, judged


def write_output(path, judgements):
    path.write_text(json.dumps(judgements, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_complete_batch_is_appended_with_its_keys_and_counts(files, tmp_path):
    tsv, judged = files
    out = write_output(tmp_path / "out.json", [{"set": "miracl", "id": "1", "judged": "right"},
                                               {"set": "mrtydi_dev", "id": "2", "judged": "wrong", "kind": "wrong_slot"}])
    rows, problems = add_judgements.check(add_judgements.read_unjudged(tsv), [out])
    assert problems == []
    add_judgements.write(judged, rows, "two more.")
    record = json.loads(judged.read_text(encoding="utf-8"))
    assert record["judges"] == "one judge; two more."
    assert record["counts"] == {"miracl": {"right": 2}, "mrtydi_dev": {"wrong": 1}}
    assert record["answers"][1:] == [
        {"set": "miracl", "id": "1", "doc": "d7", "answer_sha1": judged_answer_key("d7", "세종"), "judged": "right"},
        {"set": "mrtydi_dev", "id": "2", "doc": "d9", "answer_sha1": judged_answer_key("d9", "1,947미터"),
         "judged": "wrong", "kind": "wrong_slot"}]


@pytest.mark.parametrize("judgements, problem", [
    ([{"set": "miracl", "id": "1", "judged": "right"}], "mrtydi_dev/2: no judgement"),
    ([{"set": "miracl", "id": "1", "judged": "yes"}], "judged must be one of"),
    ([{"set": "miracl", "id": "1", "judged": "wrong"}], "needs a kind"),
    ([{"set": "miracl", "id": "1", "judged": "right", "kind": "other"}], "only a wrong one has a kind"),
    ([{"set": "miracl", "id": "9", "judged": "right"}], "not a line of the TSV"),
    ([{"set": "miracl", "id": "1", "judged": "right"}] * 2, "judged twice"),
])
def test_an_incomplete_or_invalid_batch_is_refused(files, tmp_path, judgements, problem):
    tsv, _ = files
    out = write_output(tmp_path / "out.json", judgements)
    _, problems = add_judgements.check(add_judgements.read_unjudged(tsv), [out])
    assert any(problem in p for p in problems), problems
