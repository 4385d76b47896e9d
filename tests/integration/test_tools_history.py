"""history_search against a real PostgreSQL history: past incidents by their words, kept to the session's
namespaces, and a database without the schema said so."""

from __future__ import annotations

from aiops.core.events import Event, EventType
from aiops.stores.history import HistorySink
from aiops.tools import REGISTRY, Status, ToolContext


def test_history_search_finds_past_incidents_of_the_sessions_namespaces(dsn):
    sink = HistorySink(dsn, attempts=3, backoff_s=0.1, retention_interval_s=0, timeout_s=3).start()
    try:
        for key, uid, title, cause in (
            ("shop/checkout", "u-1", "checkout pods OOMKilled", "memory limit 256Mi too low"),
            ("bank/ledger", "u-2", "ledger pods OOMKilled", "a leak in the ledger cache"),
        ):
            sink.handle(Event(type=EventType.INCIDENT_CREATED, key=key, uid=uid, generation=1, data={"title": title}))
            diagnosis = {"rootCause": cause, "confidence": 80, "executionStatus": "COMPLETED", "suspects": []}
            sink.handle(Event(type=EventType.DIAGNOSED, key=key, uid=uid, generation=1, data=diagnosis))
        assert sink.flush()
    finally:
        sink.close()

    everywhere = REGISTRY.call("history_search", {"text": "pods OOMKilled"}, ToolContext(api=None, history_dsn=dsn))
    assert everywhere.status == Status.OK and "shop/checkout" in everywhere.text and "bank/ledger" in everywhere.text
    shop = ToolContext(api=None, history_dsn=dsn, namespaces=frozenset({"shop"}))
    kept = REGISTRY.call("history_search", {"text": "pods OOMKilled"}, shop)
    assert "memory limit 256Mi too low" in kept.text and "bank/ledger" not in kept.text


def test_a_database_without_the_schema_says_how_to_add_it(postgres):
    bare = postgres.database()
    result = REGISTRY.call("history_search", {"text": "anything"}, ToolContext(api=None, history_dsn=bare))
    assert result.status == Status.ERROR and "aiops history migrate" in result.text
