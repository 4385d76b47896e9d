"""Benchmark: the knowledge index's embedding speed and the indexing of the whole SOP library.

    python tests/bench/bench_knowledge.py [--chunks 400] [--rounds 3]

Prints the local embedder's (all-MiniLM-L6-v2, numpy) chunks/s on short chunks (the library's steps cut to
40 word pieces) and on whole SOP-step chunks (about 240), for the forward pass as it is (`after`) and as it was
first written (`before`, the class Baseline: padded batches of 32 texts under a mask, a temporary for every
operation), in alternating rounds on the same texts, best round of each (by wall clock, and by this process's
CPU time times the cores: what the cores would do without other work), with the load average and the cosine
between the two passes' vectors; then the seconds to index every step of sop-library/*.md into a fresh
PostgreSQL (tests/support/servers.py), cold (all written) and warm (every content hash unchanged: nothing
written). Targets: >= 200 chunks/s on 2 cores; the library in <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import asyncpg  # noqa: E402
import numpy as np  # noqa: E402

from aiops.knowledge import sops  # noqa: E402
from aiops.knowledge.embed import LocalEmbedder  # noqa: E402
from aiops.knowledge.index import upsert_many  # noqa: E402
from aiops.sops import sopfile  # noqa: E402
from aiops.stores.history import migrate  # noqa: E402
from support.servers import PostgresServer  # noqa: E402

FLOP_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)  # the dense layers' multiply-adds, twice


def _erf(x: np.ndarray) -> np.ndarray:
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class Baseline(LocalEmbedder):
    """The first forward pass (before the speed work), kept to measure against: padded batches of 32 texts,
    a mask over the padding, a temporary for every operation, GELU over the whole batch at once."""

    def __init__(self):
        super().__init__()
        hidden = self.words.shape[1]
        unscale = np.ones(3 * hidden, np.float32)
        unscale[:hidden] = math.sqrt(hidden // self.heads)
        self.layers = [(w * unscale, b * unscale, *rest) for w, b, *rest in self.layers]

    def embed(self, texts):
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), self.words.shape[1]), np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            out[chunk] = self._forward([ids[i] for i in chunk])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def _forward(self, batch):
        n, length = len(batch), max(len(b) for b in batch)
        ids = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for row, b in enumerate(batch):
            ids[row, : len(b)] = b
            mask[row, : len(b)] = 1.0
        x = self.words[ids] + self.positions[:length] + self.token_type
        hidden = x.shape[-1]
        head = hidden // self.heads
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


def library() -> list:
    docs = []
    for path, runbook in sopfile.check_files([ROOT / "sop-library"])[0]:
        spec = sopfile.manifest(runbook, "ops")["spec"]
        docs += sops.documents("ops", path.stem, spec)
    return docs


async def index(dsn: str, docs: list, embedder) -> tuple[float, int]:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn)
        start = time.perf_counter()
        runbooks: dict[str, list] = {}
        for d in docs:  # one call per runbook, as the SOP controller indexes them
            runbooks.setdefault(d.meta["sop"], []).append(d)
        written = sum([sum(await upsert_many(conn, steps, embedder)) for steps in runbooks.values()])
        return time.perf_counter() - start, written
    finally:
        await conn.close()


def speed(embedders: dict, texts: list[str], rounds: int) -> dict[str, tuple[float, float, np.ndarray]]:
    """Per embedder: the best chunks/s over alternating rounds (load from elsewhere hits both alike), the best
    chunks per CPU second of this process times the cores (what the cores would do alone, spinning included),
    and the vectors."""
    best = {name: [0.0, 0.0] for name in embedders}
    vectors = {}
    for _ in range(rounds):
        for name, embedder in embedders.items():
            start, cpu = time.perf_counter(), time.process_time()
            vectors[name] = embedder.embed(texts)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            best[name][0] = max(best[name][0], len(texts) / wall)
            best[name][1] = max(best[name][1], len(texts) / cpu * (os.cpu_count() or 1))
    return {name: (*best[name], vectors[name]) for name in embedders}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    embedder = LocalEmbedder()
    print(f"model loaded in {time.perf_counter() - start:.2f}s; {os.cpu_count()} cores")
    baseline = Baseline()
    docs = library()
    steps = [f"{d.title}\n{d.text}" for d in docs]
    steps = (steps * (args.chunks // len(steps) + 1))[: args.chunks]
    # The same texts cut after 38 word pieces (40 with [CLS] and [SEP]).
    encoded = embedder.tokenizer.encode_batch(steps)
    short = [t[: e.offsets[min(len(e.offsets), 40) - 2][1]] for t, e in zip(steps, encoded, strict=True)]
    embedder.embed(steps[:8])  # warm-up
    baseline.embed(steps[:8])
    for label, texts in (("short chunks", short), ("SOP-step chunks", steps)):
        tokens = sum(len(e.ids) for e in embedder.tokenizer.encode_batch(texts)) / len(texts)
        print(f"{label}: {len(texts)} of {tokens:.0f} tokens on average; load average {os.getloadavg()[0]:.2f}")
        results = speed({"before": baseline, "after": embedder}, texts, args.rounds)
        for name, (rate, capacity, _) in results.items():
            flops = rate * tokens * FLOP_PER_TOKEN / 1e9
            print(f"  {name:6s} {rate:6.1f} chunks/s ({flops:5.1f} GFLOP/s in the dense layers); "
                  f"{capacity:6.1f} chunks/s on all cores by CPU time")  # fmt: skip
        cosine = np.sum(results["before"][2] * results["after"][2], axis=1)
        print(f"  after vs before: cosine min {cosine.min():.7f}; load average {os.getloadavg()[0]:.2f}")
    server = PostgresServer().start()
    try:
        dsn = server.database()
        cold, written = asyncio.run(index(dsn, docs, embedder))
        warm, rewritten = asyncio.run(index(dsn, docs, embedder))
    finally:
        server.close()
    print(f"SOP library: {len(docs)} steps of {len(list((ROOT / 'sop-library').glob('*.md'))) - 1} runbooks")
    print(f"  indexed in {cold:.2f}s ({written} written); again unchanged in {warm:.2f}s ({rewritten} written)")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
