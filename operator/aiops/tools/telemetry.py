"""Telemetry reads: PromQL (instant and range), LogQL log queries, and a trace search.

Each reads the session cluster's own backends (clusters/access.py): the local cluster's from the
operator's settings, a ManagedCluster's from spec.endpoints. A backend the cluster does not have is an
error that says which setting would add it. Answers are summarised to what a reader reasons about:
series with their labels and values, log lines with their service, traces by service with errors and
the slowest requests.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime

from prometheus_api_client.exceptions import PrometheusApiClientException
from pydantic import Field
from requests.exceptions import RequestException

from aiops.clusters.prometheus import step_for
from aiops.clusters.telemetry import SourceError, Span
from aiops.clusters.words import short
from aiops.tools.context import Args, ToolContext, Window
from aiops.tools.registry import Tool
from aiops.tools.result import ToolError, ToolResult

MAX_SERIES = 50
NO_PROMETHEUS = (
    "this cluster has no Prometheus: set AIOPS_PROMETHEUS_URL, or spec.endpoints.prometheus of its ManagedCluster"
)
NO_LOKI = "this cluster has no Loki: set AIOPS_LOKI_URL, or spec.endpoints.loki of its ManagedCluster"
NO_TRACES = (
    "this cluster has no trace backend: set AIOPS_TEMPO_URL or AIOPS_JAEGER_URL, or its ManagedCluster's endpoints"
)


def _labels(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def _prom(ctx: ToolContext, what: str, fn):
    if ctx.prometheus is None:
        raise ToolError(NO_PROMETHEUS)
    try:
        return fn(ctx.prometheus.connect())
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        raise ToolError(f"Prometheus at {ctx.prometheus.url}: {what} failed: {short(exc)}") from None


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PromQLArgs(Args):
    query: str = Field(min_length=1, max_length=4096, description="A PromQL expression.")
    time: datetime | None = Field(default=None, description="Evaluation time, RFC 3339; default now.")


def promql(ctx: ToolContext, args: PromQLArgs) -> ToolResult:
    params = {"time": args.time.timestamp()} if args.time else None
    result = _prom(ctx, "the instant query", lambda prom: prom.custom_query(args.query, params=params))
    if not result:
        return ToolResult.empty("promql", f"no series for {args.query}")
    if isinstance(result, list) and result and isinstance(result[0], dict):
        lines = [f"{_labels(s.get('metric') or {})} {s.get('value', [None, '?'])[1]}" for s in result[:MAX_SERIES]]
    else:  # a scalar or string: [time, value]
        lines = [str(result)]
    note = (
        f"{len(result)} series, the first {MAX_SERIES} shown: aggregate the query" if len(result) > MAX_SERIES else None
    )
    return ToolResult.ok("promql", "\n".join(lines), note)


class PromQLRangeArgs(Window):
    query: str = Field(min_length=1, max_length=4096, description="A PromQL expression.")
    step_seconds: int | None = Field(default=None, ge=1, le=86400, description="Default: about 240 points.")


def promql_range(ctx: ToolContext, args: PromQLRangeArgs) -> ToolResult:
    start, end = args.bounds()
    step = f"{args.step_seconds}s" if args.step_seconds else step_for((end - start).total_seconds())
    result = _prom(ctx, "the range query", lambda prom: prom.custom_query_range(args.query, start, end, step))
    if not result:
        return ToolResult.empty("promql_range", f"no series for {args.query} between {start:%H:%M} and {end:%H:%M} UTC")
    blocks = []
    for series in result[:MAX_SERIES]:
        points = [(float(t), float(v)) for t, v in series.get("values") or []]
        if not points:
            continue
        values = [v for _, v in points]
        sampled = points[:: max(1, len(points) // 12)][-12:]
        blocks.append(
            f"{_labels(series.get('metric') or {})}: {len(points)} points, min {min(values):g} max {max(values):g} "
            f"mean {statistics.fmean(values):g} last {values[-1]:g} at {_time(points[-1][0])}\n  "
            + " ".join(f"{_time(t)[11:16]}={v:g}" for t, v in sampled)
        )
    note = (
        f"{len(result)} series, the first {MAX_SERIES} shown: aggregate the query" if len(result) > MAX_SERIES else None
    )
    return ToolResult.ok("promql_range", f"step {step}\n" + "\n".join(blocks), note)


class LogQLArgs(Window):
    query: str = Field(
        min_length=1,
        max_length=4096,
        description='A LogQL log query, e.g. {namespace="shop", app="checkout"} |= "error"',
    )
    limit: int = Field(default=200, ge=1, le=2000, description="The newest this many lines.")


def logql(ctx: ToolContext, args: LogQLArgs) -> ToolResult:
    if ctx.loki is None:
        raise ToolError(NO_LOKI)
    if ctx.namespaces is not None and not any(f'namespace="{ns}"' in args.query for ns in ctx.namespaces):
        raise ToolError(
            f"this session may read only namespaces {', '.join(sorted(ctx.namespaces))}: "
            'select one in the query, e.g. {namespace="NAME"}'
        )
    start, end = args.bounds()
    try:
        fetched = ctx.loki.query(args.query, start, end, args.limit)
    except SourceError as exc:
        raise ToolError(str(exc)) from None
    if not fetched.items:
        return ToolResult.empty(
            "logql", f"no log lines for {args.query} in the last {args.minutes} minutes of the window"
        )
    lines = [f"{_time(line.time)} {line.service or '-'} {line.pod or ''} {line.message}" for line in fetched.items]
    return ToolResult.ok("logql", "\n".join(lines), fetched.truncated)


class TracesArgs(Window):
    namespace: str = Field(max_length=63)
    service: str | None = Field(default=None, max_length=253, description="Only traces through this service.")
    errors_only: bool = False
    limit: int = Field(default=20, ge=1, le=100, description="Traces listed (slowest and failed first).")


def _summary(spans: list[Span]) -> list[str]:
    by_service: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_service[span.service].append(span)
    lines = ["service  spans  errors  p50 ms  p99 ms"]
    for service, own in sorted(by_service.items(), key=lambda kv: -len(kv[1])):
        durations = sorted(s.duration * 1000 for s in own)
        p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
        errors = sum(s.error for s in own)
        lines.append(f"{service}  {len(own)}  {errors}  {statistics.median(durations):.1f}  {p99:.1f}")
    return lines


def traces(ctx: ToolContext, args: TracesArgs) -> ToolResult:
    if ctx.traces is None:
        raise ToolError(NO_TRACES)
    if why := ctx.refuse_namespace(args.namespace):
        raise ToolError(why)
    start, end = args.bounds()
    try:
        fetched = ctx.traces.spans(args.namespace, start, end, limit=50_000)
    except SourceError as exc:
        raise ToolError(str(exc)) from None
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in fetched.items:
        by_trace[span.trace_id].append(span)
    if args.service:
        by_trace = {t: s for t, s in by_trace.items() if any(x.service == args.service for x in s)}
    if args.errors_only:
        by_trace = {t: s for t, s in by_trace.items() if any(x.error for x in s)}
    if not by_trace:
        return ToolResult.empty("traces", f"no matching traces in {args.namespace} in the window ({ctx.traces.name})")
    spans = [s for group in by_trace.values() for s in group]

    def root(group: list[Span]) -> Span:
        ids = {s.span_id for s in group}
        return min((s for s in group if s.parent_id not in ids), key=lambda s: s.start, default=group[0])

    ranked = sorted(by_trace.values(), key=lambda g: (not any(s.error for s in g), -root(g).duration))
    lines = [
        f"{len(by_trace)} traces, {len(spans)} spans in {args.namespace} ({ctx.traces.name})",
        *_summary(spans),
        "",
    ]
    lines.append("trace  root  duration ms  spans  failed spans in")
    for group in ranked[: args.limit]:
        r = root(group)
        failed = sorted({s.service for s in group if s.error})
        lines.append(
            f"{r.trace_id}  {r.service} {r.operation}  {r.duration * 1000:.1f}  {len(group)}  {','.join(failed) or '-'}"
        )
    return ToolResult.ok("traces", "\n".join(lines), fetched.truncated)


TOOLS = (
    Tool("promql", "A PromQL instant query: each series with its labels and value.", PromQLArgs, promql, 8_000),
    Tool(
        "promql_range",
        "A PromQL range query over a window: per series min, max, mean, last and a dozen sampled points.",
        PromQLRangeArgs,
        promql_range,
        12_000,
    ),
    Tool(
        "logql",
        "A LogQL log query against Loki over a window: the newest lines, oldest first, with service and pod.",
        LogQLArgs,
        logql,
        24_000,
    ),
    Tool(
        "traces",
        "Trace search of one namespace (Tempo or Jaeger): spans, errors and latency per service, then the failed "
        "and slowest traces with their root operation.",
        TracesArgs,
        traces,
        12_000,
    ),
)
