"""history_search against a real PostgreSQL history: past incidents by their words, kept to the session's
namespaces, and a database without the schema said so."""

from __future__ import annotations

from aiops.tools import REGISTRY, Status, ToolContext
from support.history import record_incidents


def test_history_search_finds_past_incidents_of_the_sessions_namespaces(dsn):
    record_incidents(
        dsn,
        [
            ("shop/checkout", "u-1", "checkout pods OOMKilled", "memory limit 256Mi too low"),
            ("bank/ledger", "u-2", "ledger pods OOMKilled", "a leak in the ledger cache"),
        ],
    )

    everywhere = REGISTRY.call("history_search", {"text": "pods OOMKilled"}, ToolContext(api=None, history_dsn=dsn))
    assert everywhere.status == Status.OK and "shop/checkout" in everywhere.text and "bank/ledger" in everywhere.text
    shop = ToolContext(api=None, history_dsn=dsn, namespaces=frozenset({"shop"}))
    kept = REGISTRY.call("history_search", {"text": "pods OOMKilled"}, shop)
    assert "memory limit 256Mi too low" in kept.text and "bank/ledger" not in kept.text


def test_a_database_without_the_schema_says_how_to_add_it(postgres):
    bare = postgres.database()
    result = REGISTRY.call("history_search", {"text": "anything"}, ToolContext(api=None, history_dsn=bare))
    assert result.status == Status.ERROR and "aiops history migrate" in result.text
