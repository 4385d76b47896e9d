"""Spans of one namespace from Grafana Tempo's HTTP API.

A TraceQL search (GET /api/search, `{ resource.k8s.namespace.name = "<ns>" }`) finds the traces of the
window, paging backward in time until the window is exhausted or `max_traces` are found; each trace is
then read (GET /api/traces/<id>, OTLP JSON: `{"batches": [...]}`, `{"resourceSpans": [...]}` or v2's
`{"trace": {...}}`) by a small pool of threads. Spans whose resource names another namespace are left
out (a trace may cross namespaces); spans without a namespace are kept.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.clusters.httpsource import Backend, BodyTooLarge, Deadline, HttpJson, hex_id
from aiops.clusters.telemetry import MAX_BYTES, MAX_SPANS, Fetched, SourceError, Span

MAX_TRACES = 5000  # traces one query reads at most
PAGE_TRACES = 500  # traces per search request
WORKERS = 8  # trace reads at once

NAMESPACE_ATTR = "k8s.namespace.name"
# The workload when service.name is absent or the SDK's default.
WORKLOAD_ATTRS = ("k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.job.name", "k8s.pod.name")
OTLP_KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class TempoSource(Backend):
    max_traces: int = MAX_TRACES
    page: int = PAGE_TRACES
    workers: int = WORKERS
    name: str = "tempo"

    def spans(self, namespace: str, start: datetime, end: datetime, limit: int = MAX_SPANS) -> Fetched[Span]:
        """The spans of the namespace's traces in [start, end], at most `limit`; `truncated` says what was left."""
        deadline = Deadline(self.deadline)
        with self.http() as http:
            ids, more = self._search(http, namespace, start, end, deadline)
            return self._read(http, ids, more, namespace, limit, deadline)

    def _search(
        self, http: HttpJson, namespace: str, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[list[str], bool]:
        """Trace ids, newest pages first (at most max_traces); True when traces were left out."""
        literal = namespace.replace("\\", "\\\\").replace('"', '\\"')
        query = f'{{ resource.{NAMESPACE_ATTR} = "{literal}" }}'
        low, high = math.floor(start.timestamp()), math.ceil(end.timestamp())
        ids: list[str] = []
        seen: set[str] = set()
        more = False  # traces may have been passed over
        while high > low:
            body = http.get(
                "/api/search", {"q": query, "start": low, "end": high, "limit": self.page, "spss": 1}, deadline
            )
            # protobuf JSON leaves out an empty list: {"metrics": {...}} is "no traces".
            if not isinstance(body, dict) or (body and "traces" not in body and "metrics" not in body):
                raise http.fail("/api/search", "the answer is not a search result (no 'traces')")
            traces = body.get("traces") or []
            if not isinstance(traces, list):
                raise http.fail("/api/search", "the answer's 'traces' is not a list")
            oldest, new = None, 0
            for trace in traces:
                tid = hex_id(trace.get("traceID")) if isinstance(trace, dict) else None
                if tid is None:
                    raise http.fail("/api/search", f"a search result without a traceID: {str(trace)[:100]}")
                if tid not in seen:
                    seen.add(tid)
                    ids.append(tid)
                    new += 1
                try:
                    started = int(trace.get("startTimeUnixNano")) // 1_000_000_000
                except (TypeError, ValueError):
                    continue
                oldest = started if oldest is None else min(oldest, started)
            if len(traces) < self.page:
                return ids[: self.max_traces], more or len(ids) > self.max_traces  # the window is exhausted
            if len(ids) >= self.max_traces or oldest is None:
                return ids[: self.max_traces], True
            # A full page: look further back. `end` is in whole seconds: ending after the oldest trace's second
            # reads that second's other traces (the ones seen are skipped); when that finds nothing new (a
            # page's worth of traces in one second), end at that second and pass over the rest of it.
            if new and oldest + 1 < high:
                high = oldest + 1
            elif oldest < high:
                high, more = oldest, True
            else:
                return ids, True
        return ids[: self.max_traces], more

    def _read(
        self, http: HttpJson, ids: list[str], more: bool, namespace: str, limit: int, deadline: Deadline
    ) -> Fetched[Span]:
        out: Fetched[Span] = Fetched()
        read = too_large = 0
        failures: list[SourceError] = []
        full = timed_out = False

        def fetch(tid: str) -> list[Span] | SourceError:
            try:
                return parse_trace(http.get(f"/api/traces/{tid}", {}, deadline), namespace)
            except SourceError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="tempo") as pool:
            batch = max(1, self.workers) * 2
            for i in range(0, len(ids), batch):
                if deadline.remaining() <= 0:
                    timed_out = True
                    break
                for result in pool.map(fetch, ids[i : i + batch]):
                    if full:
                        continue
                    if isinstance(result, BodyTooLarge):
                        too_large += 1
                        continue
                    if isinstance(result, SourceError):
                        failures.append(result)
                        continue
                    read += 1
                    room = limit - len(out.items)
                    out.items.extend(result[:room])
                    if len(result) > room or len(out.items) >= limit:
                        full = True
                if full:
                    break
        if failures and not out.items and not too_large:
            raise failures[0]
        matched = f"at least {len(ids)}" if more else str(len(ids))
        notes = []
        if full:
            notes.append(f"tempo: {matched} traces matched, read the first {read} (the limit of {limit} spans)")
        elif more and len(ids) >= self.max_traces:
            notes.append(
                f"tempo: {matched} traces matched, read the first {read} (a query lists at most {self.max_traces})"
            )
        elif more:
            notes.append(
                f"tempo: {matched} traces matched, read {read}; some were passed over "
                f"(more than {self.page} traces started in one second)"
            )
        if timed_out:
            notes.append(f"tempo: the query's deadline of {self.deadline:g}s passed after {read} of {len(ids)} traces")
        if too_large:
            notes.append(f"tempo: {too_large} traces over {MAX_BYTES} bytes not read")
        if failures:
            notes.append(f"tempo: {len(failures)} traces could not be read ({failures[0]})")
        out.truncated = "; ".join(notes) or None
        return out


