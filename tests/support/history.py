"""Past incidents written into a history database the way the operator writes them: through HistorySink."""

from __future__ import annotations

from aiops.core.events import Event, EventType
from aiops.stores.history import HistorySink


def record_incidents(dsn: str, incidents: list[tuple[str, str, str, str]]) -> None:
    """(namespace/name, uid, title, root cause) each filed and diagnosed; returns once all are written."""
    sink = HistorySink(dsn, attempts=3, backoff_s=0.1, retention_interval_s=0, timeout_s=3).start()
    try:
        for key, uid, title, cause in incidents:
            sink.handle(Event(type=EventType.INCIDENT_CREATED, key=key, uid=uid, generation=1, data={"title": title}))
            diagnosis = {"rootCause": cause, "confidence": 80, "executionStatus": "COMPLETED", "suspects": []}
            sink.handle(Event(type=EventType.DIAGNOSED, key=key, uid=uid, generation=1, data=diagnosis))
        assert sink.flush()
    finally:
        sink.close()
