"""Averaging fine-tuned readers in weight space: the soup's deltas are the readers' mean."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from soup_neural_reader import NORMS, low_rank, soup  # noqa: E402

from jisik.neural_reader import MATRICES  # noqa: E402

LAYERS, WIDTH = 3, 8


def fake_reader(rng: np.random.Generator, first: int, rank: int, alpha: float) -> tuple[dict, dict]:
    params = {}
    for ly in range(first, LAYERS):
        for m in MATRICES:
            params[f"l{ly}.{m}.lora_a"] = rng.normal(size=(rank, WIDTH))
            params[f"l{ly}.{m}.lora_b"] = rng.normal(size=(WIDTH, rank))
        for k in NORMS:
            params[f"l{ly}.{k}"] = rng.normal(size=WIDTH)
    params["head.w"] = rng.normal(size=(3, WIDTH))
    params["head.b"] = rng.normal(size=3)
    return params, {"first_tuned_layer": first, "lora_rank": rank, "lora_alpha": alpha}


def delta(params: dict, config: dict, ly: int, m: str) -> np.ndarray:
    if ly < config["first_tuned_layer"]:
        return np.zeros((WIDTH, WIDTH))
    scale = config["lora_alpha"] / config["lora_rank"]
    return scale * params[f"l{ly}.{m}.lora_b"] @ params[f"l{ly}.{m}.lora_a"]


def test_low_rank_is_exact_at_full_rank_and_best_below_it():
    rng = np.random.default_rng(0)
    b, a = rng.normal(size=(WIDTH, 3)), rng.normal(size=(3, WIDTH))
    b2, a2, kept = low_rank(b, a, 3)
    np.testing.assert_allclose(b2 @ a2, b @ a, atol=1e-10)
    assert abs(kept - 1.0) < 1e-12
    b1, a1, kept1 = low_rank(b, a, 1)
    sv = np.linalg.svd(b @ a, compute_uv=False)
    assert abs(kept1 - sv[0] ** 2 / (sv ** 2).sum()) < 1e-9
    assert abs(np.linalg.norm(b @ a - b1 @ a1) ** 2 - (sv[1:] ** 2).sum()) < 1e-8  # Eckart-Young


def test_soup_averages_deltas_norms_and_head_across_ranks_and_frozen_layers():
    rng = np.random.default_rng(1)
    # one reader tunes layers 1-2 at rank 2 (alpha 4), the other all layers at rank 1 (alpha 1)
    (p1, c1), (p2, c2) = fake_reader(rng, 1, 2, 4.0), fake_reader(rng, 0, 1, 1.0)
    base = [{k: rng.normal(size=WIDTH) for k in NORMS} for _ in range(LAYERS)]
    out, config = soup([p1, p2], [c1, c2], base, rank=3)
    assert config["first_tuned_layer"] == 0 and config["lora_rank"] == 3 and config["lora_alpha"] == 3.0
    for ly in range(LAYERS):
        for m in MATRICES:
            expected = (delta(p1, c1, ly, m) + delta(p2, c2, ly, m)) / 2
            np.testing.assert_allclose(delta(out, config, ly, m), expected, atol=1e-9)
        # layer 0 was frozen in the first reader: its base layer norm goes into the mean
        norm1 = base[0]["aln.w"] if ly == 0 else p1[f"l{ly}.aln.w"]
        np.testing.assert_allclose(out[f"l{ly}.aln.w"], (norm1 + p2[f"l{ly}.aln.w"]) / 2)
    np.testing.assert_allclose(out["head.w"], (p1["head.w"] + p2["head.w"]) / 2)
    # a soup of one reader with itself is that reader
    same, cfg = soup([p1, p1], [c1, c1], base, rank=2)
    np.testing.assert_allclose(delta(same, cfg, 2, "fi"), delta(p1, c1, 2, "fi"), atol=1e-9)
