"""Fixed held-out split of the KorQuAD dev questions, by article.

A question is held out when its article title (the part of ``gold_id`` between
``korquad:`` and ``#``) hashes into bucket 0 of 5:

    int(sha1(title.encode("utf-8")).hexdigest(), 16) % 5 == 0

That keeps about 20% of the articles (and all of their paragraphs and questions) out of
training. Splitting by article, not by question, matters: questions on the same paragraph
share wording and answers, so a per-question split would leak. Anything trained in this
project (``scripts/train_reader.py``) must skip held-out articles entirely, including their
passages when they show up among retrieved hits, and cloze questions made from Wikipedia
articles with a held-out title.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

HELDOUT_BUCKETS = 5


def article_title(gold_id: str) -> str:
    """'korquad:임종석#0' -> '임종석'."""
    body = gold_id.split(":", 1)[1] if gold_id.startswith("korquad:") else gold_id
    return body.rsplit("#", 1)[0]


def is_heldout_title(title: str) -> bool:
    return int(hashlib.sha1(title.encode("utf-8")).hexdigest(), 16) % HELDOUT_BUCKETS == 0


def is_heldout(question_record: Mapping[str, Any]) -> bool:
    """True when the question belongs to a held-out KorQuAD article."""
    gold_id = question_record.get("gold_id") or ""
    return is_heldout_title(article_title(gold_id))


def is_heldout_passage(passage_id: str) -> bool:
    """For passage ids of the KorQuAD set ('korquad:<title>#<n>'); others are never held out."""
    return passage_id.startswith("korquad:") and is_heldout_title(article_title(passage_id))


def miracl_half(question_id: str) -> str:
    """Fixed split of MIRACL-ko questions: "A" (sha1 of the id even; where settings may be
    trained or chosen) or "B" (only evaluated)."""
    return "A" if int(hashlib.sha1(str(question_id).encode("utf-8")).hexdigest(), 16) % 2 == 0 else "B"
