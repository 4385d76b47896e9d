"""Past incidents written into a history database the way the operator writes them: through HistorySink."""

from __future__ import annotations

from datetime import datetime

from aiops.core.events import Event, EventType
from aiops.core.status import now_utc
from aiops.stores.history import HistorySink


def record_incidents(
    dsn: str,
    incidents: list[tuple[str, str, str, str]],
    target: dict | None = None,
    failure_mode: str | None = None,
    at: datetime | None = None,
) -> None:
    """(namespace/name, uid, title, root cause) each filed and diagnosed, about `target` (an Incident's
    spec.target), with one suspect of `failure_mode`, at `at` (default now); returns once all are written."""
    sink = HistorySink(dsn, attempts=3, backoff_s=0.1, retention_interval_s=0, timeout_s=3).start()
    when = at or now_utc()
    suspects = [{"target": "x", "failureMode": failure_mode, "score": 0.9}] if failure_mode else []
    try:
        for key, uid, title, cause in incidents:
            filed = {"title": title, "target": target}
            sink.handle(Event(type=EventType.INCIDENT_CREATED, key=key, uid=uid, generation=1, at=when, data=filed))
            diagnosis = {"rootCause": cause, "confidence": 80, "executionStatus": "COMPLETED", "suspects": suspects}
            sink.handle(Event(type=EventType.DIAGNOSED, key=key, uid=uid, generation=1, at=when, data=diagnosis))
        assert sink.flush()
    finally:
        sink.close()
