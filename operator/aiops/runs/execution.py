"""Executes an AnalysisRun: Running -> work -> Succeeded | Failed, recorded in status and Events.

rootCause: the pipeline, with the outcome recorded on the run and on its Incident (status, Events,
timeline). sopAnalysis: a runbook's text -> an SOP draft and findings (aiops.sops.analysis), on the run.

Runs in a worker thread (the reconciler's daemon hands it over), writes status through the
status subresource, and is safe to run again after an operator restart: a run found Running
is simply run again, with its attempt counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pydantic import ValidationError

from aiops.anomaly import run as anomaly_run
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisType, RunPhase
from aiops.api.common import TimeWindow
from aiops.api.incident import TIMELINE_LIMIT, Diagnosis, ExecutionStatus, IncidentPhase, IncidentSource, IncidentSpec
from aiops.clusters.access import ClusterAccessError, cluster_access
from aiops.core import events, kube, metrics
from aiops.core.events import EventType
from aiops.core.status import StatusBuilder, parse_time, rfc3339
from aiops.diagnosis import pipeline
from aiops.settings import Settings
from aiops.sops import analysis as sopanalysis

log = logging.getLogger(__name__)
DIAGNOSED = "Diagnosed"
MODEL_ANSWERED = "ModelAnswered"
EmitFor = Callable[[dict], Callable[[str, str, str], None]]  # object -> emit(type, reason, message)


def _write(kind, obj: dict, builder: StatusBuilder) -> None:
    changes = builder.apply({})
    if changes:
        meta = obj["metadata"]
        kube.patch_status(kind, meta["name"], meta.get("namespace"), changes)


def fail_run(run: dict, message: str, now: datetime, emit_for: EmitFor) -> None:
    b = StatusBuilder(run, now, emit_for(run))
    b.set(error=message[:4096], completedAt=rfc3339(now))
    b.phase(RunPhase.FAILED.value, message[:1024], event="Warning")
    _write(ANALYSIS_RUN, run, b)


def mark_running(run: dict, incident: dict, now: datetime, emit_for: EmitFor) -> None:
    b = StatusBuilder(run, now, emit_for(run))
    b.set(attempts=(run.get("status") or {}).get("attempts", 0) + 1, startedAt=rfc3339(now))
    b.phase(RunPhase.RUNNING.value, "collecting evidence and analysing")
    _write(ANALYSIS_RUN, run, b)
    ib = StatusBuilder(incident, now, emit_for(incident), timeline_limit=TIMELINE_LIMIT)
    message = f"AnalysisRun {run['metadata']['name']} started"
    if ib.new.get("phase") != IncidentPhase.ANALYZING.value:
        ib.emit("Normal", "AnalysisStarted", message)
    ib.phase(IncidentPhase.ANALYZING.value, message, event=None)
    _write(INCIDENT, incident, ib)


def record(run: dict, incident: dict, result: pipeline.PipelineResult, now: datetime, emit_for: EmitFor) -> None:
    """The Incident first, then the run: a crash in between re-runs the analysis, and the
    transition-based conditions keep the second pass from repeating Events or timeline entries."""
    d = result.diagnosis
    failed = d.execution_status == ExecutionStatus.FAILED
    # Read it again: while the analysis ran, its alert may have resolved it (the Alertmanager receiver).
    meta = incident["metadata"]
    incident = kube.get(INCIDENT, meta["name"], meta["namespace"]) or incident
    resolved = (incident.get("status") or {}).get("phase") == IncidentPhase.RESOLVED.value
    ib = StatusBuilder(incident, now, emit_for(incident), timeline_limit=TIMELINE_LIMIT)
    ib.set(diagnosis=d.wire(), diagnosedAt=rfc3339(now), redaction=result.redaction, evidenceGaps=result.evidence_gaps)
    if d.execution_status == ExecutionStatus.RECOVERED_FALLBACK:
        why = (result.llm_error or d.reasoning or "")[:900]
        ib.condition(MODEL_ANSWERED, "False", "AnalysisFallback", f"analyzers' diagnosis used: {why}", event="Warning")
    elif d.model != pipeline.ANALYZERS_ONLY:
        ib.condition(MODEL_ANSWERED, "True", "Completed", f"{d.model}, prompt {d.prompt_version}")
    if failed:
        ib.condition(DIAGNOSED, "False", "AnalysisFailed", d.root_cause[:1024], event="Warning")
        ib.phase(IncidentPhase.FAILED.value, d.root_cause[:1024], event=None)
    else:
        message = f"{d.root_cause[:900]} (confidence {d.confidence}%, {d.execution_status})"
        ib.condition(DIAGNOSED, "True", "RootCauseIdentified", message, event="Normal")
        if not resolved:  # a diagnosis that arrives after the alert resolved is kept; the phase stays Resolved
            ib.phase(IncidentPhase.DIAGNOSED.value, f"diagnosed by {d.model}", event=None)
    _write(INCIDENT, incident, ib)
    record_run(run, result, now, emit_for)
    observe(result)
    key = f"{meta['namespace']}/{meta['name']}"
    events.publish(EventType.DIAGNOSED, key, {"diagnosis": d.wire(), "title": incident["spec"].get("title")}, incident)


def observe(result: pipeline.PipelineResult) -> None:
    """The activity metrics of one root-cause analysis."""
    d = result.diagnosis
    outcome = "failed" if d.execution_status == ExecutionStatus.FAILED else "fallback" if (
        d.execution_status == ExecutionStatus.RECOVERED_FALLBACK) else "completed"  # fmt: skip
    metrics.ANALYSIS_SECONDS.labels(AnalysisType.ROOT_CAUSE.value, outcome).observe(result.duration_s)
    if d.execution_status == ExecutionStatus.RECOVERED_FALLBACK:
        metrics.FALLBACKS.inc()
    model = d.model if d.model != pipeline.ANALYZERS_ONLY else (result.endpoint or "none")
    if result.prompt_tokens or result.completion_tokens:
        metrics.LLM_TOKENS.labels(model, "prompt").inc(result.prompt_tokens)
        metrics.LLM_TOKENS.labels(model, "completion").inc(result.completion_tokens)
    if result.llm_status and result.llm_status != "completed":
        metrics.LLM_ERRORS.labels(model, result.llm_status).inc()
    for kind, count in (result.redaction or {}).items():
        metrics.REDACTIONS.labels(kind).inc(count)


def record_run(run: dict, result: pipeline.PipelineResult, now: datetime, emit_for: EmitFor) -> None:
    d = result.diagnosis
    failed = d.execution_status == ExecutionStatus.FAILED
    rb = StatusBuilder(run, now, emit_for(run))
    rb.set(
        completedAt=rfc3339(now),
        durationSeconds=result.duration_s,
        model=d.model,
        endpoint=result.endpoint,
        tokens={"prompt": result.prompt_tokens, "completion": result.completion_tokens},
        result={"summary": d.root_cause[:8192], "diagnosis": d.wire()},
        error=result.llm_error[:4096] if result.llm_error else None,
    )
    rb.phase(
        RunPhase.FAILED.value if failed else RunPhase.SUCCEEDED.value,
        f"{d.execution_status} in {result.duration_s:.1f}s",
        event="Warning" if failed else "Normal",
    )
    _write(ANALYSIS_RUN, run, rb)


def execute(run: dict, settings: Settings, now: Callable[[], datetime], emit_for: EmitFor) -> None:
    """One attempt at a run of a type with an executor (the daemon's filter names them)."""
    if run["spec"].get("type") == AnalysisType.SOP_ANALYSIS.value:
        execute_sop_analysis(run, settings, now, emit_for)
    elif run["spec"].get("type") == AnalysisType.ANOMALY_DETECTION.value:
        execute_anomaly_detection(run, settings, now, emit_for)
    else:
        execute_root_cause(run, settings, now, emit_for)


def execute_root_cause(run: dict, settings: Settings, now: Callable[[], datetime], emit_for: EmitFor) -> None:
    """One attempt at a rootCause run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    incident_name = run["spec"]["incidentRef"]["name"]
    incident = kube.get(INCIDENT, incident_name, meta["namespace"])
    if incident is None:
        fail_run(run, f"spec.incidentRef: Incident {incident_name!r} no longer exists", now(), emit_for)
        return
    try:
        spec = IncidentSpec.model_validate(incident.get("spec") or {})
    except ValidationError as exc:
        fail_run(run, f"Incident {incident_name} has an invalid spec: {exc.errors()[0]['msg']}", now(), emit_for)
        return
    istatus = incident.get("status") or {}
    if istatus.get("diagnosis") and (istatus.get("analysisRunRef") or {}).get("name") == meta["name"]:
        # The operator stopped between writing the Incident and the run: finish the run, don't redo it.
        diagnosis = Diagnosis.model_validate(istatus["diagnosis"])
        record_run(run, pipeline.PipelineResult(diagnosis=diagnosis), now(), emit_for)
        return
    mark_running(run, incident, now(), emit_for)
    # Re-read both: the writes above changed their resourceVersions and status.
    run = kube.get(ANALYSIS_RUN, meta["name"], meta["namespace"]) or run
    incident = kube.get(INCIDENT, incident_name, meta["namespace"]) or incident
    detected = (incident.get("status") or {}).get("detectedAt") or incident["metadata"]["creationTimestamp"]
    try:
        result = pipeline.diagnose_incident(incident, spec, settings, parse_time(detected), now())
    except pipeline.PipelineError as exc:
        result = pipeline.PipelineResult(
            diagnosis=pipeline.fallback_diagnosis([], [], str(exc), ExecutionStatus.FAILED)
        )
        result.diagnosis = result.diagnosis.model_copy(update={"root_cause": f"Cannot analyse: {exc}"})
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("analysis %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(run, f"internal error: {type(exc).__name__}: {exc}", now(), emit_for)
        return
    record(run, incident, result, now(), emit_for)


def execute_sop_analysis(run: dict, settings: Settings, now: Callable[[], datetime], emit_for: EmitFor) -> None:
    """One attempt at a sopAnalysis run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    try:
        spec = AnalysisRunSpec.model_validate(run.get("spec") or {})
        config = sopanalysis.gateway_config(settings.llm, spec.inference)
    except (ValidationError, ValueError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        fail_run(run, f"cannot analyse: {message}", now(), emit_for)
        return
    b = StatusBuilder(run, now(), emit_for(run))
    b.set(attempts=(run.get("status") or {}).get("attempts", 0) + 1, startedAt=rfc3339(now()))
    b.phase(RunPhase.RUNNING.value, "drafting an SOP from the runbook text")
    _write(ANALYSIS_RUN, run, b)
    run = kube.get(ANALYSIS_RUN, meta["name"], meta["namespace"]) or run
    try:
        analysis = sopanalysis.analyse(spec.inputs.text or "", config, meta["name"])
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("SOP analysis %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(run, f"internal error: {type(exc).__name__}: {exc}", now(), emit_for)
        return
    record_sop_analysis(run, analysis, now(), emit_for)


# ModelAnswered reasons on a sopAnalysis run, by outcome.
_SOP_MODEL_CONDITION = {
    "completed": ("True", "Completed"),
    "lint-only": ("False", "NoModelConfigured"),
    "no-model": ("False", "NoModelConfigured"),
    "invalid": ("False", "InvalidAnswer"),
    "unreachable": ("False", "ModelUnreachable"),
}


def record_sop_analysis(run: dict, a: sopanalysis.SOPAnalysis, now: datetime, emit_for: EmitFor) -> None:
    rb = StatusBuilder(run, now, emit_for(run))
    result: dict = {"summary": a.summary(), "redaction": a.redaction, "promptVersion": a.prompt_version}
    if a.spec is not None:
        result |= {"sopDraft": a.spec.wire(), "sopMarkdown": a.markdown, "findings": [f.wire() for f in a.findings]}
    rb.set(
        completedAt=rfc3339(now),
        durationSeconds=a.duration_s,
        model=a.model,
        endpoint=a.endpoint,
        tokens={"prompt": a.prompt_tokens, "completion": a.completion_tokens} if a.model else None,
        result={k: v for k, v in result.items() if v not in (None, {}, [])},
        error=a.error[:4096] if a.error else None,
    )
    status, reason = _SOP_MODEL_CONDITION[a.outcome]
    if a.outcome == "completed":
        message = f"{a.model}, prompt {a.prompt_version}, {a.requests} request(s)"
    elif a.outcome == "lint-only":
        message = f"{sopanalysis.NO_MODEL}: the runbook markdown was parsed and linted, the model's review is missing"
    else:
        message = (a.error or "")[:1024]
    rb.condition(MODEL_ANSWERED, status, reason, message, event="Normal" if status == "True" else "Warning")
    if a.succeeded:
        rb.phase(RunPhase.SUCCEEDED.value, f"{a.summary()[:900]} in {a.duration_s:.1f}s", event="Normal")
    else:
        rb.phase(RunPhase.FAILED.value, f"no SOP draft ({reason}) after {a.duration_s:.1f}s", event="Warning")
    _write(ANALYSIS_RUN, run, rb)


ANOMALIES_FOUND = "AnomaliesFound"
ANOMALY_INCIDENT_SUFFIX = "-anomaly"
ANOMALY_RUN_LABEL = "aiops.dev/analysis-run"


def execute_anomaly_detection(run: dict, settings: Settings, now: Callable[[], datetime], emit_for: EmitFor) -> None:
    """One attempt at an anomalyDetection run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    try:
        spec = AnalysisRunSpec.model_validate(run.get("spec") or {})
        access = cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, settings)
    except (ValidationError, ClusterAccessError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        fail_run(run, f"cannot analyse: {message}", now(), emit_for)
        return
    if access.prometheus is None:
        where = f"ManagedCluster {spec.cluster_ref.name}'s endpoints.prometheus" if spec.cluster_ref else (
            "AIOPS_PROMETHEUS_URL")  # fmt: skip
        fail_run(run, f"cannot analyse: no Prometheus endpoint is configured ({where})", now(), emit_for)
        return
    inputs = spec.inputs
    start, end = anomaly_run.resolve_window(inputs.window, now())
    b = StatusBuilder(run, now(), emit_for(run))
    b.set(attempts=(run.get("status") or {}).get("attempts", 0) + 1, startedAt=rfc3339(now()))
    b.phase(RunPhase.RUNNING.value, f"{len(inputs.queries)} PromQL queries over {start:%H:%M}..{end:%H:%M}Z")
    _write(ANALYSIS_RUN, run, b)
    run = kube.get(ANALYSIS_RUN, meta["name"], meta["namespace"]) or run
    try:
        outcome = anomaly_run.run_queries(access.prometheus, inputs.queries, start, end)
        incident = open_anomaly_incident(run, spec, outcome) if outcome.ran and outcome.anomalies else None
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("anomaly detection %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(run, f"internal error: {type(exc).__name__}: {exc}", now(), emit_for)
        return
    record_anomaly_detection(run, outcome, incident, now(), emit_for)


def open_anomaly_incident(run: dict, spec: AnalysisRunSpec, outcome: anomaly_run.AnomalyOutcome) -> tuple | None:
    """The run's Incident (source anomaly), if asked for: one per run, named <run>-anomaly, so a re-run finds
    the one it made. (incident, created) or None."""
    wanted = spec.inputs.incident
    if wanted is None:
        return None
    meta = run["metadata"]
    top = outcome.anomalies[0]
    more = len(outcome.anomalies) - 1
    lines = [f"- {a.summary}" for a in outcome.anomalies[:5]]
    description = (
        f"AnalysisRun {meta['name']} (anomalyDetection) found {len(outcome.anomalies)} anomalies"
        f" in {outcome.series} series:\n" + "\n".join(lines)
    )
    body = {
        "apiVersion": run["apiVersion"],
        "kind": INCIDENT.kind,
        "metadata": {
            "name": meta["name"][: 253 - len(ANOMALY_INCIDENT_SUFFIX)] + ANOMALY_INCIDENT_SUFFIX,
            "namespace": meta["namespace"],
            "labels": {ANOMALY_RUN_LABEL: meta["name"][:63], "app.kubernetes.io/managed-by": "aiops-operator"},
            "ownerReferences": [
                {"apiVersion": run["apiVersion"], "kind": ANALYSIS_RUN.kind, "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": IncidentSpec(
            title=f"Anomaly in {top.series}{f' (+{more} more)' if more else ''}"[:256],
            description=description[:16384],
            severity=wanted.severity,
            source=IncidentSource.ANOMALY,
            cluster_ref=spec.cluster_ref,
            target=wanted.target,
            window=TimeWindow(start=outcome.start, end=outcome.end),
        ).wire(),
    }
    return kube.create(INCIDENT, body)


def record_anomaly_detection(
    run: dict, outcome: anomaly_run.AnomalyOutcome, incident: tuple | None, now: datetime, emit_for: EmitFor
) -> None:
    meta = run["metadata"]
    rb = StatusBuilder(run, now, emit_for(run))
    result = outcome.result()
    if incident is not None:
        obj, created = incident
        result["incidentRef"] = {"name": obj["metadata"]["name"]}
        if created:
            rb.emit("Normal", "IncidentOpened", f"Incident {obj['metadata']['name']} (source anomaly)")
    rb.set(
        completedAt=rfc3339(now),
        durationSeconds=outcome.duration_s,
        result={k: v for k, v in result.items() if v not in (None, {}, [])} | {"seriesAnalysed": outcome.series},
        error=outcome.failure() if not outcome.ran else None,
    )
    if not outcome.ran:
        metrics.ANALYSIS_SECONDS.labels(AnalysisType.ANOMALY_DETECTION.value, "failed").observe(outcome.duration_s)
        rb.phase(RunPhase.FAILED.value, outcome.failure()[:1024], event="Warning")
        _write(ANALYSIS_RUN, run, rb)
        return
    if outcome.anomalies:
        top = outcome.anomalies[0]
        message = f"{len(outcome.anomalies)} in {outcome.series} series; most severe: {top.summary}"[:1024]
        rb.condition(ANOMALIES_FOUND, "True", ANOMALIES_FOUND, message, event="Normal")
    else:
        message = f"none in {outcome.series} series"
        rb.condition(ANOMALIES_FOUND, "False", "NoAnomalies", message, event="Normal")
    gaps = f", {len(outcome.gaps)} gap(s)" if outcome.gaps else ""
    rb.phase(
        RunPhase.SUCCEEDED.value,
        f"{len(outcome.anomalies)} anomalies{gaps} in {outcome.duration_s:.1f}s",
        event="Normal",
    )
    _write(ANALYSIS_RUN, run, rb)
    metrics.ANALYSIS_SECONDS.labels(AnalysisType.ANOMALY_DETECTION.value, "completed").observe(outcome.duration_s)
    if outcome.anomalies:
        data = {
            "count": len(outcome.anomalies),
            "anomalies": result["anomalies"][:5],
            "incident": (result.get("incidentRef") or {}).get("name"),
        }
        events.publish(EventType.ANOMALY_DETECTED, f"{meta['namespace']}/{meta['name']}", data, run)
