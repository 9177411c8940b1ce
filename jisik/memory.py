"""Question memory: two-step question retrieval over answers already given.

Step 1 finds remembered questions that share terms with the new one (an exact signature
lookup, then an inverted index over content terms). Step 2 accepts a candidate only if
  - the questions mean the same: identical key terms (numbers, names, foreign words,
    hanja) and the new question's content terms are (almost) those of the remembered one;
  - every document version the answer relied on is still current (updates and deletions
    also delete such memories in the same transaction, see store/sqlite.py);
  - nothing ingested since then competes: no passage added after the memory was made
    would now be among the passages the reader reads for this question.
Remembered answers belong to the reader that gave them: when the installed model files or
the reading code change (`read.model_fingerprint`), `Jisik.memory` forgets them all before
the first lookup.
Only answers to plain current questions are remembered (no as-of, no candidate restriction,
no abstentions), so a memory can never answer a question it was not verified for.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from dataclasses import dataclass

import numpy as np

from .korean import Analyzer, Morpheme, terms_from_morphemes
from .store import Store

KEY_TAGS = frozenset({"NNP", "SN", "SL", "SH", "NR"})
# A remembered question matches when the new one keeps at least this share of its content
# terms and adds none (paraphrases drop or reorder words; a different question swaps one).
MIN_TERM_COVERAGE = 0.6
_SIGNATURE_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)


def signature(question: str) -> str:
    return _SIGNATURE_STRIP.sub("", unicodedata.normalize("NFKC", question).lower())


@dataclass(frozen=True)
class QuestionKey:
    signature: str
    terms: frozenset[str]
    key_terms: frozenset[str]

    @classmethod
    def from_morphemes(cls, question: str, morphemes: list[Morpheme]) -> "QuestionKey":
        content = terms_from_morphemes(morphemes)
        keys = terms_from_morphemes([m for m in morphemes if m.tag in KEY_TAGS])
        return cls(signature(question), frozenset(content), frozenset(keys))

    def same_meaning(self, other: "QuestionKey") -> bool:
        if self.signature == other.signature:
            return True
        if self.key_terms != other.key_terms or not self.terms or not other.terms:
            return False
        if not self.terms <= other.terms:
            return False
        return len(self.terms) / len(other.terms) >= MIN_TERM_COVERAGE


@dataclass
class Remembered:
    memory_id: int
    answer: dict
    key: QuestionKey


class QuestionMemory:
    """Remembered answers of one store, with an in-process index refreshed on each lookup."""

    def __init__(self, store: Store, analyzer: Analyzer) -> None:
        self.store = store
        self.analyzer = analyzer
        self._by_signature: dict[str, list[int]] = {}
        self._by_term: dict[str, set[int]] = {}
        self._keys: dict[int, QuestionKey] = {}
        self._last_id = 0
        self._lock = threading.Lock()

    def key(self, question: str) -> QuestionKey:
        return QuestionKey.from_morphemes(question, self.analyzer.morphemes(question))

    def _sync(self) -> None:
        rows = self.store.memories_after(self._last_id)
        for memory_id, sig, terms, key_terms in rows:
            key = QuestionKey(sig, frozenset(terms.split()), frozenset(key_terms.split()))
            self._keys[memory_id] = key
            self._by_signature.setdefault(sig, []).append(memory_id)
            for t in key.terms:
                self._by_term.setdefault(t, set()).add(memory_id)
            self._last_id = memory_id

    def candidates(self, key: QuestionKey, limit: int = 20) -> list[int]:
        """Step 1: remembered questions with the same signature, then most shared terms."""
        with self._lock:
            self._sync()
            exact = list(reversed(self._by_signature.get(key.signature, [])))
            counts: dict[int, int] = {}
            for t in key.terms:
                for mid in self._by_term.get(t, ()):
                    counts[mid] = counts.get(mid, 0) + 1
            need = max(1, int(np.ceil(len(key.terms) * MIN_TERM_COVERAGE)))
            ranked = sorted((m for m, c in counts.items() if c >= need), key=lambda m: (-counts[m], -m))
            seen = set(exact)
            return exact + [m for m in ranked if m not in seen][:limit]

    def lookup(self, question: str, key: QuestionKey | None = None,
               newer_evidence=None) -> Remembered | None:
        """The remembered answer for `question`, or None when no candidate passes step 2.

        `newer_evidence(question, watermark) -> bool` says whether a passage added after
        `watermark` would now be read for the question; such a memory is not used.
        """
        key = key or self.key(question)
        for memory_id in self.candidates(key):
            other = self._keys.get(memory_id)
            if other is None or not key.same_meaning(other):
                continue
            row = self.store.verified_memory(memory_id)
            if row is None:  # invalidated since, or a version it relied on is no longer current
                continue
            answer_json, watermark = row
            if newer_evidence is not None and newer_evidence(question, watermark):
                continue
            return Remembered(memory_id, json.loads(answer_json), other)
        return None

    def remember(self, question: str, key: QuestionKey, answer: dict, sources: list[tuple[str, int]],
                 watermark: int) -> int | None:
        """Store an answer with the (document id, version) pairs it relied on."""
        if not sources:
            return None
        return self.store.add_memory(question, key.signature, " ".join(sorted(key.terms)),
                                     " ".join(sorted(key.key_terms)), json.dumps(answer, ensure_ascii=False),
                                     sources, watermark)
