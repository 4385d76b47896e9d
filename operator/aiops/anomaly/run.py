"""An anomalyDetection AnalysisRun's work: its PromQL queries over the window -> `detect` -> a result for status.

    outcome = run_queries(source, ["sum by (pod) (rate(...[5m]))", ...], start, end)
    outcome.result()  # {"summary", "anomalies", "seriesAnalysed", "queries", "gaps"}

Every query runs with query_range (a step from `clusters.prometheus.step_for`), each series named by its
metric labels. A query that fails is a gap, the others still run; when the server is unreachable the rest
would fail the same way and are recorded as gaps at once. `outcome.ran` is False when no query could run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.anomaly.detect import Anomaly, detect
from aiops.clusters.prometheus import PrometheusSource, step_for

DEFAULT_LOOKBACK = timedelta(hours=1)
MAX_ANOMALIES = 50  # in status, the most severe first (AnalysisResult.anomalies)
MAX_SERIES_PER_QUERY = 200  # more than this from one query is truncated, with a gap saying so
MAX_GAPS = 50
SKIPPED = "not run: Prometheus was unreachable"


@dataclass
class QueryResult:
    query: str
    series: int = 0
    error: str | None = None

    def wire(self) -> dict:
        return {"query": self.query[:4096], "series": self.series} | (
            {"error": self.error[:1024]} if self.error else {}
        )


@dataclass
class AnomalyOutcome:
    start: datetime
    end: datetime
    step: str
    queries: list[QueryResult] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    series: int = 0
    duration_s: float = 0.0
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # series name -> its metric labels

    @property
    def ran(self) -> bool:
        """At least one query ran (its series, possibly none, were analysed)."""
        return any(q.error is None for q in self.queries)

    def summary(self) -> str:
        ran = sum(q.error is None for q in self.queries)
        text = (
            f"{len(self.anomalies)} anomal{'y' if len(self.anomalies) == 1 else 'ies'} in {self.series} series"
            f" from {ran}/{len(self.queries)} queries"
            f" over {self.start:%Y-%m-%dT%H:%M:%SZ} .. {self.end:%Y-%m-%dT%H:%M:%SZ}"
        )
        if self.anomalies:
            text += f"; most severe: {self.anomalies[0].summary}"
        return text[:8192]

    def failure(self) -> str:
        """Why no query could run."""
        reasons = "; ".join(self.gaps[:3]) or "no queries"
        return f"no query could run: {reasons}"[:4096]

    def result(self) -> dict:
        return {
            "summary": self.summary(),
            "anomalies": [finding(a) for a in self.anomalies[:MAX_ANOMALIES]],
            "seriesAnalysed": self.series,
            "queries": [q.wire() for q in self.queries],
            "gaps": [g[:1024] for g in self.gaps[:MAX_GAPS]],
        }


def finding(a: Anomaly) -> dict:
    """An Anomaly as AnalysisResult.anomalies holds it (non-finite numbers left out)."""
    body = a.to_dict()
    body["series"] = body["series"][:1024]
    body["summary"] = body["summary"][:2048]
    for key in ("value", "expected"):
        value = getattr(a, key)
        if math.isfinite(value):
            body[key] = round(value, 6)
    return body


def series_name(metric: dict[str, str], query_index: int) -> str:
    """`name{label="v",...}` from a result's labels; a labelless result (e.g. sum(...)) is named by its query."""
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    name = metric.get("__name__", "")
    if not name and not inner:
        return f"query{query_index + 1}"
    return f"{name}{{{inner}}}"


def resolve_window(window, now: datetime) -> tuple[datetime, datetime]:
    """inputs.window: start/end (end defaults to now), or lookbackMinutes (default an hour) up to now."""
    if window is not None and window.start:
        return window.start, window.end or now
    lookback = timedelta(minutes=window.lookback_minutes) if window and window.lookback_minutes else DEFAULT_LOOKBACK
    return now - lookback, now


def run_queries(
    source: PrometheusSource,
    queries: list[str],
    start: datetime,
    end: datetime,
    *,
    threshold: float | None = None,
) -> AnomalyOutcome:
    began = time.monotonic()
    step = step_for((end - start).total_seconds())
    outcome = AnomalyOutcome(start=start, end=end, step=step)
    prom = source.connect()
    series: dict[str, tuple[list[float], list[float]]] = {}
    unreachable = False
    for i, query in enumerate(queries):
        q = QueryResult(query)
        outcome.queries.append(q)
        if unreachable:
            q.error = SKIPPED
            outcome.gaps.append(f"query {i + 1}: {SKIPPED}")
            continue
        try:
            result = prom.custom_query_range(query, start, end, step)
        except (PrometheusApiClientException, RequestException, ValueError) as exc:
            q.error = f"{type(exc).__name__}: {str(exc)[:600]}"
            outcome.gaps.append(f"query {i + 1} ({query[:200]}): {q.error}")
            unreachable = isinstance(exc, RequestException)
            continue
        if len(result) > MAX_SERIES_PER_QUERY:
            outcome.gaps.append(f"query {i + 1}: {len(result)} series, only the first {MAX_SERIES_PER_QUERY} analysed")
            result = result[:MAX_SERIES_PER_QUERY]
        for item in result:
            name = series_name(item.get("metric") or {}, i)
            if name in series:  # the same labels from another query
                name = f"{name} (query {i + 1})"
            times, values = [], []
            for ts, v in item.get("values") or []:
                if v not in ("NaN", "+Inf", "-Inf"):
                    times.append(float(ts))
                    values.append(float(v))
            series[name] = (times, values)
            outcome.labels[name] = dict(item.get("metric") or {})
        q.series = len(result)
    outcome.series = len(series)
    kwargs = {} if threshold is None else {"threshold": threshold}
    outcome.anomalies = detect(series, **kwargs) if series else []
    outcome.duration_s = round(time.monotonic() - began, 3)
    return outcome
