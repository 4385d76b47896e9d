"""Spans of one namespace from Jaeger's query API (the JSON API behind its UI).

Jaeger knows services, not namespaces: the source lists them (GET /api/services), reads each one's
traces in the window (GET /api/traces?service=&start=&end=&limit=, times in microseconds) a few at a
time, and keeps each span once (a trace shows up under every service it crosses). A span whose process
or own tags carry k8s.namespace.name is kept only when that is the namespace asked for; a span without
one is kept. Jaeger's own services (jaeger-*) are skipped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.clusters.httpsource import Backend, Deadline, HttpJson, hex_id
from aiops.clusters.telemetry import MAX_SPANS, Fetched, SourceError, Span

TRACES_PER_SERVICE = 500  # the `limit` of each service's trace search
MAX_SERVICES = 200
WORKERS = 4  # services read at once

NAMESPACE_TAG = "k8s.namespace.name"


@dataclass(frozen=True)
class JaegerSource(Backend):
    traces_per_service: int = TRACES_PER_SERVICE
    max_services: int = MAX_SERVICES
    workers: int = WORKERS
    name: str = "jaeger"

    def spans(self, namespace: str, start: datetime, end: datetime, limit: int = MAX_SPANS) -> Fetched[Span]:
        """The spans of the namespace in [start, end], at most `limit`; `truncated` says what was left."""
        deadline = Deadline(self.deadline)
        with self.http() as http:
            body = http.get("/api/services", {}, deadline)
            services = body.get("data") if isinstance(body, dict) else None
            if not isinstance(body, dict) or "data" not in body or not isinstance(services or [], list):
                raise http.fail("/api/services", "the answer is not a list of services (no 'data' list)")
            names = sorted({s for s in services or [] if isinstance(s, str) and not s.startswith("jaeger-")})
            skipped = names[self.max_services :]
            names = names[: self.max_services]
            params = {
                "start": int(start.timestamp() * 1e6),
                "end": int(end.timestamp() * 1e6),
                "limit": self.traces_per_service,
            }

            def fetch(service: str) -> Any:
                try:
                    return http.get("/api/traces", {"service": service, **params}, deadline)
                except SourceError as exc:
                    return exc

            with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="jaeger") as pool:
                results = list(zip(names, pool.map(fetch, names), strict=True))
            return self._collect(http, results, skipped, namespace, limit)

    def _collect(
        self, http: HttpJson, results: list[tuple[str, Any]], skipped: list[str], namespace: str, limit: int
    ) -> Fetched[Span]:
        out: Fetched[Span] = Fetched()
        seen: set[tuple[str, str]] = set()
        failures: list[SourceError] = []
        capped: list[str] = []
        full = False
        for service, body in results:
            if isinstance(body, SourceError):
                failures.append(body)
                continue
            traces = body.get("data") if isinstance(body, dict) else None
            if not isinstance(body, dict) or "data" not in body or not isinstance(traces or [], list):
                failures.append(http.fail("/api/traces", f"service {service}: the answer has no 'data' list"))
                continue
            traces = traces or []
            if len(traces) >= self.traces_per_service:
                capped.append(service)
            for trace in traces:
                for span in parse_trace(trace, namespace):
                    key = (span.trace_id, span.span_id)
                    if key in seen:
                        continue
                    if len(out.items) >= limit:
                        full = True
                        break
                    seen.add(key)
                    out.items.append(span)
                if full:
                    break
            if full:
                break
        if failures and not out.items:
            raise failures[0]
        notes = []
        if full:
            notes.append(f"jaeger: more spans than the limit of {limit}; read the first {len(out.items)}")
        if capped:
            shown = ", ".join(capped[:5]) + (" ..." if len(capped) > 5 else "")
            notes.append(
                f"jaeger: {len(capped)} services had at least {self.traces_per_service} traces in the window, "
                f"read that many of each ({shown})"
            )
        if skipped:
            notes.append(f"jaeger: {len(skipped)} services beyond the first {self.max_services} not read")
        if failures:
            notes.append(f"jaeger: {len(failures)} services could not be read ({failures[0]})")
        out.truncated = "; ".join(notes) or None
        return out


def _tags(raw: Any) -> dict[str, Any]:
    return (
        {t["key"]: t.get("value") for t in raw if isinstance(t, dict) and "key" in t} if isinstance(raw, list) else {}
    )


def _parent(span: dict[str, Any]) -> str | None:
    refs = [r for r in span.get("references") or [] if isinstance(r, dict)]
    for ref_type in ("CHILD_OF", "FOLLOWS_FROM"):
        for ref in refs:
            if ref.get("refType") == ref_type and ref.get("spanID"):
                return hex_id(ref["spanID"])
    return hex_id(span.get("parentSpanID"))


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def parse_trace(trace: Any, namespace: str | None = None) -> list[Span]:
    """The spans of one Jaeger JSON trace, without those whose tags name a namespace other than `namespace`."""
    if not isinstance(trace, dict):
        return []
    processes = trace.get("processes") if isinstance(trace.get("processes"), dict) else {}
    spans = []
    for raw in trace.get("spans") or []:
        if not isinstance(raw, dict):
            continue
        process = processes.get(raw.get("processID")) or {}
        process_tags = _tags(process.get("tags"))
        tags = _tags(raw.get("tags"))
        ns = tags.get(NAMESPACE_TAG) or process_tags.get(NAMESPACE_TAG)
        if namespace is not None and ns and ns != namespace:
            continue
        trace_id, span_id = hex_id(raw.get("traceID") or trace.get("traceID")), hex_id(raw.get("spanID"))
        try:
            start_us, duration_us = int(raw["startTime"]), int(raw.get("duration") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if trace_id is None or span_id is None:
            continue
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=span_id,
                parent_id=_parent(raw),
                service=str(process.get("serviceName") or ""),
                operation=str(raw.get("operationName") or ""),
                start=start_us / 1e6,
                duration=max(0, duration_us) / 1e6,
                error=_true(tags.get("error")) or str(tags.get("otel.status_code", "")).upper() == "ERROR",
                kind=str(tags.get("span.kind") or "").lower(),
            )
        )
    return spans
