"""`aiops search TEXT`: the knowledge index (SOP steps, past incidents, postmortems, documents, feedback) by
hybrid search, one hit a line with its fused score and its places in the full-text and vector rankings."""

from __future__ import annotations

import sys

import asyncpg

from aiops.cli import database
from aiops.knowledge import incidents
from aiops.knowledge.embed import EmbeddingError, default_embedder
from aiops.knowledge.index import Hit, search
from aiops.settings import from_env
from aiops.stores.history import migrate


def line(hit: Hit) -> str:
    places = f"fulltext #{hit.fulltext_rank or '-'} vector #{hit.vector_rank or '-'}"
    excerpt = " ".join(hit.excerpt.split())[:160]
    return f"{hit.score:.4f}  {hit.kind:<10} {hit.key}  ({places})\n        {hit.title}: {excerpt}"


def run(dsn: str, text: str, kinds: set[str] | None, k: int, mode: str) -> int:
    try:
        embedder = default_embedder(from_env())
    except EmbeddingError as exc:
        print(f"aiops search: {exc}", file=sys.stderr)
        return 1

    async def work(conn: asyncpg.Connection) -> int:
        if await migrate.current_version(conn) is None:
            print("aiops search: no history schema yet: run `aiops history migrate`", file=sys.stderr)
            return 1
        if kinds is None or "incident" in kinds:
            await incidents.catch_up(conn, embedder)
        hits = await search(conn, text, kinds=kinds, k=k, embedder=embedder, mode=mode)
        if not hits:
            print("no match", file=sys.stderr)
            return 1
        for hit in hits:
            print(line(hit))
        return 0

    return database.run("search", dsn, work, also=(EmbeddingError,))
