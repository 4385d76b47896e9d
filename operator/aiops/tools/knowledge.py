"""What was learnt before: the knowledge index (search_knowledge: hybrid search, docs/knowledge.md), past Incidents
in the PostgreSQL history, and the SOPs (runbooks) in the cluster.

The history search is the full-text rank alone (`stores/history/store.py:similar`, over title, description,
root cause and suspects); the diagnosis prompt's similar incidents come from the knowledge index. The SOP
search is deliberately plain: the words of the question that appear in a runbook's title, description, match
rules or step titles, most shared words first.
"""

from __future__ import annotations

import asyncio
import re
from typing import Literal

import asyncpg
from pydantic import Field

from aiops.api import SOP
from aiops.core import kube
from aiops.knowledge import incidents
from aiops.knowledge.embed import EmbeddingError, default_embedder
from aiops.knowledge.index import Hit, search
from aiops.settings import current
from aiops.stores.history import migrate, store
from aiops.stores.history.sink import describe
from aiops.tools.context import Args, ToolContext
from aiops.tools.registry import Tool
from aiops.tools.result import ToolError, ToolResult

_WORD = re.compile(r"[a-z0-9][a-z0-9_-]{2,}")
_STOP = frozenset({"the", "and", "for", "with", "not", "are", "was", "why", "what", "how", "when", "does", "from"})


class HistoryArgs(Args):
    text: str = Field(min_length=1, max_length=2000, description="Symptoms, an alert, a root cause: what to match.")
    limit: int = Field(default=5, ge=1, le=20)


def _on_history(ctx: ToolContext, tool: str, fn):
    """`await fn(conn)` on the history database; ToolError when there is none, no schema, or it fails."""
    dsn = ctx.history_dsn
    if dsn is None:
        raise ToolError(f"{ctx.history_off}: past incidents are not available on this server")

    async def run():
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if await migrate.current_version(conn) is None:
                raise ToolError(f"the history at {describe(dsn)} has no schema yet: run `aiops history migrate`")
            return await fn(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except (*migrate.ERRORS, EmbeddingError) as exc:
        raise ToolError(f"{tool}: history at {describe(dsn)}: {type(exc).__name__}: {exc}") from None


def history_search(ctx: ToolContext, args: HistoryArgs) -> ToolResult:
    # A session kept to some namespaces sees their past incidents only: ask for more, keep theirs.
    wanted = args.limit if ctx.namespaces is None else args.limit * 5
    found = _on_history(ctx, "history_search", lambda conn: store.similar(conn, args.text, wanted))
    if ctx.namespaces is not None:
        found = [p for p in found if p.key.split("/", 1)[0] in ctx.namespaces][: args.limit]
    if not found:
        return ToolResult.empty("history_search", "no past incident shares words with the text")
    return ToolResult.ok("history_search", "\n".join(f"{p.rank:.3f} {p.summary()}" for p in found))


class KnowledgeArgs(Args):
    text: str = Field(min_length=1, max_length=2000, description="Symptoms, an error, a question: what to look up.")
    kinds: list[Literal["sop-step", "incident", "postmortem", "doc", "feedback"]] | None = Field(
        default=None, max_length=5, description="Only these kinds; omit for all."
    )
    limit: int = Field(default=5, ge=1, le=20)


def _namespace(hit: Hit) -> str:
    # Keys start with the namespace (namespace/name...); an incident's key is its uid, its name is in meta.
    return str(hit.meta.get("key") or hit.key).split("/", 1)[0]


def search_knowledge(ctx: ToolContext, args: KnowledgeArgs) -> ToolResult:
    try:
        embedder = default_embedder(current())
    except EmbeddingError as exc:
        raise ToolError(f"search_knowledge: {exc}") from None
    kinds = set(args.kinds) if args.kinds else None
    wanted = args.limit if ctx.namespaces is None else args.limit * 5

    async def run(conn):
        if kinds is None or "incident" in kinds:
            await incidents.catch_up(conn, embedder)
        return await search(conn, args.text, kinds=kinds, k=wanted, embedder=embedder)

    hits = _on_history(ctx, "search_knowledge", run)
    if ctx.namespaces is not None:
        hits = [h for h in hits if _namespace(h) in ctx.namespaces][: args.limit]
    if not hits:
        return ToolResult.empty("search_knowledge", "nothing in the knowledge index matches the text")
    return ToolResult.ok(
        "search_knowledge",
        "\n".join(
            f"{h.score:.4f} {h.kind} {h.meta.get('key') or h.key}: {h.title}\n  {' '.join(h.excerpt.split())}"
            for h in hits
        ),
    )


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


class SOPSearchArgs(Args):
    text: str = Field(min_length=1, max_length=2000, description="Symptoms or an alert name to find runbooks for.")
    namespace: str | None = Field(default=None, max_length=63, description="Omit for all namespaces.")
    limit: int = Field(default=5, ge=1, le=20)


def sop_search(ctx: ToolContext, args: SOPSearchArgs) -> ToolResult:
    if why := ctx.refuse_namespace(args.namespace):
        raise ToolError(why)
    wanted = words(args.text)
    if not wanted:
        raise ToolError("text: give at least one word of three letters or more")
    ranked = []
    for sop in kube.ApiServer(ctx.api).list(SOP, args.namespace):
        spec = sop.get("spec") or {}
        match = spec.get("match") or {}
        steps = spec.get("steps") or []
        searched = " ".join(
            [
                spec.get("title") or "",
                spec.get("description") or "",
                *(match.get("symptoms") or []),
                *(match.get("alertNames") or []),
                *(s.get("title") or "" for s in steps),
            ]
        )
        shared = wanted & words(searched)
        if shared:
            ranked.append((len(shared), sop, sorted(shared)))
    if not ranked:
        return ToolResult.empty("sop_search", f"no SOP mentions any of: {', '.join(sorted(wanted))}")
    ranked.sort(key=lambda r: (-r[0], r[1]["metadata"]["name"]))
    lines = []
    for score, sop, shared in ranked[: args.limit]:
        meta, spec = sop["metadata"], sop.get("spec") or {}
        steps = ", ".join(f"{s.get('id')}({s.get('type')})" for s in spec.get("steps") or [])
        lines.append(
            f"{meta.get('namespace')}/{meta['name']}: {spec.get('title')} [shares {score}: {', '.join(shared)}]\n"
            f"  symptoms: {', '.join((spec.get('match') or {}).get('symptoms') or []) or '-'}\n  steps: {steps}"
        )
    return ToolResult.ok("sop_search", "\n".join(lines))


TOOLS = (
    Tool(
        "search_knowledge",
        "The knowledge index by meaning and words together: SOP steps, past Incidents with their diagnosis, "
        "feedback and actions, postmortems, documents. Best match first, with its score.",
        KnowledgeArgs,
        search_knowledge,
        8_000,
    ),
    Tool(
        "history_search",
        "Past Incidents like the text, from the PostgreSQL history: root cause, confidence, engineer feedback, "
        "actions taken.",
        HistoryArgs,
        history_search,
        8_000,
    ),
    Tool(
        "sop_search",
        "SOPs (runbooks) in the cluster whose title, description, symptoms, alert names or step titles share "
        "words with the text.",
        SOPSearchArgs,
        sop_search,
        8_000,
    ),
)
