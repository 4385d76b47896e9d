"""Operator events: typed payloads, published once, fanned out to sinks (the Redis stream, PostgreSQL history).

Publishing never blocks a handler and never fails it: events go into a bounded queue drained by one
thread; a sink that raises is logged and counted, and the others still get the event. Without any sink
(no Redis, no PostgreSQL configured) publishing is a no-op: the operator works on Kubernetes state alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import uuid
from enum import StrEnum
from typing import Any, Protocol

from pydantic import Field

from aiops.api.common import Model, UtcDatetime
from aiops.core.status import now_utc

log = logging.getLogger(__name__)
QUEUE_SIZE = 10_000


class EventType(StrEnum):
    INCIDENT_CREATED = "INCIDENT_CREATED"
    DIAGNOSED = "DIAGNOSED"
    ANOMALY_DETECTED = "ANOMALY_DETECTED"
    CLUSTER_STATUS_CHANGED = "CLUSTER_STATUS_CHANGED"
    GPU_UPDATE = "GPU_UPDATE"
    SOP_ACTION = "SOP_ACTION"  # an audited cluster change made by an SOP step
    FEEDBACK = "FEEDBACK"


class Event(Model):
    """One thing that happened. `key` identifies the object it is about (namespace/name, or the cluster's
    name); `uid` and `generation` make writes idempotent; `data` is the type's payload."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: EventType
    at: UtcDatetime = Field(default_factory=now_utc)
    key: str = Field(min_length=1, max_length=512)
    uid: str | None = None
    generation: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Sink(Protocol):
    name: str

    def handle(self, event: Event) -> None: ...


class Bus:
    def __init__(self, size: int = QUEUE_SIZE):
        self.sinks: list[Sink] = []
        self.queue: queue.Queue[Event | None] = queue.Queue(maxsize=size)
        self.dropped = 0  # queue full: the sinks are too slow or down
        self.failures: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def register(self, sink: Sink) -> None:
        self.sinks.append(sink)
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="aiops-events", daemon=True)
            self._thread.start()

    def publish(self, type_: EventType, key: str, data: dict[str, Any], obj: dict[str, Any] | None = None) -> None:
        if not self.sinks:
            return
        meta = (obj or {}).get("metadata") or {}
        event = Event(type=type_, key=key, uid=meta.get("uid"), generation=meta.get("generation"), data=data)
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            log.warning("event queue full (%d): dropped %s %s", self.queue.maxsize, type_, key)

    def flush(self, timeout: float = 10.0) -> None:
        """Waits until every queued event has been handed to the sinks (for shutdown and tests)."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        while self.queue.unfinished_tasks and not deadline.is_set():
            deadline.wait(0.05)
        timer.cancel()

    def _drain(self) -> None:
        while True:
            event = self.queue.get()
            try:
                if event is None:
                    return
                for sink in list(self.sinks):
                    try:
                        sink.handle(event)
                    except Exception as exc:  # noqa: BLE001  (a sink down must not stop the others)
                        self.failures[sink.name] = self.failures.get(sink.name, 0) + 1
                        log.warning("event sink %s failed on %s %s: %s", sink.name, event.type, event.key, exc)
            finally:
                self.queue.task_done()


BUS = Bus()


def publish(type_: EventType, key: str, data: dict[str, Any], obj: dict[str, Any] | None = None) -> None:
    BUS.publish(type_, key, data, obj)


def fingerprint(event: Event) -> str:
    """Equal for a replay of the same event (same object, type, generation and payload), else distinct.

    Events about objects without a generation (clusters, GPUs) are only ever the same by their id.
    """
    if event.generation is None:
        return f"{event.type}:{event.key}:id:{event.id}"
    payload = json.dumps(event.data, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"{event.type}:{event.key}:{event.uid or '-'}:{event.generation}:{digest}"
