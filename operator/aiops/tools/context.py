"""What the tools reach: one cluster's API client and telemetry, the history database, and the namespaces
the caller may read.

Built once per session (a `query` run, an MCP server) from `clusters/access.py`, so the tools read a
ManagedCluster exactly as the diagnosis does. The Redactor lives here so that one session's placeholders
stay stable across its tool calls: `<IPV4_1>` is the same address in every result of the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field

from aiops.clusters.access import ClusterAccess
from aiops.clusters.loki import LokiSource
from aiops.clusters.prometheus import PrometheusSource
from aiops.clusters.telemetry import TraceSource
from aiops.diagnosis.redaction import Redactor
from aiops.stores.history import resolve_dsn

MAX_WINDOW_MINUTES = 7 * 24 * 60


class Args(BaseModel):
    """Base of every tool's arguments: unknown fields are an error naming them, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Window(Args):
    """A time window ending at `end` (default now)."""

    minutes: int = Field(default=30, ge=1, le=MAX_WINDOW_MINUTES, description="Length of the window in minutes.")
    end: datetime | None = Field(default=None, description="End of the window, RFC 3339 with a zone; default now.")

    def bounds(self) -> tuple[datetime, datetime]:
        end = self.end or datetime.now(UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        return end - timedelta(minutes=self.minutes), end


@dataclass
class ToolContext:
    api: client.ApiClient
    prometheus: PrometheusSource | None = None
    loki: LokiSource | None = None
    traces: TraceSource | None = None
    history_dsn: str | None = None
    history_off: str = "history is off: AIOPS_POSTGRES_DSN is not set"  # why, when history_dsn is None
    # The namespaces the caller may read (Kubernetes objects, Events, logs, LogQL, traces, Incidents, SOPs); None:
    # all. PromQL is not scoped: Prometheus has no namespaces to check a query against.
    namespaces: frozenset[str] | None = None
    redactor: Redactor = field(default_factory=Redactor)

    @classmethod
    def from_access(
        cls,
        access: ClusterAccess,
        dsn: str | None = None,
        dsn_file: str | None = None,
        namespaces: frozenset[str] | None = None,
    ) -> ToolContext:
        history_dsn, off = resolve_dsn(dsn, dsn_file)
        return cls(
            api=access.api,
            prometheus=access.prometheus,
            loki=access.logs if isinstance(access.logs, LokiSource) else None,
            traces=access.traces,
            history_dsn=history_dsn,
            history_off=off or "",
            namespaces=namespaces,
        )

    def refuse_namespace(self, namespace: str | None) -> str | None:
        """Why this namespace (None: all of them) may not be read here, or None when it may."""
        if self.namespaces is None:
            return None
        allowed = ", ".join(sorted(self.namespaces))
        if namespace is None:
            return f"name a namespace: this session may read only {allowed}"
        if namespace not in self.namespaces:
            return f"namespace {namespace!r} is outside this session's namespaces ({allowed})"
        return None
