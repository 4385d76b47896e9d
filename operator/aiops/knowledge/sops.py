"""An SOP (runbook) as documents of the index: one per step, keyed namespace/name#step-id, each carrying the
runbook's title, description and symptoms so that a step is found by the situation it is for.

`sync` brings the index in line with one SOP (the SOP controller calls it on every reconcile): steps whose
content hash is unchanged are not written, steps that left the runbook are deleted; `forget` drops them all.
"""

from __future__ import annotations

import asyncpg

from aiops.knowledge.embed import Embedder
from aiops.knowledge.index import Document, delete, keys, upsert_many


def documents(namespace: str, name: str, spec: dict) -> list[Document]:
    title = spec.get("title") or name
    match = spec.get("match") or {}
    context = "\n".join(
        part
        for part in (
            spec.get("description") or "",
            "Symptoms: " + ", ".join(match.get("symptoms") or []) if match.get("symptoms") else "",
            "Alerts: " + ", ".join(match.get("alertNames") or []) if match.get("alertNames") else "",
        )
        if part
    )
    docs = []
    for step in spec.get("steps") or []:
        body = "\n".join(
            str(step[f]) for f in ("title", "instructions", "command", "promql") if step.get(f)
        )  # fmt: skip
        docs.append(
            Document(
                kind="sop-step",
                key=f"{namespace}/{name}#{step.get('id')}",
                title=title,
                text=f"{body}\n{context}".strip(),
                meta={"sop": f"{namespace}/{name}", "step": step.get("id"), "type": step.get("type")},
            )
        )
    return docs


async def sync(
    db: asyncpg.Pool | asyncpg.Connection, namespace: str, name: str, spec: dict, embedder: Embedder
) -> tuple[int, int, int]:
    """Indexes the SOP's steps; (steps, written, deleted). Raises DocumentError for a step that cannot be indexed,
    before any is written (the indexed steps keep their previous version)."""
    docs = documents(namespace, name, spec)
    written = sum(await upsert_many(db, docs, embedder))
    gone = await keys(db, "sop-step", f"{namespace}/{name}#") - {d.key for d in docs}
    for key in gone:
        await delete(db, "sop-step", key)
    return len(docs), written, len(gone)


async def forget(db: asyncpg.Pool | asyncpg.Connection, namespace: str, name: str) -> int:
    """Deletes every indexed step of the SOP; how many there were."""
    gone = await keys(db, "sop-step", f"{namespace}/{name}#")
    for key in gone:
        await delete(db, "sop-step", key)
    return len(gone)
