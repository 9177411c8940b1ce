#!/usr/bin/env python
"""Fine-tune the neural span reader (jisik/neural_reader.py) on the CPU.

    pip install torch==2.13.0          # training only; the runtime is numpy
    python scripts/train_neural_reader.py [--data DIR]   # defaults reproduce the shipped model
    python scripts/train_neural_reader.py --holdout-val --out /tmp/reader-val   # for model selection

Examples: every KorQuAD dev question outside `jisik.splits` held-out articles, grouped with
the sentences the engine would read for it: hits from a BM25 over KorQuAD + NoMIRACL passages
with the held-out articles removed (as in scripts/train_reader.py), sentences ranked by the
shipped feature reader's sentence model. A group is the gold sentence plus the best-ranked
other sentences (`--sentences` in all), each read as `<s> question </s></s> title: sentence </s>`.

Two losses per group:
- span: one softmax over the start (and one over the end) tokens of *all* the group's
  sentences, maximising the probability of every place the answer string occurs (shared
  normalisation: a span logit then means the same in every sentence, so the reader can
  compare sentences by it);
- answerable: a logistic output on `<s>` per sentence, 1 where the sentence holds the answer.

Training cost is kept CPU-sized: the bottom `--first-tuned` layers stay frozen, so their
output is computed once (numpy) and cached; only the top layers run in torch, with LoRA
deltas on their six matrices, their layer norms and the head trainable. The output
(`jisik/models/neural_reader.npz`) holds only those trained parts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_reader as tr  # noqa: E402

from jisik.e5 import embed, load_weights, run_layers  # noqa: E402
from jisik.korean import normalize  # noqa: E402
from jisik.neural_reader import MATRICES, MODEL_DIR, MODEL_FILE, Encoded, encode_pair, pad_batch, title_ids  # noqa: E402
from jisik.read import Reader  # noqa: E402
from jisik.reader_features import analyze_question  # noqa: E402
from jisik.splits import article_title, is_heldout, is_heldout_passage  # noqa: E402

SEED = 13


def log(*a):
    print(*a, file=sys.stderr, flush=True)


@dataclass
class Row:
    enc: Encoded
    starts: list[int]  # token positions in enc.ids where an answer occurrence starts
    ends: list[int]


def answer_positions(enc: Encoded, sent: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token positions (in enc.ids) of the first and last token of each character span."""
    starts, ends = [], []
    toks = enc.context
    for a0, a1 in spans:
        first = next((k for k, t in enumerate(toks) if t.end > a0), None)
        last = next((k for k in range(len(toks) - 1, -1, -1) if toks[k].start < a1), None)
        if first is None or last is None or last < first:
            continue
        starts.append(enc.offset + first)
        ends.append(enc.offset + last)
    return starts, ends


def occurrences(text: str, answer: str) -> list[tuple[int, int]]:
    out, k = [], text.find(answer)
    while k >= 0 and answer:
        out.append((k, k + len(answer)))
        k = text.find(answer, k + 1)
    return out


