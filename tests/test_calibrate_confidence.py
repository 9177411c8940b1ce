"""The confidence calibration: a Platt fit that recovers the map that made the labels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

pytest.importorskip("sklearn", reason="the calibration fit needs the train extra (scikit-learn)")

from calibrate_confidence import platt  # noqa: E402


def test_platt_recovers_slope_and_intercept():
    rng = np.random.default_rng(3)
    logits = rng.normal(1.5, 2.0, size=20000)
    chance = 1 / (1 + np.exp(-(0.6 * logits - 2.0)))
    right = rng.random(logits.size) < chance
    slope, intercept = platt(logits, right)
    assert slope == pytest.approx(0.6, abs=0.05)
    assert intercept == pytest.approx(-2.0, abs=0.1)


def test_platt_keeps_the_order_of_answers():
    """A map fitted on answers that are right more often at higher logits is increasing."""
    logits = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0] * 10)
    right = np.array([0, 0, 0, 1, 1, 1] * 10, dtype=bool)
    right[:3] = True  # not separable, so the fit stays finite
    slope, _ = platt(logits, right)
    assert slope > 0
