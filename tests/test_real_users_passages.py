"""bench/real_users_passages.py: which judged questions count as answerable or not, and when
an answer counts as right (overlapping a judged answer in the same document)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import real_users_passages as rup  # noqa: E402


def record(answers, unsure=False, no_span=False):
    # two passages read; the sentences shown, best first: (passage, sentence)
    return {"passages": [{"doc": "d1"}, {"doc": "d2"}], "read": [[0, 0], [1, 2], [0, 3], [1, 0], [0, 1], [1, 1]],
            "answers": answers, "unsure": unsure, "no_span": no_span}


def test_label_counts_only_sentences_the_reader_reads():
    assert rup.label(record([]), 5) == "none"
    assert rup.label(record([{"read": 1, "start": 10, "end": 14}]), 5) == "answerable"
    # answered only by the 6th sentence shown, which a reader of 5 never sees: left out
    assert rup.label(record([{"read": 5, "start": 10, "end": 14}]), 5) is None
    assert rup.label(record([{"read": 5, "start": 10, "end": 14}]), 6) == "answerable"
    assert rup.label(record([], unsure=True), 5) is None
    assert rup.label(record([{"read": 0}], no_span=True), 5) is None


def test_right_means_overlapping_a_judged_answer_in_its_document():
    r = record([{"read": 1, "start": 100, "end": 106}])  # S2 is in passage 1, document d2
    assert rup.is_right(r, "d2", 100, 106)
    assert rup.is_right(r, "d2", 98, 101)  # a longer or shorter span still overlaps
    assert not rup.is_right(r, "d2", 106, 110)  # adjacent, not overlapping
    assert not rup.is_right(r, "d1", 100, 106)  # the same offsets in another document
    assert not rup.is_right(record([{"read": 1}]), "d2", 100, 106)  # judged answering, but without a span


def test_summary_rates_follow_the_threshold():
    rows = [{"label": "none", "span": True, "confidence": 0.3, "right": False},
            {"label": "none", "span": False, "confidence": 0.0, "right": False},
            {"label": "answerable", "span": True, "confidence": 0.6, "right": True},
            {"label": "answerable", "span": True, "confidence": 0.2, "right": False}]
    low = rup.summarise(rows, 0.1)
    assert (low["hallucination_rate"], low["error_rate"], low["answered"], low["precision"]) == (50.0, 0.0, 3, 33.3)
    high = rup.summarise(rows, 0.5)
    assert (high["hallucination_rate"], high["error_rate"], high["answered"], high["precision"]) == (0.0, 50.0, 1, 100.0)
    assert high["confidence_auc_answerable"] == 0.75
