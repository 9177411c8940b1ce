"""Features for the extractive reader: question analysis, sentences, candidate spans.

Shared by the runtime reader (`jisik.read`) and the trainer (`scripts/train_reader.py`), so
training and inference see exactly the same features. Nothing here is tuned by hand beyond
*which* features exist: every weight comes from `jisik/models/reader.npz`.

Features are of two kinds: a few dense numbers (overlap, proximity, rank, length) and
hashed categorical strings (answer type crossed with the span's shape: last morpheme,
following particle, tag pattern ...). Both live in one sparse vector of `DIM` slots.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, field

from .korean import Morpheme, terms_from_morphemes

HASH_BITS = 18
DIM = 1 << HASH_BITS
N_DENSE = 64  # slots 0..63 are dense features, hashed ones land in 64..DIM-1

MAX_QUESTION_CHARS = 1000
MAX_SPAN_MORPHS = 12
MAX_SPAN_CHARS = 48

WH_FORMS = {
    "누구": "who", "누가": "who", "언제": "when", "어디": "where", "어딨": "where", "무엇": "what", "뭐": "what",
    "무슨": "what", "어느": "which", "어떤": "which", "어떻": "how", "어떠": "how", "몇": "num",
    "얼마": "num", "얼마나": "num", "왜": "why", "어찌": "how", "며칠": "when",
}
WHEN_FOCUS = {"날", "날짜", "연도", "년도", "해", "시기", "시점", "년", "월", "일", "때", "세기", "시대", "기간", "요일", "시각", "시간"}
WHO_FOCUS = {"사람", "인물", "이름", "선수", "작가", "감독", "왕", "대통령", "배우", "가수", "주인공", "저자", "창시자", "설립자", "회장", "장관", "화가", "교수", "학자"}
WHERE_FOCUS = {"곳", "장소", "지역", "나라", "국가", "도시", "위치", "지방", "섬", "대륙", "나라명", "지명"}
NUM_FOCUS = {"수", "개수", "인원", "금액", "비율", "규모", "나이", "거리", "높이", "길이", "크기", "무게", "인구", "횟수"}
# question words as typed, contractions included (`뭔가요`, `뭘까`, `어딨어`); `왜` is left to the
# morphemes, since as a string it also starts words like `왜곡`
WH_SURFACE = re.compile("누구|누가|언제|어디|어딨|무엇|뭐|뭔|뭘|무슨|어느|어떤|어떻|어떠|몇|얼마|얼만|며칠|어째서")
# what may stand right before a question's final ending: a predicate or a tense marker
PREDICATE_TAGS = {"VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA", "EP"}
# final endings that ask (`있나요`, `인가`, `했습니까`); endings that may also state
# (`-어요`, `-지`) ask only when the question ends in `?`
ASKING_ENDINGS = {"나", "나요", "니", "냐", "까", "까요", "ᆯ까", "ᆯ까요", "을까", "을까요", "습니까", "ᆸ니까",
                  "는가", "는가요", "ᆫ가", "ᆫ가요", "은가", "은가요", "는지", "ᆫ지", "냐고"}

# `X의 뜻은 무엇인가?` asks for a definition of X as much as `X란 무엇인가?`
DEFINITION_HEADS = ("의 뜻", "의 의미", "의 정의", "의 개념")

START_TAGS = {"NNG", "NNP", "NNB", "NR", "NP", "SN", "SL", "SH", "XPN", "XR", "MM", "SSO"}
END_TAGS = {"NNG", "NNP", "NNB", "NR", "NP", "SN", "SL", "SH", "XSN", "XR", "SSC"}
NOMINAL = {"NNG", "NNP", "NNB", "NR", "NP", "SN", "SL", "SH", "XSN", "XR", "XPN"}
OPEN_QUOTES = set("《「『〈<(\"'‘“[【")
CLOSE_QUOTES = set("》」』〉>)\"'’”]】")
_SPACE = re.compile(r"\s")


def _hash(s: str) -> int:
    return N_DENSE + (zlib.crc32(s.encode("utf-8")) % (DIM - N_DENSE))


# --------------------------------------------------------------------------- question


@dataclass
class QuestionInfo:
    text: str
    morphs: list[Morpheme]
    terms: list[str]               # content terms (lower-cased), question order
    term_set: frozenset[str]
    qtype: str                     # who/when/where/num/what/which/how/why/other
    wh: str                        # wh word form or ''
    focus: str                     # noun the question asks about ('인물', '연도') or ''
    wh_particle: str               # particle right after the wh phrase ('가', '을') or ''
    left_terms: frozenset[str]     # content terms just before the wh/focus phrase
    right_terms: frozenset[str]    # content terms just after it
    bigrams: frozenset[str]
    verb: str = ""                 # last verb/adjective stem or predicative noun ('태어나', '설립')
    polar: bool = False            # a yes/no question (`DNA는 이중나선 구조인가요?`): no span answers it
    defines: str = ""              # what a definition question asks about (`점성술은 무엇인가?` -> '점성술')
    asks: str = ""                 # 'date'/'count' when only such a span answers it, 'reason' when none does


def analyze_question(text: str, morphs: list[Morpheme]) -> QuestionInfo:
    terms = terms_from_morphemes(morphs)
    wh_i, wh = -1, ""
    for i, m in enumerate(morphs):
        if m.form in WH_FORMS and (m.tag.startswith("N") or m.tag in {"MM", "MAG", "VA", "NR", "IC"}):
            wh_i, wh = i, m.form
            break
    focus_i = -1
    if wh_i >= 0 and wh_i + 1 < len(morphs) and morphs[wh_i + 1].tag.startswith("NN"):
        focus_i = wh_i + 1  # 몇 년, 어느 나라, 무슨 상
    elif wh_i < 0:
        # '...파견된 인물은?': last noun of the question
        for i in range(len(morphs) - 1, -1, -1):
            if morphs[i].tag.startswith("NN"):
                focus_i = i
                break
    focus = morphs[focus_i].form if focus_i >= 0 else ""
    anchor = max(wh_i, focus_i)
    wh_particle = ""
    if anchor >= 0 and anchor + 1 < len(morphs) and morphs[anchor + 1].tag.startswith("J"):
        wh_particle = morphs[anchor + 1].form
    qtype = WH_FORMS.get(wh, "other")
    if qtype in {"num", "which", "what", "other"} and focus:
        if focus in WHEN_FOCUS:
            qtype = "when"
        elif focus in WHO_FOCUS:
            qtype = "who"
        elif focus in WHERE_FOCUS:
            qtype = "where"
        elif focus in NUM_FOCUS and qtype == "other":
            qtype = "num"
    lo = min(x for x in (wh_i, focus_i) if x >= 0) if anchor >= 0 else len(morphs)
    left = terms_from_morphemes(morphs[max(0, lo - 4):lo]) if anchor >= 0 else terms_from_morphemes(morphs[-6:])
    right = terms_from_morphemes(morphs[anchor + 1:anchor + 6]) if anchor >= 0 else []
    verb = ""
    for i in range(len(morphs) - 1, -1, -1):
        m = morphs[i]
        if m.tag in {"VV", "VA"} and m.form not in {"하", "되", "있", "이"}:
            verb = m.form
            break
        if m.tag in {"XSV", "XSA"} and i > 0 and morphs[i - 1].tag.startswith("NN"):
            verb = morphs[i - 1].form
            break
    return QuestionInfo(
        verb=verb, polar=is_polar_question(text, morphs), defines=definition_subject(text, morphs),
        asks=asked_form(text, morphs, wh),
        text=text, morphs=morphs, terms=terms, term_set=frozenset(terms), qtype=qtype, wh=wh,
        focus=focus, wh_particle=wh_particle, left_terms=frozenset(left),
        right_terms=frozenset(right), bigrams=frozenset(char_bigrams(text)),
    )


# question words whose answer must be a date or a count (or a reason, which no span is), and
# what the answer must then be
ASKED_FORMS = {"언제": "date", "며칠": "date", "몇": "count", "얼마": "count", "얼마나": "count", "왜": "reason"}
WH_SURFACE_FORMS = {"언제": "date", "며칠": "date", "몇": "count", "얼마": "count", "얼만": "count"}
# a question that ends on one of these asks for it, not for the count inside it
# (`몇 천명의 학생들이 시위를 벌인 곳은?`)
ASKED_HEADS = {"곳", "것", "사람", "인물", "이름", "장소", "나라", "도시"}


def asked_form(text: str, morphs: list[Morpheme], wh: str) -> str:
    """'date' for `언제`/`며칠` questions, 'count' for `몇`/`얼마` ones and 'reason' for `왜`
    ones when that is all they ask: no other question word (`몇 년 동안 … 누구?`, `'하늘은
    왜'를 펴낸 곳은 어디인가?`) and no head noun it ends on (`… 곳은?`). Of KorQuAD's 4,163
    dev questions 545 ask a date or a count, and all but 3 of their gold answers have the
    form `read.has_asked_form` asks of a span (`bench/asked_forms.py`)."""
    form = ASKED_FORMS.get(wh, "")
    if not form or any(WH_SURFACE_FORMS.get(m.group()) != form for m in WH_SURFACE.finditer(text)):
        return ""
    words = [m for m in morphs if m.tag[0] not in "SJE" and m.tag not in ("VCP", "XSN")]
    if words and words[-1].form in ASKED_HEADS:
        return ""
    return form


def is_polar_question(text: str, morphs: list[Morpheme]) -> bool:
    """Does the question ask yes or no? It has no question word and ends in a predicate with
    an asking ending (`식물은 광합성을 하나요?`, `한국은 분단국가인가?`). A question that names
    what it asks for (`... 인물은?`) or makes a request (`알려 주세요?`) is not one. A misspelt
    question word (`언떤`, `얼나입니까`) is not recognised, so such a question passes for one."""
    if WH_SURFACE.search(text) or any(m.form in WH_FORMS for m in morphs):
        return False
    words = [m for m in morphs if not m.tag.startswith("S")]
    if words and words[-1].form == "요" and words[-1].tag == "JX":  # Kiwi: 인가요 -> 이/VCP ᆫ가/EF 요/JX
        words.pop()
    if len(words) < 2 or words[-1].tag != "EF" or words[-2].tag not in PREDICATE_TAGS:
        return False
    if any(m.tag == "VX" and m.form == "주" for m in words[-4:]):  # 알려 주세요?, 설명해 줘?
        return False
    return words[-1].form in ASKING_ENDINGS or text.rstrip().endswith("?")


def definition_subject(text: str, morphs: list[Morpheme]) -> str:
    """What a question asks to define, or '': `점성술은 무엇인가?`, `생물 분류학이란 무엇인가?`,
    `DNA의 의미는 무엇인가?` -> the term; `요제프 하이든은 누구인가?` -> the name. Only when the
    term is all the question says besides `무엇/누구` and the copula: `매부리바다거북의 주식은
    무엇인가?` and `대한민국 14대 대통령은 누구인가?` ask for a fact, not a definition, and a
    `누구` question asks about a name only when its subject is proper nouns."""
    words = [m for m in morphs if not m.tag.startswith("S") or m.tag in ("SL", "SH", "SN")]
    wh = next((i for i, m in enumerate(words) if m.form in ("무엇", "뭐", "누구")), -1)
    if wh < 2 or not all(m.tag == "VCP" or m.tag.startswith("E") or (m.tag == "JX" and m.form == "요")
                         for m in words[wh + 1:]):  # `인가요`, `인가?`, `야?`: only the copula after it
        return ""
    topic, subject = words[wh - 1], words[:wh - 1]
    if topic.tag == "JX" and topic.form in ("은", "는"):
        defined_by_ran = False
    elif topic.form in ("란", "이란") or (topic.tag.startswith("E") and topic.form in ("란", "ᆫ")):
        defined_by_ran = True  # `X란`, `X이란`: Kiwi may read the copula and an ending
        while subject and (subject[-1].tag.startswith("E") or subject[-1].tag == "VCP"):
            subject.pop()
    else:
        return ""
    if not subject or any(m.tag == "SN" for m in subject):
        return ""
    term = text[subject[0].start:subject[-1].end].strip()
    nominal = all(m.tag.startswith("N") or m.tag in ("SL", "SH", "XSN", "XPN") for m in subject)
    proper = all(m.tag == "NNP" for m in subject)
    if words[wh].form == "누구":
        return term if proper else ""
    if nominal and (" " not in term or defined_by_ran or proper):
        return term
    for head in DEFINITION_HEADS:  # `DNA의 의미`: the head is a noun, `의` a particle
        if term.endswith(head) and " " not in term[:-len(head)] and len(term) > len(head):
            return term[:-len(head)]
    return ""


def char_bigrams(text: str) -> set[str]:
    t = _SPACE.sub("", text)
    return {t[i:i + 2] for i in range(len(t) - 1)}


# --------------------------------------------------------------------------- passages


@dataclass
class SentenceInfo:
    start: int                     # offsets in the passage text
    end: int
    morphs: list[Morpheme]         # offsets in the passage text
    forms: list[str]               # lower-cased morpheme forms
    term_set: frozenset[str]


@dataclass
class PassageInfo:
    text: str
    sentences: list[SentenceInfo]
    term_set: frozenset[str] = field(default_factory=frozenset)


def build_passage(text: str, spans: list[tuple[int, int]], morphs_per_sentence: list[list[Morpheme]]) -> PassageInfo:
    sents = []
    all_terms: set[str] = set()
    for (s, e), ms in zip(spans, morphs_per_sentence):
        ms = [Morpheme(m.form, m.tag, m.start + s, m.end + s) for m in ms]
        ts = frozenset(terms_from_morphemes(ms))
        all_terms |= ts
        sents.append(SentenceInfo(s, e, ms, [m.form.lower() for m in ms], ts))
    return PassageInfo(text, sents, frozenset(all_terms))


# --------------------------------------------------------------------------- idf


class Idf:
    def __init__(self, df: dict[str, int], n_docs: int) -> None:
        self.df = df
        self.n = n_docs
        self.default = math.log((n_docs + 1) / 1.5)

    def __call__(self, term: str) -> float:
        d = self.df.get(term)
        if d is None:
            return self.default
        return math.log((self.n + 1) / (d + 0.5))


# --------------------------------------------------------------------------- sentence features


def sentence_features(q: QuestionInfo, idf: Idf, passages: list[PassageInfo], ranks: list[int],
                      rel_scores: list[float]) -> list[tuple[int, int, dict[int, float]]]:
    """One sparse feature dict per sentence of every passage: (passage_idx, sent_idx, feats)."""
    q_w = {t: idf(t) for t in q.term_set}
    total = sum(q_w.values()) or 1.0
    nq = max(1, len(q.term_set))
    qb = q.bigrams
    nqb = max(1, len(qb))
    out = []
    for pi, p in enumerate(passages):
        p_cov = sum(w for t, w in q_w.items() if t in p.term_set) / total
        covs = [sum(w for t, w in q_w.items() if t in s.term_set) / total for s in p.sentences]
        n_s = len(p.sentences)
        for si, s in enumerate(p.sentences):
            stext = p.text[s.start:s.end]
            cov = covs[si]
            cnt = sum(1 for t in q.term_set if t in s.term_set) / nq
            sb = char_bigrams(stext)
            bi = len(qb & sb) / nqb
            ctx = max(covs[si - 1] if si > 0 else 0.0, covs[si + 1] if si + 1 < n_s else 0.0)
            f = {
                0: 1.0, 1: cov, 2: cnt, 3: bi, 4: p_cov, 5: ctx, 6: 1.0 / (1 + ranks[pi]),
                7: rel_scores[pi], 8: 1.0 if si == 0 else 0.0, 9: math.log1p(len(stext)) / 6,
                10: cov * cov, 11: bi * bi, 12: cov * bi, 13: 1.0 if q.left_terms & s.term_set else 0.0,
                14: len(q.left_terms & s.term_set) / max(1, len(q.left_terms)),
                15: len(q.right_terms & s.term_set) / max(1, len(q.right_terms)),
                16: 1.0 if cov >= 0.999 else 0.0, 17: max(covs) - cov if covs else 0.0,
            }
            f[_hash(f"srank={min(ranks[pi], 9)}")] = 1.0
            f[_hash(f"qt={q.qtype}|has_sn={int(any(m.tag == 'SN' for m in s.morphs))}")] = 1.0
            out.append((pi, si, f))
    return out


# --------------------------------------------------------------------------- span candidates


@dataclass
class Span:
    passage: int
    sentence: int
    i: int                         # first morpheme index in the sentence
    j: int                         # last morpheme index (inclusive)
    start: int                     # char offsets in the passage text
    end: int


def candidate_spans(p: PassageInfo, pi: int, si: int) -> list[Span]:
    s = p.sentences[si]
    ms = s.morphs
    text = p.text
    n = len(ms)
    out = []
    starts = []
    for i, m in enumerate(ms):
        if m.tag not in START_TAGS:
            continue
        before = text[m.start - 1] if m.start > 0 else " "
        prev_same = i > 0 and ms[i - 1].end == m.start and ms[i - 1].tag not in {"SSO", "SP", "SO", "SW", "SS"}
        if before.isspace() or before in OPEN_QUOTES or before in ",·/-~" or not prev_same or m.start == s.start:
            starts.append(i)
    for i in starts:
        lim = min(n, i + MAX_SPAN_MORPHS)
        for j in range(i, lim):
            m = ms[j]
            if m.tag in {"SF", "EF"}:
                break
            if m.end - ms[i].start > MAX_SPAN_CHARS:
                break
            if m.tag not in END_TAGS:
                continue
            if m.tag == "SSC" and ms[i].tag != "SSO":
                continue
            if j + 1 < n:
                nx = ms[j + 1]
                if nx.start == m.end and nx.tag in NOMINAL and nx.tag != "XSN":
                    continue  # would cut a compound noun in half
            start, end = ms[i].start, m.end
            if end <= start:
                continue
            out.append(Span(pi, si, i, j, start, end))
    return out


def _pattern(ms: list[Morpheme]) -> str:
    tags = []
    for m in ms:
        t = m.tag[:2] if m.tag.startswith(("NN", "J", "E", "V", "X")) else m.tag
        if not tags or tags[-1] != t:
            tags.append(t)
    return "-".join(tags[:6])


def span_features(q: QuestionInfo, idf: Idf, p: PassageInfo, sp: Span, sent_logit: float,
                  sent_margin: float, rank: int, q_surface: str) -> dict[int, float]:
    s = p.sentences[sp.sentence]
    ms = s.morphs
    forms = s.forms
    span_ms = ms[sp.i:sp.j + 1]
    n = len(ms)
    q_terms = q.term_set
    # positions in the sentence of morphemes matching question terms
    match_pos = [k for k in range(n) if forms[k] in q_terms and not (sp.i <= k <= sp.j)]
    if match_pos:
        dist = min(min(abs(k - sp.i), abs(k - sp.j)) for k in match_pos)
    else:
        dist = 30
    def win(lo, hi, terms=None):
        ts = terms if terms is not None else q_terms
        seen = set()
        w = 0.0
        for k in range(max(0, lo), min(n, hi)):
            if sp.i <= k <= sp.j:
                continue
            f = forms[k]
            if f in ts and f not in seen:
                seen.add(f)
                w += idf(f)
        return w
    q_total = sum(idf(t) for t in q_terms) or 1.0
    # every matched question term, weighted by closeness to the span (each term once, nearest)
    near_w: dict[str, float] = {}
    side_l = side_r = 0.0
    for k in match_pos:
        d = sp.i - k if k < sp.i else k - sp.j
        w = idf(forms[k]) / (1.0 + d)
        if w > near_w.get(forms[k], 0.0):
            near_w[forms[k]] = w
        if k < sp.i:
            side_l += idf(forms[k]) / q_total
        else:
            side_r += idf(forms[k]) / q_total
    closeness = sum(near_w.values()) / q_total
    left4 = win(sp.i - 4, sp.i) / q_total
    right4 = win(sp.j + 1, sp.j + 5) / q_total
    near10 = win(sp.i - 10, sp.j + 11) / q_total
    align_l = win(sp.i - 5, sp.i, q.left_terms) / q_total
    align_r = win(sp.j + 1, sp.j + 6, q.right_terms) / q_total
    span_terms = terms_from_morphemes(span_ms)
    in_q = sum(1 for t in span_terms if t in q_terms) / max(1, len(span_terms))
    surface = p.text[sp.start:sp.end]
    n_eoj = surface.count(" ") + 1
    first, last = span_ms[0], span_ms[-1]
    nxt = ms[sp.j + 1] if sp.j + 1 < n else None
    prv = ms[sp.i - 1] if sp.i > 0 else None
    nt = nxt.tag if nxt is not None else "END"
    nf = nxt.form if nxt is not None and nxt.tag.startswith(("J", "VCP", "E", "XS")) else nt
    pt = prv.tag if prv is not None else "BEG"
    has_sn = any(m.tag == "SN" for m in span_ms)
    n_j = sum(1 for m in span_ms if m.tag.startswith(("J", "E", "V")))
    rel_pos = sp.i / max(1, n)
    f = {
        20: 1.0, 21: sent_logit / 5, 22: sent_margin / 5, 23: 1.0 / (1 + rank),
        24: 1.0 / (1 + dist), 25: left4, 26: right4, 27: near10, 28: align_l, 29: align_r,
        30: in_q, 31: 1.0 if in_q >= 0.999 else 0.0, 32: len(span_ms) / 6, 33: min(len(surface), 40) / 10,
        34: n_eoj / 3, 35: 1.0 if surface in q_surface else 0.0, 36: rel_pos, 37: n_j / 3,
        38: 1.0 if dist <= 1 else 0.0, 39: 1.0 if dist <= 3 else 0.0, 40: left4 * right4,
        41: 1.0 if sp.i == 0 else 0.0, 42: closeness, 43: min(side_l, 2.0) / 2, 44: min(side_r, 2.0) / 2,
    }
    qt = q.qtype
    foc = q.focus or "-"
    lf = last.form.lower() if last.tag in {"NNB", "XSN", "NNG", "SSC"} else last.tag
    pat = _pattern(span_ms)
    nlen = min(len(span_ms), 8)
    for key in (
        f"qt={qt}|lt={last.tag}", f"qt={qt}|lf={lf}", f"qt={qt}|ft={first.tag}", f"qt={qt}|nt={nt}",
        f"qt={qt}|nf={nf}", f"qt={qt}|pt={pt}", f"qt={qt}|pat={pat}", f"qt={qt}|len={nlen}",
        f"qt={qt}|sn={int(has_sn)}", f"qt={qt}|eoj={min(n_eoj, 5)}", f"foc={foc}|lf={lf}",
        f"foc={foc}|lt={last.tag}", f"foc={foc}|pat={pat}", f"wp={q.wh_particle}|nf={nf}",
        f"wh={q.wh}|lf={lf}", f"wh={q.wh}|pat={pat}", f"lf={lf}|nf={nf}", f"pat={pat}|nf={nf}",
        f"qt={qt}|inq={int(in_q * 2)}", f"qt={qt}|dist={min(dist, 6)}", f"ft={first.tag}|lt={last.tag}",
        f"qt={qt}|fq={int(first.tag == 'SSO')}{int(last.tag == 'SSC')}",
        f"qv={q.verb}|lf={lf}", f"qv={q.verb}|pat={pat}", f"foc={foc}|nf={nf}",
    ):
        f[_hash(key)] = 1.0
    return f


# --------------------------------------------------------------------------- tree features (span ranker)

QTYPES = ["who", "when", "where", "num", "what", "which", "how", "why", "other"]
_TAGS = ["NNG", "NNP", "NNB", "NR", "NP", "SN", "SL", "SH", "XSN", "XR", "XPN", "MM", "SSO", "SSC",
         "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC", "VCP", "VV", "VA", "XSV", "XSA",
         "EP", "EF", "EC", "ETM", "ETN", "SF", "SP", "SS", "SO", "SW", "MAG", "MAJ", "END", "BEG"]
TAG_CODE = {t: i for i, t in enumerate(_TAGS)}
# particles/copula that typically follow an answer phrase
_NEXT_FORMS = ["은", "는", "이", "가", "을", "를", "에", "에서", "의", "로", "으로", "와", "과", "도", "만",
               "이다", "까지", "부터", "에게", "라는", "이라는", "라고", "이라고", "인", "이며", "였", "이었"]
NEXT_CODE = {f: i for i, f in enumerate(_NEXT_FORMS)}
_TOPIC_SUBJ = {"은", "는", "이", "가"}
_OBJ = {"을", "를"}
_LOC = {"에", "에서", "로", "으로", "에게", "까지", "부터"}
_DATE_UNITS = {"년", "월", "일", "세기", "년대", "시", "분"}

TREE_FEATURES = [
    # dense slots copied from span_features (20..44)
    "sent_logit", "sent_margin", "p_rank", "inv_dist", "left4", "right4", "near10", "align_l", "align_r",
    "in_q", "all_in_q", "n_morph", "n_char", "n_eoj", "surface_in_q", "rel_pos", "n_func", "dist_le1",
    "dist_le3", "left_x_right", "sent_first", "closeness", "side_l", "side_r",
    # stacked linear span score
    "lin", "lin_minus_max", "lin_rank", "lin_softmax",
    # categorical (as integer codes)
    "c_qtype", "c_last_tag", "c_first_tag", "c_next", "c_prev_tag", "c_wh_particle",
    # interactions / extras
    "dchar_left", "dchar_right", "dmorph_left", "dmorph_right", "n_match_sent", "sent_cov",
    "between_matches", "before_all", "after_all", "next_topic_subj", "next_obj", "next_loc",
    "wp_eq_next", "wp_group_eq", "focus_is_last", "focus_in_span", "has_sn", "date_units",
    "quoted", "span_bigram_q", "span_idf_mean", "span_freq", "sent_rank", "n_cands_q",
    "is_longest_end", "is_shortest_end", "same_end_count", "qt_x_sn", "qt_x_date",
    "span_in_other_sents", "verb_near",
]
CAT_FEATURES = [i for i, n in enumerate(TREE_FEATURES) if n.startswith("c_")]


def _group(f: str) -> int:
    if f in _TOPIC_SUBJ:
        return 1
    if f in _OBJ:
        return 2
    if f in _LOC:
        return 3
    return 0


LIN_COLS = slice(24, 28)


def lin_columns(lin: "list[float]") -> "list[list[float]]":
    """Per-question view of the linear span scores: score, gap to best, rank, softmax."""
    if not len(lin):
        return []
    lin = [float(v) for v in lin]
    lin_max = max(lin)
    order = sorted(range(len(lin)), key=lambda k: -lin[k])
    lrank = [0] * len(lin)
    for r, k in enumerate(order):
        lrank[k] = r
    z = sum(math.exp(v - lin_max) for v in lin)
    return [[v, v - lin_max, float(min(lrank[k], 50)), math.exp(v - lin_max) / z] for k, v in enumerate(lin)]


def span_tree_matrix(q: QuestionInfo, idf: Idf, passages: list[PassageInfo],
                     cands: list[tuple[Span, int]], sparse: list[dict[int, float]],
                     lin: list[float]) -> "list[list[float]]":
    """Dense rows for the tree span ranker, one per candidate of one question.

    `cands` are (span, sentence rank among the chosen sentences), `sparse` the span_features
    dicts (its dense slots 20..44 are reused), `lin` the linear span scores.
    """
    if not cands:
        return []
    lc = lin_columns(lin)
    q_terms = q.term_set
    q_total = sum(idf(t) for t in q_terms) or 1.0
    qb = q.bigrams
    surfaces = []
    for sp, _ in cands:
        surfaces.append(passages[sp.passage].text[sp.start:sp.end])
    norm_surf = [s.replace(" ", "") for s in surfaces]
    freq: dict[str, int] = {}
    for s in norm_surf:
        freq[s] = freq.get(s, 0) + 1
    # occurrences of each surface in other chosen sentences (redundancy across evidence)
    sent_texts = {}
    for sp, _ in cands:
        key = (sp.passage, sp.sentence)
        if key not in sent_texts:
            st = passages[sp.passage].sentences[sp.sentence]
            sent_texts[key] = passages[sp.passage].text[st.start:st.end].replace(" ", "")
    by_end: dict[tuple[int, int, int], list[int]] = {}
    for k, (sp, _) in enumerate(cands):
        by_end.setdefault((sp.passage, sp.sentence, sp.j), []).append(k)
    sent_cache: dict[tuple[int, int], tuple[list[int], float]] = {}
    rows = []
    n_c = len(cands)
    for k, (sp, srank) in enumerate(cands):
        p = passages[sp.passage]
        s = p.sentences[sp.sentence]
        ms = s.morphs
        n = len(ms)
        key = (sp.passage, sp.sentence)
        if key not in sent_cache:
            mpos = [x for x in range(n) if s.forms[x] in q_terms]
            cov = sum(idf(t) for t in q_terms if t in s.term_set) / q_total
            sent_cache[key] = (mpos, cov)
        mpos, cov = sent_cache[key]
        outside = [x for x in mpos if not (sp.i <= x <= sp.j)]
        left = [x for x in outside if x < sp.i]
        right = [x for x in outside if x > sp.j]
        dml = sp.i - max(left) if left else 40
        dmr = min(right) - sp.j if right else 40
        dcl = sp.start - ms[max(left)].end if left else 200
        dcr = ms[min(right)].start - sp.end if right else 200
        f = sparse[k]
        dense = [f.get(x, 0.0) for x in range(21, 45)]
        span_ms = ms[sp.i:sp.j + 1]
        first, last = span_ms[0], span_ms[-1]
        nxt = ms[sp.j + 1] if sp.j + 1 < n else None
        prv = ms[sp.i - 1] if sp.i > 0 else None
        nform = ""
        if nxt is not None and nxt.tag.startswith(("J", "VCP", "E")):
            nform = nxt.form
            if nxt.tag == "VCP" and sp.j + 2 < n and ms[sp.j + 2].start == nxt.end:
                nform = nxt.form + ms[sp.j + 2].form if (nxt.form + ms[sp.j + 2].form) in NEXT_CODE else "이"
        if nform in NEXT_CODE:
            c_next = NEXT_CODE[nform]
        else:
            c_next = 40 + TAG_CODE.get(nxt.tag if nxt is not None else "END", len(_TAGS))
        wp = q.wh_particle
        span_forms = [m.form for m in span_ms]
        n_sn = any(m.tag == "SN" for m in span_ms)
        n_date = sum(1 for m in span_ms if m.form in _DATE_UNITS and m.tag in {"NNB", "NNG", "XSN"})
        surf = surfaces[k]
        sb = char_bigrams(surf)
        sbq = len(sb & qb) / max(1, len(sb))
        sterms = [m.form.lower() for m in span_ms if m.tag.startswith("NN") or m.tag in {"SL", "SH", "XR"}]
        idf_mean = sum(idf(t) for t in sterms) / len(sterms) if sterms else 0.0
        same_end = by_end[(sp.passage, sp.sentence, sp.j)]
        lens = [cands[x][0].end - cands[x][0].start for x in same_end]
        L = sp.end - sp.start
        other = sum(1 for kk, t in sent_texts.items() if kk != key and norm_surf[k] in t)
        verb_near = 0.0
        if q.verb:
            for x in range(max(0, sp.i - 6), min(n, sp.j + 7)):
                if s.forms[x] == q.verb and not (sp.i <= x <= sp.j):
                    verb_near = 1.0 / (1 + min(abs(x - sp.i), abs(x - sp.j)))
                    break
        qt = QTYPES.index(q.qtype) if q.qtype in QTYPES else len(QTYPES) - 1
        rows.append(dense + [
            *lc[k],
            float(qt), float(TAG_CODE.get(last.tag, len(_TAGS))), float(TAG_CODE.get(first.tag, len(_TAGS))),
            float(c_next), float(TAG_CODE.get(prv.tag if prv is not None else "BEG", len(_TAGS))),
            float(NEXT_CODE.get(wp, len(_NEXT_FORMS) if wp else len(_NEXT_FORMS) + 1)),
            float(min(dcl, 200)), float(min(dcr, 200)), float(dml), float(dmr), float(len(set(s.forms[x] for x in mpos))),
            cov, float(bool(left) and bool(right)), float(not left and bool(right)), float(bool(left) and not right),
            float(nform in _TOPIC_SUBJ), float(nform in _OBJ), float(nform in _LOC),
            float(bool(wp) and wp == nform), float(bool(wp) and _group(wp) == _group(nform) and _group(wp) > 0),
            float(bool(q.focus) and last.form == q.focus), float(bool(q.focus) and q.focus in span_forms),
            float(n_sn), float(n_date), float(first.tag == "SSO" or last.tag == "SSC"), sbq, idf_mean,
            float(freq[norm_surf[k]]), float(srank), float(n_c),
            float(L == max(lens)), float(L == min(lens)), float(len(same_end)),
            float(qt * 2 + int(n_sn)), float(qt * 4 + min(n_date, 3)),
            float(other), verb_near,
        ])
    return rows
