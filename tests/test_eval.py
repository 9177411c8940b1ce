"""`jisik eval qa` and `jisik eval abstain`: the commands behind every number in docs/benchmarks.md,
run on the bundled sample documents with questions written for these tests."""

import json

import pytest
from click.testing import CliRunner

from jisik.cli import main

from .conftest import SAMPLE, write_jsonl

QUESTIONS = [
    {"id": "king", "question": "한글을 창제한 왕은 누구인가?", "answers": ["세종"]},
    {"id": "height", "question": "한라산의 높이는 얼마인가?", "answers": ["1,947미터"]},
    # the reader answers 세종: not exact, 2 of 4 gold characters (F1 2/3), not in the cited sentence
    {"id": "longer-gold", "question": "한글을 창제한 왕은 누구인가?", "answers": ["세종대왕"]},
    # nothing in the sample is about Mars: declined, so wrong
    {"id": "mars", "question": "화성 탐사선의 이름은 무엇인가?", "answers": ["큐리오시티"]},
]


def eval_cmd(*args):
    return CliRunner().invoke(main, ["eval", *map(str, args), "--json"], catch_exceptions=False)


def result_of(r):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_eval_qa_scores_with_korquad_definitions(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    out = result_of(eval_cmd("qa", "--passages", SAMPLE / "docs.jsonl", "--questions", questions, "--split", "all"))
    assert out["questions"] == 4
    assert out["exact_match"] == 50.0
    assert out["f1"] == pytest.approx(100 * (1 + 1 + 2 / 3 + 0) / 4, abs=0.01)
    assert out["abstained"] == 0.25
    assert out["evidence_contains_gold"] == 0.5
    assert out["evidence_contains_gold_of_answered"] == pytest.approx(2 / 3, abs=1e-4)
    assert out["ingest"]["added"] == 10
    bins = out["confidence_reliability"]["bins"]
    assert sum(b["answers"] for b in bins) == 3  # the answered questions only
    assert sum(b["answers"] * b["exact_match"] for b in bins) == pytest.approx(2, abs=1e-3)  # 2 of them exactly right


def test_eval_qa_when_everything_is_declined(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:2])
    out = result_of(eval_cmd("qa", "--passages", SAMPLE / "docs.jsonl", "--questions", questions,
                             "--split", "all", "--min-confidence", "1"))
    assert out["exact_match"] == 0.0 and out["abstained"] == 1.0
    assert out["evidence_contains_gold"] == 0.0
    assert out["evidence_contains_gold_of_answered"] is None
    assert out["confidence_reliability"] == {"bins": [], "expected_calibration_error": None}


def test_reliability_bins_and_calibration_error():
    from jisik.eval import reliability

    out = reliability([0.55, 0.65, 0.92, 0.98, 1.0], [1, 0, 1, 1, 0])
    assert [(b["from"], b["answers"], b["exact_match"]) for b in out["bins"]] == [
        (0.5, 1, 1.0), (0.6, 1, 0.0), (0.9, 3, pytest.approx(2 / 3, abs=1e-4))]  # 1.0 falls in the top bin
    gap = 1 / 5 * abs(0.55 - 1.0) + 1 / 5 * abs(0.65 - 0.0) + 3 / 5 * abs(0.9667 - 2 / 3)
    assert out["expected_calibration_error"] == pytest.approx(gap, abs=1e-4)


@pytest.mark.parametrize("bad, message", [
    ({"id": "x", "question": "한라산의 높이는 얼마인가?"}, 'q.jsonl:2: needs gold "answers"'),
    ({"id": "x", "question": "한라산의 높이는?", "answers": []}, 'q.jsonl:2: needs gold "answers"'),
    ({"id": "x", "answers": ["세종"]}, 'q.jsonl:2: needs a "question"'),
])
def test_eval_qa_rejects_a_bad_line_before_ingesting(tmp_path, bad, message):
    questions = write_jsonl(tmp_path / "q.jsonl", [QUESTIONS[0], bad])
    db = tmp_path / "eval.db"
    r = eval_cmd("qa", "--passages", SAMPLE / "docs.jsonl", "--questions", questions, "--db", db)
    assert r.exit_code == 1 and message in r.output
    assert not db.exists()


def test_eval_qa_says_when_the_split_is_empty(tmp_path):
    # no gold_id: not a KorQuAD question, so never in the training split
    questions = write_jsonl(tmp_path / "q.jsonl", QUESTIONS[:1])
    r = eval_cmd("qa", "--passages", SAMPLE / "docs.jsonl", "--questions", questions, "--split", "train")
    assert r.exit_code == 1 and "no questions in split 'train'" in r.output


def test_eval_abstain_counts_hallucinations_and_errors(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"id": "r1", "question": "한라산의 높이는 얼마인가?", "subset": "relevant", "candidate_ids": ["jeju", "seoul"]},
        {"id": "r2", "question": "KTX는 언제 개통했나?", "subset": "relevant", "candidate_ids": ["ktx"]},
        {"id": "n1", "question": "화성 탐사선의 이름은 무엇인가?", "subset": "non_relevant",
         "candidate_ids": ["jeju", "hangul"]},
    ])
    out = result_of(eval_cmd("abstain", "--passages", SAMPLE / "docs.jsonl", "--questions", questions))
    assert (out["relevant"], out["non_relevant"]) == (2, 1)
    assert out["hallucination_rate"] == 0.0 and out["error_rate"] == 0.0
    # declining everything: every relevant query is an error, no hallucination
    out = result_of(eval_cmd("abstain", "--passages", SAMPLE / "docs.jsonl", "--questions", questions,
                             "--min-confidence", "1"))
    assert out["hallucination_rate"] == 0.0 and out["error_rate"] == 1.0
    # answering everything: the unanswerable one is a hallucination
    out = result_of(eval_cmd("abstain", "--passages", SAMPLE / "docs.jsonl", "--questions", questions,
                             "--min-confidence", "0"))
    assert out["hallucination_rate"] == 1.0 and out["error_rate"] == 0.0
    # without --json, the same result indented for reading
    r = CliRunner().invoke(main, ["eval", "abstain", "--passages", str(SAMPLE / "docs.jsonl"), "--questions",
                                  str(questions), "--min-confidence", "0"], catch_exceptions=False)
    assert r.exit_code == 0 and r.stdout.count("\n") > 5
    assert json.loads(r.stdout)["hallucination_rate"] == 1.0


def test_eval_abstain_rejects_a_missing_subset(tmp_path):
    questions = write_jsonl(tmp_path / "q.jsonl", [{"id": "r1", "question": "한라산의 높이는?", "candidate_ids": ["jeju"]}])
    r = eval_cmd("abstain", "--passages", SAMPLE / "docs.jsonl", "--questions", questions)
    assert r.exit_code == 1 and 'q.jsonl:1: needs "subset"' in r.output
