"""Past incidents in the knowledge index: each history incident (title, description, latest diagnosis, the
engineer's verdict and comment, the SOP actions taken) is one document of kind "incident", keyed by its uid.

The index catches up when it is read: incidents whose history row changed since they were indexed (their
version, carried in the document's meta) are re-indexed first, a bounded number per call, and those
the history's retention deleted are dropped. So the history sink stays the only writer of the history
tables, and no second consumer of the event bus is needed.
"""

from __future__ import annotations

import logging

import asyncpg

from aiops.knowledge.chunking import DocumentError
from aiops.knowledge.embed import Embedder
from aiops.knowledge.index import Document, delete, search, upsert
from aiops.stores.history.store import PAST_ROWS_SQL, PastIncident, pasts

log = logging.getLogger(__name__)

CATCH_UP = 50  # incidents (re)indexed per read at most: the first read after a busy day stays bounded

_STALE_SQL = (
    "SELECT p.uid FROM ("
    + PAST_ROWS_SQL
    + """) p
LEFT JOIN knowledge_documents d ON d.kind = 'incident' AND d.key = p.uid
WHERE NOT p.stub AND (d.key IS NULL OR d.meta->>'version' IS DISTINCT FROM p.version)
ORDER BY p.created_at DESC
LIMIT $1
"""
)

_GONE_SQL = """
SELECT d.key FROM knowledge_documents d
WHERE d.kind = 'incident' AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.uid = d.key)
"""


def document(past: PastIncident, description: str, version: str) -> Document:
    return Document(
        kind="incident",
        key=past.uid,
        title=past.title or past.key,
        text="\n".join(part for part in (description, past.summary()) if part),
        meta={"key": past.key, "version": version},
    )


async def catch_up(conn: asyncpg.Connection, embedder: Embedder, limit: int = CATCH_UP) -> int:
    """Indexes the incidents that changed since they were indexed; returns how many were written."""
    for row in await conn.fetch(_GONE_SQL):
        await delete(conn, "incident", row["key"])
    uids = [r["uid"] for r in await conn.fetch(_STALE_SQL, limit)]
    written = 0
    for past, description, version in await pasts(conn, uids):
        try:
            written += await upsert(conn, document(past, description, version), embedder)
        except DocumentError as exc:  # e.g. a description pasted with binary junk: the others still index
            log.warning("knowledge: incident %s not indexed: %s", past.key, exc)
    return written


async def similar(
    conn: asyncpg.Connection, text: str, limit: int, exclude_uid: str | None, embedder: Embedder
) -> list[PastIncident]:
    """Past incidents like `text` by hybrid search, best first, with their diagnosis, verdict and actions."""
    await catch_up(conn, embedder)
    hits = await search(conn, text, kinds={"incident"}, k=limit + 1, embedder=embedder)
    uids = [h.key for h in hits if h.key != exclude_uid][:limit]
    by_uid = {p.uid: p for p, _, _ in await pasts(conn, uids)}
    score = {h.key: h.score for h in hits}
    return [
        PastIncident(**{**by_uid[u].__dict__, "rank": score[u]})  # the fused score stands in for ts_rank
        for u in uids
        if u in by_uid
    ]
