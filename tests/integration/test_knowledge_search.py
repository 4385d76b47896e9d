"""The knowledge index's surfaces on a real PostgreSQL: the query runs' and MCP's `search_knowledge` tool (kept to
the session's namespaces, errors said) and `aiops search TEXT`."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from aiops.knowledge.embed import LocalEmbedder
from aiops.knowledge.index import Document, upsert
from aiops.tools import REGISTRY, Status, ToolContext
from harness import aiops_cli
from support.history import record_incidents


@pytest.fixture
def indexed(dsn):
    record_incidents(
        dsn,
        [
            ("shop/checkout", "u-1", "checkout pods restarting under load", "memory limit 256Mi too low"),
            ("bank/ledger", "u-2", "ledger pods restarting", "a leak in the ledger cache"),
        ],
    )

    async def add_sop():
        conn = await asyncpg.connect(dsn)
        try:
            step = Document(
                "sop-step",
                "shop/oom-killed#check-limits",
                "OOMKilled containers: check limits",
                "Compare the container's memory limit with its working set.",
                {"sop": "shop/oom-killed"},
            )
            await upsert(conn, step, LocalEmbedder())
        finally:
            await conn.close()

    asyncio.run(add_sop())
    return dsn


def test_search_knowledge_finds_incidents_and_sop_steps_by_meaning(indexed):
    result = REGISTRY.call(
        "search_knowledge", {"text": "containers killed for exceeding RAM"}, ToolContext(api=None, history_dsn=indexed)
    )
    assert result.status == Status.OK, result.text
    assert "shop/oom-killed#check-limits" in result.text and "shop/checkout" in result.text
    shop = ToolContext(api=None, history_dsn=indexed, namespaces=frozenset({"shop"}))
    kept = REGISTRY.call("search_knowledge", {"text": "pods restarting", "kinds": ["incident"]}, shop)
    assert "shop/checkout" in kept.text and "bank/ledger" not in kept.text and "sop-step" not in kept.text
    bad = REGISTRY.call(
        "search_knowledge", {"text": "x", "kinds": ["runbook"]}, ToolContext(api=None, history_dsn=indexed)
    )
    assert bad.status == Status.ERROR and "kinds" in bad.text


def test_search_knowledge_without_history_says_why():
    result = REGISTRY.call("search_knowledge", {"text": "anything"}, ToolContext(api=None, history_dsn=None))
    assert result.status == Status.ERROR and "AIOPS_POSTGRES_DSN" in result.text


def test_aiops_search_prints_hits_with_scores(indexed):
    out = aiops_cli("search", "container", "ran", "out", "of", "memory", dsn=indexed)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0].split()
    assert float(first[0]) > 0 and first[1] in ("sop-step", "incident")
    assert "shop/oom-killed#check-limits" in out.stdout and "vector #" in out.stdout
    only = aiops_cli("search", "--kind", "sop-step", "--mode", "fulltext", "working set", dsn=indexed)
    assert only.returncode == 0 and "fulltext #1 vector #-" in only.stdout and "incident" not in only.stdout
    none = aiops_cli("search", "anything")
    assert none.returncode == 2 and "AIOPS_POSTGRES_DSN" in none.stderr
