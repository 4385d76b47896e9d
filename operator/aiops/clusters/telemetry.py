"""What a cluster's trace and log backends return, whatever the backend: spans and log lines.

The HTTP clients (clusters/tempo.py, clusters/jaeger.py, clusters/loki.py) and any other source
(the evaluation reads recorded data through the same interface) implement TraceSource / LogSource.
A source answers within its limits: when a query would return more, it returns a sample and says
so in `truncated`, which the collector turns into an evidence gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

MAX_SPANS = 200_000  # per diagnosis, baseline and incident window together
MAX_LOG_LINES = 100_000
MAX_BYTES = 64 * 2**20  # one response body


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str  # the workload that emitted it (service.name, or the pod's workload)
    operation: str
    start: float  # unix seconds
    duration: float  # seconds
    error: bool = False  # the span's status says it failed (OTLP STATUS_CODE_ERROR, Jaeger error=true)
    kind: str = ""  # server | client | internal | producer | consumer, when the backend says


@dataclass(frozen=True, slots=True)
class LogLine:
    time: float  # unix seconds
    service: str
    message: str
    trace_id: str | None = None
    span_id: str | None = None
    pod: str | None = None


T = TypeVar("T")


@dataclass
class Fetched(Generic[T]):
    """What a source returned, and why it is not everything there was (None: it is)."""

    items: list[T] = field(default_factory=list)
    truncated: str | None = None


class SourceError(Exception):
    """The backend could not be read (down, refused, answered something that is not its API); the message
    names the backend and the reason."""


class TraceSource(Protocol):
    name: str  # e.g. "tempo", for evidence gaps

    def spans(self, namespace: str, start: datetime, end: datetime, limit: int = MAX_SPANS) -> Fetched[Span]: ...


class LogSource(Protocol):
    name: str

    def lines(
        self, namespace: str, services: list[str] | None, start: datetime, end: datetime, limit: int = MAX_LOG_LINES
    ) -> Fetched[LogLine]: ...
