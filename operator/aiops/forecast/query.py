"""Forecast objects from a Prometheus: the usage history as a range query, the limits as instant queries, and
for each object its forecast and limit crossings (what an AnalysisRun's status and the periodic forecast say).

    results = forecast_objects(source, queries(ForecastResource.MEMORY, match, by="namespace"), ...)

A query that fails, or returns no series, is said in the result's error; an object with too little history
says "too short: N points, need M". Nothing here raises for what Prometheus answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.exceptions import RequestException

from aiops.api.analysisrun import ForecastResource, ForecastValue, LimitCrossing, LimitKind, ResourceForecast
from aiops.clusters.prometheus import PrometheusSource
from aiops.forecast.exhaustion import exhaustion
from aiops.forecast.model import Forecast, TooShort, forecast
from aiops.forecast.resources import Queries

HISTORY_POINTS = 4000  # the range query's step is chosen for about this many (Prometheus allows 11000)
MIN_STEP_S = 60


@dataclass
class ObjectForecast:
    """One object's forecast of one resource: the status entry and the labels that name the object."""

    labels: dict[str, str]
    entry: ResourceForecast


def step_s(history: timedelta) -> int:
    return max(MIN_STEP_S, int(history.total_seconds() // HISTORY_POINTS))


def _at(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now + timedelta(seconds=seconds)


def forecast_objects(
    source: PrometheusSource,
    resource: ForecastResource,
    q: Queries,
    name_of: Callable[[dict[str, str]], str],
    *,
    now: datetime,
    history: timedelta,
    horizon: timedelta,
    level: float,
) -> list[ObjectForecast] | str:
    """Each series of the usage query forecast, with the limits whose labels match it; a string says why the
    usage could not be read. `name_of(labels)` names an object for status ("Namespace/shop")."""
    prom = source.connect()
    step = step_s(history)
    try:
        usage = prom.custom_query_range(q.usage, now - history, now, f"{step}s")
    except (PrometheusApiClientException, RequestException, ValueError) as exc:
        return f"{q.usage}: {type(exc).__name__}: {str(exc)[:400]}"
    if not usage:
        return f"no data: {q.usage} returned no series over the last {history.total_seconds() / 86400:g} days"
    limits: dict[LimitKind, list[tuple[dict, float]]] = {}
    for kind, expr in q.limits.items():
        try:
            limits[kind] = [(r.get("metric") or {}, float(r["value"][1])) for r in prom.custom_query(expr)]
        except (PrometheusApiClientException, RequestException, ValueError):
            continue  # a limit that cannot be read is one fewer to compare against, not a failed forecast
    out = []
    for series in usage:
        labels = series.get("metric") or {}
        points = [(float(t), float(v)) for t, v in series.get("values") or [] if v not in ("NaN", "+Inf", "-Inf")]
        entry = ResourceForecast(resource=resource, object=name_of(labels)[:320], unit=q.unit, points=len(points))
        result = out_of(points, entry, horizon, level)
        if result is not None:
            last = datetime.fromtimestamp(result.last, UTC)
            crossings = []
            for kind, rows in limits.items():
                value = next((v for m, v in rows if all(labels.get(k) == m.get(k) for k in labels)), None)
                if value is None or value <= 0:
                    continue
                e = exhaustion(result, value)
                crossings.append(
                    LimitCrossing(kind=kind, value=value, exhausted_at=_at(last, e.expected_s),
                                  earliest_at=_at(last, e.earliest_s))
                )  # fmt: skip
            entry.limits = crossings
            reached = [c.exhausted_at for c in entry.limits if c.exhausted_at is not None]
            entry.exhausted_at = min(reached) if reached else None
        out.append(ObjectForecast(labels, entry))
    return out


def out_of(
    points: list[tuple[float, float]], entry: ResourceForecast, horizon: timedelta, level: float
) -> Forecast | None:
    """Fill entry from the forecast of `points`; the Forecast, or None (entry.error says why)."""
    if not points:
        entry.error = "no samples"
        return None
    times, values = zip(*points, strict=True)
    result = forecast(times, values, horizon.total_seconds(), level=level)
    if isinstance(result, TooShort):
        entry.error = result.message
        return None
    mean, lower, upper = result.at(horizon.total_seconds())
    entry.method = result.method
    entry.points = result.points
    entry.current = round(result.current, 6)
    entry.at_horizon = ForecastValue(mean=round(mean, 6), lower=round(lower, 6), upper=round(upper, 6))
    return result