# --- OTLP JSON ------------------------------------------------------------------------------------


def _value(v: Any) -> str | None:
    """An OTLP AnyValue as text ({"stringValue": "x"}, {"intValue": "3"}, ...)."""
    if not isinstance(v, dict):
        return None if v is None else str(v)
    for key in ("stringValue", "intValue", "doubleValue"):
        if key in v:
            return str(v[key])
    if "boolValue" in v:
        return "true" if v["boolValue"] else "false"
    return None


def _attributes(raw: Any) -> dict[str, str]:
    out = {}
    for attr in raw if isinstance(raw, list) else []:
        if isinstance(attr, dict) and isinstance(attr.get("key"), str):
            value = _value(attr.get("value"))
            if value is not None:
                out[attr["key"]] = value
    return out


def _service(resource: dict[str, str]) -> str:
    name = resource.get("service.name") or ""
    if name and not name.startswith("unknown_service"):
        return name
    return next((resource[a] for a in WORKLOAD_ATTRS if resource.get(a)), name)


def _kind(raw: Any) -> str:
    if isinstance(raw, int):
        return OTLP_KINDS.get(raw, "")
    text = str(raw or "").upper().removeprefix("SPAN_KIND_")
    return "" if text == "UNSPECIFIED" else text.lower()


def _error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return code in (2, "2", "STATUS_CODE_ERROR", "ERROR")


def parse_trace(body: Any, namespace: str | None = None) -> list[Span]:
    """The spans of one OTLP JSON trace (Tempo's `batches`, OTLP's `resourceSpans`, v2's `trace`), without the
    spans whose resource names a namespace other than `namespace`. SourceError when it is not a trace."""
    if isinstance(body, dict) and isinstance(body.get("trace"), dict):
        body = body["trace"]
    if not isinstance(body, dict):
        raise SourceError("tempo: a trace that is not a JSON object")
    batches = body.get("batches", body.get("resourceSpans"))
    if batches is None and not body:
        return []
    if not isinstance(batches, list):
        raise SourceError("tempo: a trace without 'batches' or 'resourceSpans'")
    spans = []
    for batch in batches:
        if not isinstance(batch, dict):
            raise SourceError("tempo: a trace whose batches are not objects")
        resource = _attributes((batch.get("resource") or {}).get("attributes"))
        ns = resource.get(NAMESPACE_ATTR)
        if namespace is not None and ns and ns != namespace:
            continue
        service = _service(resource)
        scopes = batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []
        for scope in scopes if isinstance(scopes, list) else []:
            for raw in (scope.get("spans") if isinstance(scope, dict) else None) or []:
                span = _span(raw, service)
                if span is not None:
                    spans.append(span)
    return spans


def _span(raw: Any, service: str) -> Span | None:
    if not isinstance(raw, dict):
        return None
    trace_id, span_id = hex_id(raw.get("traceId")), hex_id(raw.get("spanId"))
    try:
        start_ns = int(raw.get("startTimeUnixNano"))
        end_ns = int(raw.get("endTimeUnixNano") or start_ns)
    except (TypeError, ValueError):
        return None
    if trace_id is None or span_id is None:
        return None
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=hex_id(raw.get("parentSpanId")),
        service=service,
        operation=str(raw.get("name") or ""),
        start=start_ns / 1e9,
        duration=max(0, end_ns - start_ns) / 1e9,
        error=_error(raw.get("status")),
        kind=_kind(raw.get("kind")),
    )
