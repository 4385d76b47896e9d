"""What was learnt before: past Incidents in the PostgreSQL history, and the SOPs (runbooks) in the cluster.

The history search is the diagnosis prompt's own (`stores/history/store.py:similar`, full-text over title,
description, root cause and suspects). The SOP search is deliberately plain: the words of the question
that appear in a runbook's title, description, match rules or step titles, most shared words first.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg
from pydantic import Field

from aiops.api import SOP
from aiops.core import kube
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


def history_search(ctx: ToolContext, args: HistoryArgs) -> ToolResult:
    dsn = ctx.history_dsn
    if dsn is None:
        raise ToolError(f"{ctx.history_off}: past incidents are not available on this server")

    async def similar() -> list[store.PastIncident]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if await migrate.current_version(conn) is None:
                raise ToolError(f"the history at {describe(dsn)} has no schema yet: run `aiops history migrate`")
            # A session kept to some namespaces sees their past incidents only: ask for more, keep theirs.
            wanted = args.limit if ctx.namespaces is None else args.limit * 5
            return await store.similar(conn, args.text, wanted)
        finally:
            await conn.close()

    try:
        found = asyncio.run(similar())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ToolError(f"history at {describe(dsn)}: {type(exc).__name__}: {exc}") from None
    if ctx.namespaces is not None:
        found = [p for p in found if p.key.split("/", 1)[0] in ctx.namespaces][: args.limit]
    if not found:
        return ToolResult.empty("history_search", "no past incident shares words with the text")
    return ToolResult.ok("history_search", "\n".join(f"{p.rank:.3f} {p.summary()}" for p in found))


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
