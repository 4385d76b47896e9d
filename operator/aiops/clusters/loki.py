"""Log lines of one namespace from Loki (GET /loki/api/v1/query_range, LogQL, times in nanoseconds).

The query selects `{namespace="<ns>"}`, narrowed to some services (`<service_label>=~"a|b"`) or pods
(`pod=~"..."`) when asked, and pages backward in time from the end of the window (the end is
exclusive: the next page ends one nanosecond after the oldest line read, and the lines already read at
that instant are skipped) until `limit` lines or the window are exhausted. Lines come back oldest first.
`query` pages any other LogQL log query the same way (the tool layer's `logql` tool).

A line's service is the first of `service_labels` its stream (or structured metadata) has; its trace
and span ids come from structured metadata (Loki 3, asked for with the categorize-labels encoding),
stream labels, the JSON line, or `trace_id=...` in a logfmt line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiops.clusters.httpsource import Backend, Deadline, HttpJson, hex_id
from aiops.clusters.telemetry import MAX_LOG_LINES, Fetched, LogLine

PAGE_LINES = 5000  # Loki's default max_entries_limit_per_query
SERVICE_LABELS = ("service_name", "app", "app_kubernetes_io_name", "container")
POD_LABELS = ("pod", "k8s_pod_name")
TRACE_KEYS = ("trace_id", "traceId", "traceID", "TraceID", "traceid")
SPAN_KEYS = ("span_id", "spanId", "spanID", "SpanID", "spanid")
QUERY_PATH = "/loki/api/v1/query_range"
_LOGFMT_TRACE = re.compile(r"\btrace_?id[=:]\s*\"?([0-9a-fA-F]{16,32})\b", re.IGNORECASE)
_LOGFMT_SPAN = re.compile(r"\bspan_?id[=:]\s*\"?([0-9a-fA-F]{16})\b", re.IGNORECASE)
_REGEX_META = re.compile(r"([.^$*+?()\[\]{}|\\])")


def _alternatives(values: list[str]) -> str:
    """`a|b` matching exactly these values, escaped for RE2 and then for a LogQL string literal."""
    pattern = "|".join(_REGEX_META.sub(r"\\\1", v) for v in values)
    return pattern.replace("\\", "\\\\").replace('"', '\\"')


def _literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class LokiSource(Backend):
    deadline: float = 60.0  # one lines() call, all pages together
    namespace_label: str = "namespace"
    service_label: str = "app"  # what `services` selects on
    service_labels: tuple[str, ...] = SERVICE_LABELS  # where a line's service is read from, in order
    page: int = PAGE_LINES
    name: str = "loki"

    def selector(self, namespace: str, services: list[str] | None = None, pods: list[str] | None = None) -> str:
        """The LogQL stream selector for the namespace, narrowed to services and/or pods when given."""
        matchers = [f'{self.namespace_label}="{_literal(namespace)}"']
        if services:
            matchers.append(f'{self.service_label}=~"{_alternatives(sorted(set(services)))}"')
        if pods:
            matchers.append(f'pod=~"{_alternatives(sorted(set(pods)))}"')
        return "{" + ", ".join(matchers) + "}"

    def lines(
        self,
        namespace: str,
        services: list[str] | None,
        start: datetime,
        end: datetime,
        limit: int = MAX_LOG_LINES,
        *,
        pods: list[str] | None = None,
    ) -> Fetched[LogLine]:
        """The namespace's lines in [start, end) (of these services / pods when given), the newest `limit`,
        oldest first; `truncated` says when older lines were left."""
        return self.query(self.selector(namespace, services, pods), start, end, limit)

    def query(self, query: str, start: datetime, end: datetime, limit: int = MAX_LOG_LINES) -> Fetched[LogLine]:
        """The lines of any LogQL log query (a stream selector and its filters) in [start, end), the newest
        `limit`, oldest first; `truncated` says when older lines were left. A metric query (`rate(...)`) is a
        SourceError: it answers series, not lines."""
        low, high = _ns(start), _ns(end)
        deadline = Deadline(self.deadline)
        out: Fetched[LogLine] = Fetched()
        boundary: set[tuple[int, str, str]] = set()  # lines read at the oldest instant so far
        # The categorize-labels encoding (Loki 3) returns structured metadata beside each line, not in its labels.
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
        with self.http(headers) as http:
            while high > low:
                room = limit - len(out.items)
                # With no room left, one more line says whether anything older was left out.
                want = min(self.page, max(room, 1) + len(boundary))
                params = {"query": query, "start": low, "end": high, "limit": want, "direction": "backward"}
                entries = _entries(http, http.get(QUERY_PATH, params, deadline))
                fresh = sorted((e for e in entries if e[:3] not in boundary), key=lambda e: e[0], reverse=True)
                for ts, _, line, labels, meta in fresh[: max(room, 0)]:
                    out.items.append(self._line(ts, line, labels, meta))
                if len(fresh) > room:
                    out.truncated = self._truncated(limit, out.items)
                    break
                if len(entries) < want:
                    break  # the window is exhausted
                if not fresh:
                    out.truncated = f"loki: more than {want} lines at one instant ({_iso(high - 1)}); older not read"
                    break
                oldest = fresh[-1][0]
                at_oldest = {e[:3] for e in entries if e[0] == oldest}
                boundary = at_oldest | boundary if oldest == high - 1 else at_oldest
                high = oldest + 1
        out.items.reverse()  # read newest first, page after page
        return out

    def _truncated(self, limit: int, items: list[LogLine]) -> str:
        oldest = min((i.time for i in items), default=None)
        since = f", from {_iso(int(oldest * 1e9))}" if oldest is not None else ""
        return f"loki: read the newest {len(items)} lines of the window (the limit of {limit}{since}); older not read"

    def _line(self, ts: int, line: str, labels: dict[str, str], meta: dict[str, str]) -> LogLine:
        both = {**labels, **meta}
        service = next((both[k] for k in (self.service_label, *self.service_labels) if both.get(k)), "")
        pod = next((both[k] for k in POD_LABELS if both.get(k)), None)
        trace_id = next((both[k] for k in TRACE_KEYS if both.get(k)), None)
        span_id = next((both[k] for k in SPAN_KEYS if both.get(k)), None)
        if trace_id is None:
            trace_id, span_id = _ids_in_line(line, span_id)
        return LogLine(
            time=ts / 1e9,
            service=service,
            message=line,
            trace_id=hex_id(trace_id),
            span_id=hex_id(span_id),
            pod=pod,
        )


def _ns(t: datetime) -> int:
    return round(t.timestamp() * 1e6) * 1000  # exact: a datetime has microseconds


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")


def _ids_in_line(line: str, span_id: str | None) -> tuple[str | None, str | None]:
    stripped = line.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            trace = next((doc[k] for k in TRACE_KEYS if isinstance(doc.get(k), str) and doc[k]), None)
            span = span_id or next((doc[k] for k in SPAN_KEYS if isinstance(doc.get(k), str) and doc[k]), None)
            return trace, span
    match = _LOGFMT_TRACE.search(line)
    if match is None:
        return None, span_id
    span = span_id or (m.group(1) if (m := _LOGFMT_SPAN.search(line)) else None)
    return match.group(1), span


def _entries(http: HttpJson, body: Any) -> list[tuple[int, str, str, dict[str, str], dict[str, str]]]:
    """(ns, stream key, line, stream labels, structured metadata and parsed labels) of a streams answer."""
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
        raise http.fail(QUERY_PATH, f"the answer is not a successful query result: {str(body)[:120]}")
    data = body["data"]
    if data.get("resultType") != "streams":
        raise http.fail(QUERY_PATH, f"expected resultType 'streams', got {data.get('resultType')!r}")
    result = data.get("result") or []
    if not isinstance(result, list):
        raise http.fail(QUERY_PATH, "the answer's 'result' is not a list")
    entries = []
    for stream in result:
        if not isinstance(stream, dict) or not isinstance(stream.get("values") or [], list):
            raise http.fail(QUERY_PATH, "a stream that is not {stream, values}")
        labels = stream.get("stream") if isinstance(stream.get("stream"), dict) else {}
        key = json.dumps(labels, sort_keys=True)
        for value in stream.get("values") or []:
            if not isinstance(value, list) or len(value) < 2 or not isinstance(value[1], str):
                raise http.fail(QUERY_PATH, f"a stream value that is not [time, line]: {str(value)[:80]}")
            try:
                ts = int(value[0])
            except (TypeError, ValueError):
                raise http.fail(QUERY_PATH, f"a stream value whose time is not nanoseconds: {value[0]!r}") from None
            meta: dict[str, str] = {}
            if len(value) > 2 and isinstance(value[2], dict):
                for part in ("structuredMetadata", "parsed"):
                    if isinstance(value[2].get(part), dict):
                        meta.update(value[2][part])
            entries.append((ts, key, value[1], labels, meta))
    return entries