def build_groups(questions, reader, bm25, by_id, pinfo, qmorphs, weights, mask, sentences):
    """One group of Rows per question: the gold sentence first, then the best-ranked others."""
    groups, missed = [], 0
    for q in questions:
        text = normalize(q["question"])
        qi = analyze_question(text, qmorphs[text])
        hits, infos = tr.make_hits(bm25.top(qi.terms, 5, mask), by_id, pinfo)
        g = tr.gold_sentence(q, hits, infos)
        if g is None:
            missed += 1
            continue
        qtok = weights.tokenizer.tokenize(text)
        ranked = [(pi, si) for _, pi, si in reader.rank_sentences(qi, hits, infos)[1]]
        chosen = [g] + [x for x in ranked if x != g][:sentences - 1]
        answer = q["answers"][0]
        rows = []
        for pi, si in chosen:
            s = infos[pi].sentences[si]
            sent = infos[pi].text[s.start:s.end]
            enc = encode_pair(weights, qtok, sent, title_ids(weights, hits[pi].title))
            if not enc.context:
                continue
            if (pi, si) == g:
                a0 = q["answer_starts"][0] - s.start
                spans = [(a0, a0 + len(answer))] if sent[a0:a0 + len(answer)] == answer else []
                spans += [o for o in occurrences(sent, answer) if o[0] != a0]
            else:
                spans = occurrences(sent, answer)
            starts, ends = answer_positions(enc, sent, spans)
            rows.append(Row(enc, starts, ends))
        if not any(r.starts for r in rows):
            missed += 1
            continue
        groups.append(rows)
    return groups, missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--holdout-val", action="store_true",
                    help="also leave out the validation articles (train_reader.is_val_title), for model selection")
    ap.add_argument("--first-tuned", type=int, default=4, help="layers below this stay frozen")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--sentences", type=int, default=5, help="sentences per question group (gold + best-ranked others)")
    ap.add_argument("--answerable-weight", type=float, default=0.5)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--groups", type=int, default=8, help="question groups per batch")
    ap.add_argument("--limit", type=int, default=0, help="use only this many questions (smoke runs)")
    args = ap.parse_args()

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    st = tr.load_setting(Path(args.data), Path(args.cache))
    kq_q, by_id, pinfo, qmorphs, ids, bm25 = st.kq_q, st.by_id, st.pinfo, st.qmorphs, st.ids, st.bm25

    def left_out(title: str) -> bool:
        return args.holdout_val and tr.is_val_title(title)

    train_mask = np.array([not is_heldout_passage(i) and not (i.startswith("korquad:") and left_out(article_title(i)))
                           for i in ids])
    train_q = [q for q in kq_q if not is_heldout(q) and not left_out(article_title(q["gold_id"]))]
    if args.limit:
        train_q = train_q[:args.limit]
    weights = load_weights()
    reader = Reader.load(kind="features")  # its sentence ranker picks what is read
    t0 = time.time()
    groups, missed = build_groups(train_q, reader, bm25, by_id, pinfo, qmorphs, weights, train_mask, args.sentences)
    rows = [r for g in groups for r in g]
    log(f"{len(groups)} groups, {len(rows)} sentences ({sum(1 for r in rows if r.starts)} with the answer), "
        f"{missed} questions without an alignable gold sentence, from {len(train_q)} questions in {time.time() - t0:.0f}s; "
        f"mean length {np.mean([len(r.enc.ids) for r in rows]):.0f} tokens")

    # ---- frozen bottom: run once, keep as float16
    L0 = args.first_tuned
    order = np.argsort([len(r.enc.ids) for r in rows], kind="stable")
    cached: list[np.ndarray] = [None] * len(rows)  # type: ignore[list-item]
    t0 = time.time()
    for k in range(0, len(order), 64):
        idx = order[k:k + 64]
        tok_ids, mask = pad_batch(weights, [rows[i].enc for i in idx])
        x = run_layers(weights, embed(weights, tok_ids), mask, weights.layer[:L0])
        for r, i in enumerate(idx):
            cached[i] = x[r, :len(rows[i].enc.ids)].astype(np.float16)
    row_of = {id(r): n for n, r in enumerate(rows)}
    log(f"cached layer-{L0} states in {time.time() - t0:.0f}s")

    # ---- trainable top
    H, nh = weights.hidden, weights.heads
    eps = weights.eps
    scale = args.alpha / args.rank

    class Top(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = []
            self.lora = torch.nn.ParameterDict()
            self.norms = torch.nn.ParameterDict()
            for ly in range(L0, weights.layers):
                d = weights.layer[ly]
                self.base.append({k: torch.from_numpy(v.copy()) for k, v in d.items()})
                for m in MATRICES:
                    out_dim, in_dim = d[f"{m}.w"].shape
                    a = torch.randn(args.rank, in_dim) / math.sqrt(in_dim)
                    self.lora[f"l{ly}_{m}_a"] = torch.nn.Parameter(a)
                    self.lora[f"l{ly}_{m}_b"] = torch.nn.Parameter(torch.zeros(out_dim, args.rank))
                for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
                    self.norms[f"l{ly}_{k.replace('.', '_')}"] = torch.nn.Parameter(torch.from_numpy(d[k].copy()))
            self.head = torch.nn.Linear(H, 3)  # start, end, answerable (read on <s>)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.zeros_(self.head.bias)

        def lin(self, x, ly, m, base):
            w = base[f"{m}.w"] + scale * (self.lora[f"l{ly}_{m}_b"] @ self.lora[f"l{ly}_{m}_a"])
            return x @ w.T + base[f"{m}.b"]

        def forward(self, x, mask):
            B, T, _ = x.shape
            bias = torch.where(mask, 0.0, -1e9)[:, None, None, :]
            for n, ly in enumerate(range(L0, weights.layers)):
                base = self.base[n]
                nrm = lambda k: self.norms[f"l{ly}_{k}"]  # noqa: E731
                q = self.lin(x, ly, "q", base).view(B, T, nh, -1).transpose(1, 2)
                k = self.lin(x, ly, "k", base).view(B, T, nh, -1).transpose(1, 2)
                v = self.lin(x, ly, "v", base).view(B, T, nh, -1).transpose(1, 2)
                att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // nh) + bias, dim=-1)
                ctx = (att @ v).transpose(1, 2).reshape(B, T, H)
                x = torch.nn.functional.layer_norm(x + self.lin(ctx, ly, "ao", base), (H,), nrm("aln_w"), nrm("aln_b"), eps)
                mid = torch.nn.functional.gelu(self.lin(x, ly, "fi", base))
                x = torch.nn.functional.layer_norm(x + self.lin(mid, ly, "fo", base), (H,), nrm("oln_w"), nrm("oln_b"), eps)
            return self.head(x)

    model = Top()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    n_batches = math.ceil(len(groups) / args.groups)
    total = max(1, int(n_batches * args.epochs))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total))

    def batches():
        # length-bucketed shuffled batches of whole groups
        perm = rng.permutation(len(groups))
        chunk = args.groups * 50
        out = []
        for c in range(0, len(perm), chunk):
            part = sorted(perm[c:c + chunk], key=lambda g: max(len(r.enc.ids) for r in groups[g]))
            out += [part[k:k + args.groups] for k in range(0, len(part), args.groups)]
        rng.shuffle(out)
        return out

    K = args.sentences
    step, t0, run_loss = 0, time.time(), []
    model.train()
    while step < total:
        for gidx in batches():
            if step >= total:
                break
            G = len(gidx)
            T = max(len(r.enc.ids) for g in gidx for r in groups[g])
            x = np.zeros((G * K, T, H), dtype=np.float32)
            mask = np.zeros((G * K, T), dtype=bool)
            ctx = np.zeros((G * K, T), dtype=bool)
            ys = np.zeros((G * K, T), dtype=bool)
            ye = np.zeros((G * K, T), dtype=bool)
            yans = np.zeros(G * K, dtype=np.float32)
            real = np.zeros(G * K, dtype=bool)
            for gi, g in enumerate(gidx):
                for ri, r in enumerate(groups[g]):
                    b = gi * K + ri
                    n = len(r.enc.ids)
                    x[b, :n] = cached[row_of[id(r)]]
                    mask[b, :n] = True
                    ctx[b, r.enc.offset:r.enc.offset + len(r.enc.context)] = True
                    ys[b, r.starts] = True
                    ye[b, r.ends] = True
                    yans[b] = 1.0 if r.starts else 0.0
                    real[b] = True
            mask[~real, 0] = True  # empty slots: one token so attention stays finite
            out = model(torch.from_numpy(x), torch.from_numpy(mask))
            c = torch.from_numpy(ctx).view(G, K * T)
            loss = 0.0
            for ch, y in ((0, ys), (1, ye)):
                lg = out[..., ch].reshape(G, K * T)
                allowed = lg.masked_fill(~c, -1e4)
                hit = lg.masked_fill(~torch.from_numpy(y).view(G, K * T), -1e4)
                loss = loss + (torch.logsumexp(allowed, 1) - torch.logsumexp(hit, 1)).mean() / 2
            r_t = torch.from_numpy(real)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0, 2][r_t], torch.from_numpy(yans)[r_t])
            loss = loss + args.answerable_weight * bce
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            run_loss.append((float(loss.detach()), float(bce.detach())))
            step += 1
            if step % 20 == 0 or step == total:
                rl = np.mean(run_loss[-20:], axis=0)
                log(f"step {step}/{total} loss {rl[0]:.3f} (answerable {rl[1]:.3f}) ({time.time() - t0:.0f}s)")

    out = {"config": json.dumps({
        "first_tuned_layer": L0, "lora_rank": args.rank, "lora_alpha": args.alpha, "title_prefix": True,
        "objective": "shared-normalisation span softmax over the question's sentences + answerable BCE on <s>",
        "trained_on": f"{len(train_q)} KorQuAD dev questions outside jisik.splits held-out"
                      + (" and the validation articles" if args.holdout_val else ""),
        "groups": len(groups), "sentences_per_group": K, "answerable_weight": args.answerable_weight,
        "epochs": args.epochs, "lr": args.lr, "groups_per_batch": args.groups, "seed": SEED})}
    for ly in range(L0, weights.layers):
        for m in MATRICES:
            out[f"l{ly}.{m}.lora_a"] = model.lora[f"l{ly}_{m}_a"].detach().numpy().astype(np.float16)
            out[f"l{ly}.{m}.lora_b"] = model.lora[f"l{ly}_{m}_b"].detach().numpy().astype(np.float16)
        for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
            out[f"l{ly}.{k}"] = model.norms[f"l{ly}_{k.replace('.', '_')}"].detach().numpy()
    out["head.w"] = model.head.weight.detach().numpy()
    out["head.b"] = model.head.bias.detach().numpy()
    dest = Path(args.out) / MODEL_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dest, **out)
    log(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
