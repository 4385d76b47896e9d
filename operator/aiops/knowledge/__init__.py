"""What the operator learnt, searchable: SOP steps, past incidents, postmortems, documents and feedback in one
index in the history database, ranked by full-text and embeddings together (docs/knowledge.md).

    index.upsert / delete / search     on an asyncpg Pool or Connection (async)
    embed.default_embedder(settings)   the configured embedder (local all-MiniLM-L6-v2, or /v1/embeddings)
    search_history(text, kinds, k)     search through the operator's history sink, from any thread
    index_document(doc)                upsert through the history sink, from any thread
    index_sop / forget_sop             an SOP's steps in the index, through the history sink (sops.sync, forget)
    similar_incidents(text, limit)     past incidents for the diagnosis prompt, by hybrid search
"""

from __future__ import annotations

import asyncio
import logging

from aiops import settings as settings_module
from aiops.knowledge import incidents, sops
from aiops.knowledge.embed import default_embedder
from aiops.knowledge.index import Document, Hit, search, upsert
from aiops.stores import history
from aiops.stores.history.store import PastIncident

log = logging.getLogger(__name__)

__all__ = ["Document", "Hit", "forget_sop", "index_document", "index_sop", "search_history", "similar_incidents"]


async def _embedder():
    # Loaded inside the call, off the sink's loop: with history off the model is never loaded.
    return await asyncio.to_thread(default_embedder, settings_module.current())


def search_history(text: str, kinds: set[str] | None = None, k: int = 5) -> list[Hit]:
    """Hybrid search of the index in the history database; raises history.HistoryOff when history is off."""

    async def run(conn):
        return await search(conn, text, kinds=kinds, k=k, embedder=await _embedder())

    return history.call(run)


def index_document(doc: Document) -> bool:
    """Upserts `doc` into the index in the history database (True when written); raises history.HistoryOff when
    history is off and DocumentError for a document that cannot be indexed."""

    async def run(conn):
        return await upsert(conn, doc, await _embedder())

    return history.call(run)


def index_sop(namespace: str, name: str, spec: dict) -> tuple[int, int, int]:
    """Indexes an SOP's steps, deleting those it no longer has: (steps, written, deleted). Raises
    history.HistoryOff when history is off and DocumentError for a step that cannot be indexed."""

    async def run(conn):
        return await sops.sync(conn, namespace, name, spec, await _embedder())

    return history.call(run)


def forget_sop(namespace: str, name: str) -> int:
    """Deletes an SOP's steps from the index (how many); raises history.HistoryOff when history is off."""
    return history.call(sops.forget, namespace, name)


def similar_incidents(text: str, limit: int, exclude_uid: str | None = None) -> list[PastIncident]:
    """Past incidents like `text`, by hybrid search; the history's full-text rank alone when the embedder fails.

    Empty when history is off: context for the model, never a reason to fail."""

    async def run(conn):
        return await incidents.similar(conn, text, limit, exclude_uid, await _embedder())

    try:
        return history.call(run)
    except history.HistoryOff:
        return []
    except Exception as exc:  # noqa: BLE001  (the full-text rank still answers)
        log.warning("knowledge: hybrid search of past incidents failed (%s: %s); full-text only",
                    type(exc).__name__, exc)  # fmt: skip
        return history.similar(text, limit, exclude_uid)
