"""anomalyDetection runs: PromQL queries over a window -> detectors -> anomalies in status, and an optional
Incident (source anomaly) for what they found."""

from __future__ import annotations

import logging

from aiops.anomaly import incident
from aiops.anomaly import run as queries
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisRunStatus, AnalysisType, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.core import events, metrics
from aiops.core.events import EventType
from aiops.core.status import StatusBuilder, write
from aiops.runs.common import Context, fail_run, prometheus_of, start_attempt, still_ours

log = logging.getLogger(__name__)
INCIDENT_SUFFIX = "-anomaly"
RUN_LABEL = "aiops.dev/analysis-run"


def execute(ctx: Context, run: dict) -> None:
    """One attempt at an anomalyDetection run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    found = prometheus_of(ctx, run)
    if found is None:
        return
    spec, prometheus = found
    inputs = spec.inputs
    start, end = queries.resolve_window(inputs.window, ctx.now())
    run = start_attempt(ctx, run, f"{len(inputs.queries)} PromQL queries over {start:%H:%M}..{end:%H:%M}Z")
    try:
        outcome = queries.run_queries(prometheus, inputs.queries, start, end)
        opened = open_incident(ctx, run, spec, outcome) if outcome.ran and outcome.anomalies else None
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("anomaly detection %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    record(ctx, run, outcome, opened)


def open_incident(ctx: Context, run: dict, spec: AnalysisRunSpec, outcome: queries.AnomalyOutcome) -> tuple | None:
    """The run's Incident (source anomaly), if asked for: one per run, named <run>-anomaly, so a re-run finds
    the one it made. (incident, created) or None."""
    wanted = spec.inputs.incident
    if wanted is None:
        return None
    meta = run["metadata"]
    body = incident.manifest(
        meta["name"][: 253 - len(INCIDENT_SUFFIX)] + INCIDENT_SUFFIX,
        meta["namespace"],
        f"AnalysisRun {meta['name']} (anomalyDetection)",
        outcome.anomalies,
        outcome.series,
        severity=wanted.severity,
        cluster=spec.cluster_ref.name if spec.cluster_ref else None,
        target=wanted.target,
        start=outcome.start,
        end=outcome.end,
        labels={RUN_LABEL: meta["name"][:63]},
        owner={"apiVersion": run["apiVersion"], "kind": ANALYSIS_RUN.kind, "name": meta["name"], "uid": meta["uid"]},
    )
    return ctx.client.create(INCIDENT, body)


def record(ctx: Context, run: dict, outcome: queries.AnomalyOutcome, opened: tuple | None) -> None:
    if not still_ours(ctx, run):
        return
    meta = run["metadata"]
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    result = outcome.result()
    if opened is not None:
        obj, created = opened
        result["incidentRef"] = {"name": obj["metadata"]["name"]}
        if created:
            b.emit("Normal", Reason.INCIDENT_OPENED, f"Incident {obj['metadata']['name']} (source anomaly)")
    b.status.completed_at = b.now
    b.status.duration_seconds = outcome.duration_s
    b.status.result = {k: v for k, v in result.items() if v not in (None, {}, [])} | {"seriesAnalysed": outcome.series}
    b.status.error = outcome.failure() if not outcome.ran else None
    seconds = metrics.ANALYSIS_SECONDS.labels(
        AnalysisType.ANOMALY_DETECTION.value, "completed" if outcome.ran else "failed"
    )
    if not outcome.ran:
        b.phase(RunPhase.FAILED, outcome.failure()[:1024], event="Warning")
        write(ctx.client, b, run)
        seconds.observe(outcome.duration_s)
        return
    if outcome.anomalies:
        top = outcome.anomalies[0]
        message = f"{len(outcome.anomalies)} in {outcome.series} series; most severe: {top.summary}"[:1024]
        b.condition(
            ConditionType.ANOMALIES_FOUND, ConditionStatus.TRUE, Reason.ANOMALIES_FOUND, message, event="Normal"
        )
    else:
        message = f"none in {outcome.series} series"
        b.condition(ConditionType.ANOMALIES_FOUND, ConditionStatus.FALSE, Reason.NO_ANOMALIES, message, event="Normal")
    gaps = f", {len(outcome.gaps)} gap(s)" if outcome.gaps else ""
    b.phase(
        RunPhase.SUCCEEDED, f"{len(outcome.anomalies)} anomalies{gaps} in {outcome.duration_s:.1f}s", event="Normal"
    )
    write(ctx.client, b, run)
    seconds.observe(outcome.duration_s)
    if outcome.anomalies:
        data = {
            "count": len(outcome.anomalies),
            "anomalies": result["anomalies"][:5],
            "incident": (result.get("incidentRef") or {}).get("name"),
        }
        events.publish(EventType.ANOMALY_DETECTED, f"{meta['namespace']}/{meta['name']}", data, run)
