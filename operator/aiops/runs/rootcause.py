"""rootCause runs: the diagnosis pipeline, with the outcome recorded on the Incident and on the run.

With `spec.bundle` the evidence comes from a support bundle (aiops.bundles.stored) instead of the cluster."""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunStatus, AnalysisType, BundleSource, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import Diagnosis, ExecutionStatus, IncidentPhase, IncidentSpec, IncidentStatus
from aiops.bundles import analyze, stored
from aiops.bundles.archive import BundleError
from aiops.clusters import suspension
from aiops.core import events, metrics
from aiops.core.events import EventType
from aiops.core.status import CONFLICT_RETRIES, StatusBuilder, parse_time, write
from aiops.diagnosis import pipeline
from aiops.runs.common import Context, fail_run, start_attempt, still_ours
from aiops.sops.remediation import flow

log = logging.getLogger(__name__)


def execute(ctx: Context, run: dict) -> None:
    """One attempt at a rootCause run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    incident_name = run["spec"]["incidentRef"]["name"]
    incident = ctx.client.get(INCIDENT, incident_name, meta["namespace"])
    if incident is None:
        fail_run(ctx, run, f"spec.incidentRef: Incident {incident_name!r} no longer exists")
        return
    try:
        spec = IncidentSpec.model_validate(incident.get("spec") or {})
    except ValidationError as exc:
        fail_run(ctx, run, f"Incident {incident_name} has an invalid spec: {exc.errors()[0]['msg']}")
        return
    istatus = incident.get("status") or {}
    if istatus.get("diagnosis") and (istatus.get("analysisRunRef") or {}).get("name") == meta["name"]:
        # The operator stopped between writing the Incident and the run: finish the run, don't redo it.
        diagnosis = Diagnosis.model_validate(istatus["diagnosis"])
        if still_ours(ctx, run):
            record_run(ctx, run, pipeline.PipelineResult(diagnosis=diagnosis))
            publish(incident, diagnosis)  # it went out after the run's write, which did not happen
        return
    snapshot = None
    if run["spec"].get("bundle"):
        try:
            snapshot = stored.load(BundleSource.model_validate(run["spec"]["bundle"]), meta["namespace"])
        except BundleError as exc:
            fail_run(ctx, run, f"spec.bundle: {exc}")
            return
    run = start_attempt(ctx, run, "collecting evidence and analysing")
    incident = mark_analyzing(ctx, incident, meta["name"])
    detected = (incident.get("status") or {}).get("detectedAt") or incident["metadata"]["creationTimestamp"]
    withheld = model_withheld(ctx, spec)
    try:
        if snapshot is not None:  # the evidence is the bundle's, at the time it was taken
            result = analyze.diagnose_incident(incident, spec, ctx.settings, snapshot, withheld=withheld)
        else:
            result = pipeline.diagnose_incident(
                incident, spec, ctx.settings, parse_time(detected), ctx.now(), withheld=withheld
            )
    except pipeline.PipelineError as exc:
        result = pipeline.PipelineResult(
            diagnosis=pipeline.fallback_diagnosis([], [], str(exc), ExecutionStatus.FAILED)
        )
        result.diagnosis = result.diagnosis.model_copy(update={"root_cause": f"Cannot analyse: {exc}"})
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("analysis %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    record(ctx, run, incident, result, withheld)


def model_withheld(ctx: Context, spec: IncidentSpec) -> str | None:
    """Why the model must not be called for this Incident now (the kill switch), when it would be called."""
    if ctx.settings.llm is None or (spec.analysis and spec.analysis.llm is False):
        return None
    cluster = spec.cluster_ref.name if spec.cluster_ref else None
    held = suspension.current(cluster, ctx.settings.namespace, ctx.client)
    return held.message() if held else None


def mark_analyzing(ctx: Context, incident: dict, run_name: str) -> dict:
    """Phase Analyzing, unless the Incident's alert resolved it meanwhile (the Alertmanager receiver): a Resolved
    Incident stays Resolved."""

    def analyzing(incident: dict) -> StatusBuilder[IncidentStatus] | None:
        b: StatusBuilder[IncidentStatus] = ctx.builder(INCIDENT, incident)
        if b.status.phase == IncidentPhase.RESOLVED:
            return None
        message = f"AnalysisRun {run_name} started"
        if b.status.phase != IncidentPhase.ANALYZING:
            b.emit("Normal", Reason.ANALYSIS_STARTED, message)
        b.phase(IncidentPhase.ANALYZING, message, event=None)
        return b

    return decide_and_write(ctx, incident, analyzing)


def decide_and_write(
    ctx: Context, incident: dict, decide: Callable[[dict], StatusBuilder[IncidentStatus] | None]
) -> dict:
    """The status `decide` builds on the Incident as last read or written, written conditionally: when something
    else wrote it meanwhile (409), it is read again and decided again, so the usual case costs no read; the last
    try is written regardless. `decide` returns None when there is nothing to write. The Incident as it now is."""
    for attempt in range(CONFLICT_RETRIES + 1):
        b = decide(incident)
        if b is None:
            return incident
        try:
            return write(ctx.client, b, incident, conditional=attempt < CONFLICT_RETRIES)
        except ApiException as exc:
            if exc.status != 409:
                raise
            incident = ctx.fresh(INCIDENT, incident)
    return incident


def record(
    ctx: Context, run: dict, incident: dict, result: pipeline.PipelineResult, withheld: str | None = None
) -> None:
    """The Incident first, then the run: a crash in between re-runs the analysis, and the
    transition-based conditions keep the second pass from repeating Events or timeline entries. `withheld`:
    why the model was not called (the kill switch).

    The outcome is decided again on the Incident as it is when something else wrote it meanwhile (its alert may
    have resolved it, through the Alertmanager receiver): `decide_and_write`."""
    if not still_ours(ctx, run):
        return
    d = result.diagnosis
    incident = decide_and_write(ctx, incident, lambda incident: diagnosed(ctx, incident, result, withheld))
    record_run(ctx, run, result)
    observe(result)
    publish(incident, d)


def diagnosed(
    ctx: Context, incident: dict, result: pipeline.PipelineResult, withheld: str | None
) -> StatusBuilder[IncidentStatus]:
    """The Incident's status with the outcome of its analysis; a runbook's match decided too when none fits."""
    d = result.diagnosis
    b: StatusBuilder[IncidentStatus] = ctx.builder(INCIDENT, incident)
    resolved = b.status.phase == IncidentPhase.RESOLVED
    b.status.diagnosis = d.wire()
    b.status.diagnosed_at = b.now
    b.status.redaction = result.redaction
    b.status.evidence_gaps = result.evidence_gaps
    if withheld and d.model == pipeline.ANALYZERS_ONLY:
        b.condition(
            ConditionType.MODEL_ANSWERED, ConditionStatus.FALSE, Reason.SUSPENDED,
            f"the model was not called, the analyzers' diagnosis stands: {withheld}", event="Warning",
        )  # fmt: skip
    elif d.execution_status == ExecutionStatus.RECOVERED_FALLBACK:
        why = (result.llm_error or d.reasoning or "")[:900]
        b.condition(
            ConditionType.MODEL_ANSWERED, ConditionStatus.FALSE, Reason.ANALYSIS_FALLBACK,
            f"analyzers' diagnosis used: {why}", event="Warning",
        )  # fmt: skip
    elif d.model != pipeline.ANALYZERS_ONLY:
        b.condition(
            ConditionType.MODEL_ANSWERED,
            ConditionStatus.TRUE,
            Reason.COMPLETED,
            f"{d.model}, prompt {d.prompt_version}",
        )
    if d.execution_status == ExecutionStatus.FAILED:
        b.condition(
            ConditionType.DIAGNOSED, ConditionStatus.FALSE, Reason.ANALYSIS_FAILED, d.root_cause[:1024], event="Warning"
        )
        if not resolved:  # an analysis that fails after the alert resolved says so; the phase stays Resolved
            b.phase(IncidentPhase.FAILED, d.root_cause[:1024], event=None)
        return b
    message = f"{d.root_cause[:900]} (confidence {d.confidence}%, {d.execution_status})"
    b.condition(ConditionType.DIAGNOSED, ConditionStatus.TRUE, Reason.ROOT_CAUSE_IDENTIFIED, message, event="Normal")
    if not resolved:  # a diagnosis that arrives after the alert resolved is kept; the phase stays Resolved
        b.phase(IncidentPhase.DIAGNOSED, f"diagnosed by {d.model}", event=None)
        if b.status.sop is None and b.find(ConditionType.SOP_MATCHED) is None:
            flow.settle_unmatched(ctx.client, incident, b, ctx.settings)
    return b


def publish(incident: dict, d: Diagnosis) -> None:
    """DIAGNOSED on the event bus; the sinks take a replay (same Incident, generation and payload) once."""
    meta = incident["metadata"]
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


def record_run(ctx: Context, run: dict, result: pipeline.PipelineResult) -> None:
    d = result.diagnosis
    failed = d.execution_status == ExecutionStatus.FAILED
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.completed_at = b.now
    b.status.duration_seconds = result.duration_s
    b.status.model = d.model
    b.status.endpoint = result.endpoint
    b.status.tokens = {"prompt": result.prompt_tokens, "completion": result.completion_tokens}
    b.status.result = {"summary": d.root_cause[:8192], "diagnosis": d.wire()}
    b.status.error = result.llm_error[:4096] if result.llm_error else None
    b.phase(
        RunPhase.FAILED if failed else RunPhase.SUCCEEDED,
        f"{d.execution_status} in {result.duration_s:.1f}s",
        event="Warning" if failed else "Normal",
    )
    write(ctx.client, b, run)
