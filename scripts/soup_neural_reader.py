#!/usr/bin/env python
"""Average several fine-tuned neural readers in weight space (a "model soup").

    python scripts/soup_neural_reader.py --models A/neural_reader.npz B/neural_reader.npz --out DIR

Readers fine-tuned from the same e5-small base stay close to it, so the mean of their weight
changes is itself a good reader (Wortsman et al., 2022, "Model soups") and smooths the seed
noise of any one fit, at no cost when answering: the soup is one model. Each matrix's change
is the mean of the readers' LoRA deltas (each scaled by its alpha/rank), cut back to `--rank`
by SVD so the shipped file stays a few MB; it is stored as LoRA factors with alpha = rank,
so `jisik.neural_reader.SpanModel` loads it unchanged. Layer norms and the head are
averaged; a reader that froze a layer contributes the base model's layer norm there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jisik.e5 import load_weights  # noqa: E402
from jisik.neural_reader import MATRICES, MODEL_FILE  # noqa: E402

NORMS = ("aln.w", "aln.b", "oln.w", "oln.b")


def low_rank(b: np.ndarray, a: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The best rank-`rank` factors of b @ a (by SVD, through QR of the thin factors), and
    the share of its energy (squared singular values) they keep."""
    qb, rb = np.linalg.qr(b)
    qa, ra = np.linalg.qr(a.T)
    u, sv, vt = np.linalg.svd(rb @ ra.T)
    r = min(rank, len(sv))
    root = np.sqrt(sv[:r])
    kept = float((sv[:r] ** 2).sum() / max((sv ** 2).sum(), 1e-30))
    return (qb @ u[:, :r]) * root, root[:, None] * (vt[:r] @ qa.T), kept


def soup(models: list[dict[str, np.ndarray]], configs: list[dict], base_norms: list[dict[str, np.ndarray]],
         rank: int) -> tuple[dict[str, np.ndarray], dict]:
    n = len(models)
    first = min(int(c["first_tuned_layer"]) for c in configs)
    out: dict[str, np.ndarray] = {}
    kept = []
    for ly in range(first, len(base_norms)):
        for m in MATRICES:
            a_parts, b_parts = [], []
            for z, c in zip(models, configs):
                if ly < int(c["first_tuned_layer"]):
                    continue
                scale = float(c["lora_alpha"]) / float(c["lora_rank"])
                a_parts.append(z[f"l{ly}.{m}.lora_a"].astype(np.float64))
                b_parts.append(z[f"l{ly}.{m}.lora_b"].astype(np.float64) * (scale / n))
            b, a, share = low_rank(np.concatenate(b_parts, axis=1), np.concatenate(a_parts, axis=0), rank)
            if b.shape[1] < rank:  # fewer parts than the rank: pad with a zero delta
                b = np.pad(b, ((0, 0), (0, rank - b.shape[1])))
                a = np.pad(a, ((0, rank - a.shape[0]), (0, 0)))
            out[f"l{ly}.{m}.lora_a"], out[f"l{ly}.{m}.lora_b"] = a, b
            kept.append(share)
        for k in NORMS:
            out[f"l{ly}.{k}"] = np.mean([z[f"l{ly}.{k}"] if ly >= int(c["first_tuned_layer"])
                                         else base_norms[ly][k] for z, c in zip(models, configs)], axis=0)
    out["head.w"] = np.mean([z["head.w"] for z in models], axis=0)
    out["head.b"] = np.mean([z["head.b"] for z in models], axis=0)
    # only what describes the soup itself; each member's training settings stay in soup_configs
    config = {"first_tuned_layer": first, "lora_rank": rank, "lora_alpha": float(rank),
              "objective": f"uniform soup of {n} fits (scripts/soup_neural_reader.py), "
                           f"deltas cut to rank {rank} by SVD keeping {min(kept):.3f}-{max(kept):.3f} of their energy",
              "soup_configs": configs}
    return out, config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="neural_reader.npz files to average")
    ap.add_argument("--out", required=True, help="folder for the soup's neural_reader.npz")
    ap.add_argument("--rank", type=int, default=32, help="rank of the stored deltas (32: ~3 MB)")
    args = ap.parse_args()
    if len(args.models) < 2:
        sys.exit("a soup needs at least two --models")
    models, configs = [], []
    for p in args.models:
        if not Path(p).is_file():
            sys.exit(f"{p} not found: pass neural_reader.npz files made by scripts/fit_neural_reader.py")
        z = np.load(p)
        models.append({k: z[k] for k in z.files if k != "config"})
        configs.append(json.loads(str(z["config"])))
    weights = load_weights()
    base_norms = [{k: d[k] for k in NORMS} for d in weights.layer]
    params, config = soup(models, configs, base_norms, args.rank)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(args.out) / MODEL_FILE, config=json.dumps(config, ensure_ascii=False),
                        **{k: v.astype(np.float16 if k.endswith(("lora_a", "lora_b")) else np.float32)
                           for k, v in params.items()})
    print(f"wrote {Path(args.out) / MODEL_FILE}: {len(models)} readers, rank {config['lora_rank']}, "
          f"layers {config['first_tuned_layer']}-{weights.layers - 1}; {config['objective']}")


if __name__ == "__main__":
    main()
