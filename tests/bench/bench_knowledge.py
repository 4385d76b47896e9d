"""Benchmark: the knowledge index's embedding speed and the indexing of the whole SOP library.

    python tests/bench/bench_knowledge.py [--chunks 400]

Prints the local embedder's (all-MiniLM-L6-v2, numpy) chunks/s on --chunks SOP-step chunks of the library,
and the seconds to index every step of sop-library/*.md into a fresh PostgreSQL (tests/support/servers.py),
cold (all written) and warm (every content hash unchanged: nothing written). Targets: >= 200 chunks/s on
2 cores; the library indexed in <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import asyncpg  # noqa: E402

from aiops.knowledge import sops  # noqa: E402
from aiops.knowledge.embed import LocalEmbedder  # noqa: E402
from aiops.knowledge.index import upsert  # noqa: E402
from aiops.sops import sopfile  # noqa: E402
from aiops.stores.history import migrate  # noqa: E402
from support.servers import PostgresServer  # noqa: E402


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
        written = sum([await upsert(conn, d, embedder) for d in docs])
        return time.perf_counter() - start, written
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=400)
    args = parser.parse_args()
    start = time.perf_counter()
    embedder = LocalEmbedder()
    print(f"model loaded in {time.perf_counter() - start:.2f}s")
    docs = library()
    texts = [f"{d.title}\n{d.text}" for d in docs]
    texts = (texts * (args.chunks // len(texts) + 1))[: args.chunks]
    embedder.embed(texts[:8])  # warm-up
    start = time.perf_counter()
    embedder.embed(texts)
    elapsed = time.perf_counter() - start
    tokens = sum(len(e.ids) for e in embedder.tokenizer.encode_batch(texts)) / len(texts)
    print(f"embedding: {len(texts) / elapsed:.1f} chunks/s ({len(texts)} chunks, {tokens:.0f} tokens each on average)")
    server = PostgresServer().start()
    try:
        dsn = server.database()
        cold, written = asyncio.run(index(dsn, docs, embedder))
        warm, rewritten = asyncio.run(index(dsn, docs, embedder))
    finally:
        server.close()
    print(f"SOP library: {len(docs)} steps of {len(list((ROOT / 'sop-library').glob('*.md'))) - 1} runbooks")
    print(f"  indexed in {cold:.2f}s ({written} written); again unchanged in {warm:.2f}s ({rewritten} written)")


if __name__ == "__main__":
    main()
