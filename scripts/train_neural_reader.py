#!/usr/bin/env python
"""Fine-tune the neural span reader (jisik/neural_reader.py) on the CPU.

    pip install torch==2.13.0          # training only; the runtime is numpy
    python scripts/train_neural_reader.py [--data DIR]   # defaults reproduce the shipped model

Examples: every KorQuAD dev question outside `jisik.splits` held-out articles, with the
sentences the engine would read for it: hits from a BM25 over KorQuAD + NoMIRACL passages
with the held-out articles removed (as in scripts/train_reader.py), sentences ranked by the
shipped feature reader's sentence model. The gold sentence is a positive (its answer span
is the target); the other top sentences that do not contain the answer string are
negatives (target: `<s>`, "no answer here").

Training cost is kept CPU-sized: the bottom `--first-tuned` layers stay frozen, so their
output is computed once (numpy) and cached; only the top layers run in torch, with LoRA
deltas on their six matrices, their layer norms and the span head trainable. The output
(`jisik/models/neural_reader.npz`) holds only those trained parts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import train_reader as tr  # noqa: E402

from jisik.e5 import embed, load_weights, run_layers  # noqa: E402
from jisik.korean import normalize  # noqa: E402
from jisik.neural_reader import MATRICES, MODEL_DIR, MODEL_FILE, encode_pair, pad_batch  # noqa: E402
from jisik.read import Reader  # noqa: E402
from jisik.reader_features import analyze_question  # noqa: E402
from jisik.splits import is_heldout, is_heldout_passage  # noqa: E402

SEED = 13


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build_examples(questions, reader, bm25, by_id, pinfo, qmorphs, weights, mask, negatives):
    """(Encoded, start token, end token) triples; (0, 0) marks a negative."""
    out, missed = [], 0
    for q in questions:
        text = normalize(q["question"])
        qi = analyze_question(text, qmorphs[text])
        hits, infos = tr.make_hits(bm25.top(qi.terms, 5, mask), by_id, pinfo)
        g = tr.gold_sentence(q, hits, infos)
        qtok = weights.tokenizer.tokenize(text)
        ranked = reader.rank_sentences(qi, hits, infos)[1]
        answer = q["answers"][0]
        chosen = []
        if g is not None:
            chosen.append((g, True))
        for _, pi, si in ranked:
            if len(chosen) >= negatives + 1:
                break
            s = infos[pi].sentences[si]
            if (pi, si) == g or answer in infos[pi].text[s.start:s.end]:
                continue
            chosen.append(((pi, si), False))
        for (pi, si), positive in chosen:
            s = infos[pi].sentences[si]
            sent = infos[pi].text[s.start:s.end]
            enc = encode_pair(weights, qtok, sent)
            if not enc.context:
                continue
            if not positive:
                out.append((enc, 0, 0))
                continue
            a0 = q["answer_starts"][0] - s.start
            a1 = a0 + len(answer)
            toks = enc.context
            first = next((k for k, t in enumerate(toks) if t.end > a0), None)
            last = next((k for k in range(len(toks) - 1, -1, -1) if toks[k].start < a1), None)
            if first is None or last is None or last < first or sent[a0:a1] != answer:
                missed += 1
                continue
            out.append((enc, enc.offset + first, enc.offset + last))
    return out, missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--cache", default="/tmp/jisik_reader_cache")
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--first-tuned", type=int, default=4, help="layers below this stay frozen")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--negatives", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="use only this many questions (smoke runs)")
    args = ap.parse_args()

    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    data = Path(args.data)
    kq_p = tr.read_jsonl(data / "korquad" / "passages.jsonl")
    kq_q = tr.read_jsonl(data / "korquad" / "questions.jsonl")
    nm_p = tr.read_jsonl(data / "nomiracl_ko" / "passages.jsonl")
    nm_q = tr.read_jsonl(data / "nomiracl_ko" / "questions.jsonl")
    passages = kq_p + nm_p
    by_id = {p["id"]: p for p in passages}
    qtexts = [normalize(q["question"]) for q in kq_q + nm_q]
    pinfo, pterms, qmorphs = tr.analyze_all(passages, qtexts, Path(args.cache))
    ids = [p["id"] for p in passages]
    bm25 = tr.BM25(ids, [pterms[i] for i in ids])
    train_mask = np.array([not is_heldout_passage(i) for i in ids])
    train_q = [q for q in kq_q if not is_heldout(q)]
    if args.limit:
        train_q = train_q[:args.limit]
    weights = load_weights()
    reader = Reader.load(kind="features")  # its sentence ranker picks what is read
    t0 = time.time()
    examples, missed = build_examples(train_q, reader, bm25, by_id, pinfo, qmorphs, weights,
                                      train_mask, args.negatives)
    n_pos = sum(1 for _, a, _ in examples if a)
    log(f"{len(examples)} examples ({n_pos} positive, {missed} unalignable) from {len(train_q)} questions"
        f" in {time.time() - t0:.0f}s; mean length {np.mean([len(e.ids) for e, _, _ in examples]):.0f} tokens")

    # ---- frozen bottom: run once, keep as float16
    L0 = args.first_tuned
    order = np.argsort([len(e.ids) for e, _, _ in examples], kind="stable")
    cached: list[np.ndarray] = [None] * len(examples)  # type: ignore[list-item]
    t0 = time.time()
    for k in range(0, len(order), 64):
        idx = order[k:k + 64]
        batch = [examples[i][0] for i in idx]
        tok_ids, mask = pad_batch(weights, batch)
        x = run_layers(weights, embed(weights, tok_ids), mask, weights.layer[:L0])
        for r, i in enumerate(idx):
            cached[i] = x[r, :len(examples[i][0].ids)].astype(np.float16)
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
            self.head = torch.nn.Linear(H, 2)
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
            out = self.head(x)
            return out[..., 0], out[..., 1]

    model = Top()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    n_batches = math.ceil(len(examples) / args.batch)
    total = max(1, int(n_batches * args.epochs))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * total)) * max(0.0, 1 - s / total))

    def batches():
        # length-bucketed shuffled batches: sort by length inside chunks of 50 batches
        perm = rng.permutation(len(examples))
        chunk = args.batch * 50
        out = []
        for c in range(0, len(perm), chunk):
            part = sorted(perm[c:c + chunk], key=lambda i: len(examples[i][0].ids))
            out += [part[k:k + args.batch] for k in range(0, len(part), args.batch)]
        rng.shuffle(out)
        return out

    step, t0, run_loss = 0, time.time(), []
    model.train()
    while step < total:
        for idx in batches():
            if step >= total:
                break
            T = max(len(examples[i][0].ids) for i in idx)
            x = np.zeros((len(idx), T, H), dtype=np.float32)
            mask = np.zeros((len(idx), T), dtype=bool)
            for r, i in enumerate(idx):
                n = len(examples[i][0].ids)
                x[r, :n] = cached[i]
                mask[r, :n] = True
            xs, ms = torch.from_numpy(x), torch.from_numpy(mask)
            s_log, e_log = model(xs, ms)
            s_log = s_log.masked_fill(~ms, -1e4)
            e_log = e_log.masked_fill(~ms, -1e4)
            ys = torch.tensor([examples[i][1] for i in idx])
            ye = torch.tensor([examples[i][2] for i in idx])
            loss = (torch.nn.functional.cross_entropy(s_log, ys) + torch.nn.functional.cross_entropy(e_log, ye)) / 2
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            run_loss.append(float(loss.detach()))
            step += 1
            if step % 20 == 0 or step == total:
                log(f"step {step}/{total} loss {np.mean(run_loss[-20:]):.3f} ({time.time() - t0:.0f}s)")

    out = {"config": json.dumps({
        "first_tuned_layer": L0, "lora_rank": args.rank, "lora_alpha": args.alpha,
        "trained_on": f"{len(train_q)} KorQuAD dev questions outside jisik.splits held-out",
        "examples": len(examples), "positives": n_pos, "epochs": args.epochs, "lr": args.lr,
        "batch": args.batch, "negatives_per_question": args.negatives, "seed": SEED})}
    for ly in range(L0, weights.layers):
        for m in MATRICES:
            out[f"l{ly}.{m}.lora_a"] = model.lora[f"l{ly}_{m}_a"].detach().numpy().astype(np.float16)
            out[f"l{ly}.{m}.lora_b"] = model.lora[f"l{ly}_{m}_b"].detach().numpy().astype(np.float16)
        for k in ("aln.w", "aln.b", "oln.w", "oln.b"):
            out[f"l{ly}.{k}"] = model.norms[f"l{ly}_{k.replace('.', '_')}"].detach().numpy()
    out["head.w"] = model.head.weight.detach().numpy()
    out["head.b"] = model.head.bias.detach().numpy()
    dest = Path(args.out) / MODEL_FILE
    np.savez_compressed(dest, **out)
    log(f"wrote {dest} ({dest.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
