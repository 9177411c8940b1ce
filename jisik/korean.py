"""Korean text analysis: normalisation, sentences with offsets, and index terms.

Korean attaches particles and endings to words (서울은, 서울에서; 설립했다, 설립한), so
whitespace tokens almost never match between a question and its answer passage. We index
content morphemes instead. Kiwi is the default analyser; MeCab-ko is faster and sits
behind the same interface.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Protocol

# Content morphemes: nouns, numerals, verb/adjective stems, roots, foreign words, hanja,
# numbers. Particles (J*), endings (E*), suffixes (XS*) and symbols carry no topic.
CONTENT_TAGS = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SH", "SN", "MAG", "MM"}
)
# Frequent function-like morphemes that survive the tag filter but only add noise.
STOP_TERMS = frozenset(
    {"것", "수", "등", "때", "중", "이", "그", "저", "하", "있", "되", "않", "없", "위", "및", "더",
     "또", "또한", "무엇", "누구", "어디", "언제", "어느", "어떤", "얼마", "몇", "뭐", "무슨", "어떻",
     "왜", "어떠", "이러", "그러"}
)
# Bound nouns that are answer units (1998년, 3명) stay: they matter for numbers, not topics.
MAX_TEXT_CHARS = 1_000_000


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Morpheme:
    form: str
    tag: str
    start: int
    end: int


@dataclass(frozen=True)
class Analysis:
    """Sentences and morphemes of one text, offsets into that text."""

    sentences: list[Sentence]
    morphemes: list[Morpheme]


def normalize(text: str) -> str:
    """NFKC, so full-width digits, compatibility jamo and ligatures compare equal.

    NFKC can change string length (e.g. '㈜' becomes '(주)'), so offsets are always taken
    on the normalised text, which is the text the store keeps.
    """
    return unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")


def squeeze(text: str) -> str:
    """Without spaces and case: names compare as people space and case them (`모빌슈트`,
    `모빌 슈트`; `DNA`, `dna`)."""
    return "".join(text.split()).casefold()


class Analyzer(Protocol):
    name: str

    def morphemes(self, text: str) -> list[Morpheme]: ...

    def morphemes_batch(self, texts: list[str]) -> list[list[Morpheme]]: ...

    def sentences(self, text: str) -> list[Sentence]: ...

    def analyze_batch(self, texts: list[str]) -> list["Analysis"]: ...


def terms_from_morphemes(morphemes: Iterable[Morpheme]) -> list[str]:
    """Index terms: content morphemes, lower-cased, stop terms dropped."""
    out = []
    for m in morphemes:
        if m.tag in CONTENT_TAGS or m.tag.startswith("NN"):
            form = m.form.lower().replace(",", "") if m.tag == "SN" else m.form.lower()
            if form and form not in STOP_TERMS:
                out.append(form)
    return out


class KiwiAnalyzer:
    """Kiwi morphology. One instance per process: loading costs ~3 s and ~0.5 GB."""

    name = "kiwi"

    def __init__(self, num_workers: int = -1) -> None:
        from kiwipiepy import Kiwi

        self._kiwi = Kiwi(num_workers=num_workers)
        # Kiwi loads its language model on the first analysis (1.5-2.5 s here), not in the
        # constructor: pay it now, so that warm-up covers it and the first question a
        # process answers is as fast as the rest.
        self._kiwi.tokenize("가")
        self._lock = threading.Lock()

    @staticmethod
    def _convert(tokens) -> list[Morpheme]:
        return [Morpheme(t.form, t.tag.split("-")[0], t.start, t.start + t.len) for t in tokens]

    def morphemes(self, text: str) -> list[Morpheme]:
        with self._lock:
            return self._convert(self._kiwi.tokenize(text))

    def morphemes_batch(self, texts: list[str]) -> list[list[Morpheme]]:
        with self._lock:
            return [self._convert(toks) for toks in self._kiwi.tokenize(texts)]

    def sentences(self, text: str) -> list[Sentence]:
        with self._lock:
            sents = self._kiwi.split_into_sents(text)
        return _sentences_from_spans(text, [(s.start, s.end) for s in sents])

    def analyze_batch(self, texts: list[str]) -> list[Analysis]:
        """Sentences and morphemes in one Kiwi pass (splitting tokenizes anyway)."""
        with self._lock:
            results = list(self._kiwi.split_into_sents(texts, return_tokens=True))
        out = []
        for text, sents in zip(texts, results):
            morphemes = [m for s in sents for m in self._convert(s.tokens)]
            out.append(Analysis(_sentences_from_spans(text, [(s.start, s.end) for s in sents]), morphemes))
        return out


class MecabAnalyzer:
    """MeCab-ko: about 3x faster morphology; sentence splitting is punctuation-based."""

    name = "mecab"

    def __init__(self) -> None:
        try:
            import mecab
        except ImportError as exc:  # pragma: no cover - depends on optional extra
            raise RuntimeError(
                "MeCab-ko is not installed. Install it with: pip install 'jisik[mecab]'"
            ) from exc
        self._mecab = mecab.MeCab()

    def morphemes(self, text: str) -> list[Morpheme]:
        out = []
        for m in self._mecab.parse(text):
            tag = m.pos.split("+")[0]
            out.append(Morpheme(m.surface, _MECAB_TAGS.get(tag, tag), m.span[0], m.span[1]))
        return out

    def morphemes_batch(self, texts: list[str]) -> list[list[Morpheme]]:
        return [self.morphemes(t) for t in texts]

    def analyze_batch(self, texts: list[str]) -> list[Analysis]:
        return [Analysis(self.sentences(t), self.morphemes(t)) for t in texts]

    def sentences(self, text: str) -> list[Sentence]:
        spans, start = [], 0
        for i, ch in enumerate(text):
            boundary = ch == "\n" or (
                ch in ".?!" and (i + 1 == len(text) or text[i + 1].isspace())
            )
            if boundary:
                spans.append((start, i + 1))
                start = i + 1
        spans.append((start, len(text)))
        return _sentences_from_spans(text, spans)


# MeCab-ko (세종 tag set variant) to Kiwi tag names where they differ.
_MECAB_TAGS = {"NNBC": "NNB", "SSO": "SS", "SSC": "SS", "SC": "SP", "SY": "SW"}


def _sentences_from_spans(text: str, spans: list[tuple[int, int]]) -> list[Sentence]:
    """Trim whitespace from each span and drop empty ones, keeping exact offsets."""
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append(Sentence(text[start:end], start, end))
    return out


@lru_cache(maxsize=2)
def get_analyzer(name: str = "kiwi") -> Analyzer:
    """Shared analyser instance, created on first use."""
    if name == "kiwi":
        return KiwiAnalyzer()
    if name == "mecab":
        return MecabAnalyzer()
    raise ValueError(f"unknown analyzer {name!r}: choose 'kiwi' or 'mecab'")


def terms(text: str, analyzer: Analyzer | None = None) -> list[str]:
    """Index terms of a short text such as a question."""
    analyzer = analyzer or get_analyzer()
    return terms_from_morphemes(analyzer.morphemes(normalize(text)[:MAX_TEXT_CHARS]))
