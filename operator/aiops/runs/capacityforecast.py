"""capacityForecast runs: a target's usage history from its cluster's Prometheus -> per resource a forecast
with a prediction interval and when it reaches each limit (aiops.forecast), in status."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import AnalysisRunStatus, AnalysisType, ResourceForecast, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.core import metrics
from aiops.core.status import StatusBuilder, write
from aiops.forecast import resources
from aiops.forecast.query import forecast_objects
from aiops.runs.common import Context, fail_run, prometheus_of, start_attempt, still_ours

log = logging.getLogger(__name__)


def execute(ctx: Context, run: dict) -> None:
    """One attempt; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    found = prometheus_of(ctx, run)
    if found is None:
        return
    spec, prometheus = found
    inputs = spec.inputs.forecast
    target = inputs.target
    namespace = target.namespace or meta["namespace"]
    wanted = inputs.resources or resources.default_resources(target)
    run = start_attempt(ctx, run, f"forecasting {', '.join(wanted)} of {target.kind}/{namespace}/{target.name}")
    began = time.monotonic()
    try:
        entries: list[ResourceForecast] = []
        match = resources.selector(target, meta["namespace"])
        name = f"{target.kind}/{namespace}/{target.name}"
        for resource in wanted:
            q = resources.queries(resource, match)
            out = forecast_objects(
                prometheus,
                resource,
                q,
                lambda _: name,
                now=ctx.now(),
                history=timedelta(days=inputs.history_days),
                horizon=timedelta(hours=inputs.horizon_hours),
                level=inputs.level,
            )
            if isinstance(out, str):
                entries.append(ResourceForecast(resource=resource, object=name, unit=q.unit, error=out[:1024]))
            else:
                entries += [o.entry for o in out[:1]]  # the query sums the target's pods: one series
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("capacity forecast %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    record(ctx, run, entries, inputs.horizon_hours, round(time.monotonic() - began, 3))


def describe(e: ResourceForecast) -> str:
    if e.error:
        return f"{e.resource}: {e.error}"
    first = min((c for c in e.limits if c.exhausted_at), key=lambda c: c.exhausted_at, default=None)
    reach = f"reaches {first.kind} ({first.value:g}) at {first.exhausted_at:%Y-%m-%dT%H:%MZ}" if first else (
        "reaches no limit")  # fmt: skip
    return f"{e.resource}: {e.current:g} {e.unit} now, {reach}"


def record(ctx: Context, run: dict, entries: list[ResourceForecast], horizon_h: float, duration_s: float) -> None:
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.completed_at = b.now
    b.status.duration_seconds = duration_s
    forecast = [e for e in entries if not e.error]
    summary = "; ".join(describe(e) for e in entries)
    b.status.result = {"summary": summary[:8192], "forecasts": [e.wire() for e in entries]}
    seconds = metrics.ANALYSIS_SECONDS.labels(
        AnalysisType.CAPACITY_FORECAST.value, "completed" if forecast else "failed"
    )
    if not forecast:
        b.status.error = summary[:4096]
        b.phase(RunPhase.FAILED, f"no forecast: {summary}"[:1024], event="Warning")
        write(ctx.client, b, run)
        seconds.observe(duration_s)
        return
    exhausted = [e for e in forecast if e.exhausted_at is not None]
    if exhausted:
        message = "; ".join(describe(e) for e in exhausted)[:1024]
        b.condition(ConditionType.EXHAUSTION_FORECAST, ConditionStatus.TRUE, Reason.EXHAUSTION_FORECAST, message,
                    event="Warning")  # fmt: skip
    else:
        message = f"no resource reaches a limit within {horizon_h:g}h"
        b.condition(ConditionType.EXHAUSTION_FORECAST, ConditionStatus.FALSE, Reason.NO_EXHAUSTION, message,
                    event="Normal")  # fmt: skip
    b.phase(RunPhase.SUCCEEDED, f"{len(forecast)}/{len(entries)} resources forecast in {duration_s:.1f}s",
            event="Normal")  # fmt: skip
    write(ctx.client, b, run)
    seconds.observe(duration_s)
