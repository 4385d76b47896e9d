"""sopAnalysis runs: a runbook's text -> an SOP draft and findings (aiops.sops.analysis), on the run."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisRunStatus, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.clusters import suspension
from aiops.core.status import StatusBuilder, write
from aiops.runs.common import Context, fail_run, start_attempt, still_ours
from aiops.sops import analysis

log = logging.getLogger(__name__)

# ModelAnswered on a sopAnalysis run, by outcome.
MODEL_CONDITION = {
    "completed": (ConditionStatus.TRUE, Reason.COMPLETED),
    "lint-only": (ConditionStatus.FALSE, Reason.NO_MODEL_CONFIGURED),
    "no-model": (ConditionStatus.FALSE, Reason.NO_MODEL_CONFIGURED),
    "invalid": (ConditionStatus.FALSE, Reason.INVALID_ANSWER),
    "unreachable": (ConditionStatus.FALSE, Reason.MODEL_UNREACHABLE),
}


def execute(ctx: Context, run: dict) -> None:
    """One attempt at a sopAnalysis run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    try:
        spec = AnalysisRunSpec.model_validate(run.get("spec") or {})
        config = analysis.gateway_config(ctx.settings.llm, spec.inference)
    except (ValidationError, ValueError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        fail_run(ctx, run, f"cannot analyse: {message}")
        return
    cluster = spec.cluster_ref.name if spec.cluster_ref else None
    held = suspension.current(cluster, ctx.settings.namespace, ctx.client) if config is not None else None
    withheld = f"the model was not called: {held.message()}" if held else None
    run = start_attempt(ctx, run, "drafting an SOP from the runbook text")
    try:
        outcome = analysis.analyse(spec.inputs.text or "", None if withheld else config, meta["name"])
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("SOP analysis %s/%s crashed", meta["namespace"], meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    record(ctx, run, outcome, withheld)


def record(ctx: Context, run: dict, a: analysis.SOPAnalysis, withheld: str | None = None) -> None:
    """`withheld`: why the model was not called (the kill switch); it replaces "no model is configured"."""
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    result: dict = {"summary": a.summary(), "redaction": a.redaction, "promptVersion": a.prompt_version}
    if a.spec is not None:
        result |= {"sopDraft": a.spec.wire(), "sopMarkdown": a.markdown, "findings": [f.wire() for f in a.findings]}
    b.status.completed_at = b.now
    b.status.duration_seconds = a.duration_s
    b.status.model = a.model
    b.status.endpoint = a.endpoint
    b.status.tokens = {"prompt": a.prompt_tokens, "completion": a.completion_tokens} if a.model else None
    b.status.result = {k: v for k, v in result.items() if v not in (None, {}, [])}
    b.status.error = (withheld or a.error)[:4096] if a.error else None
    status, reason = MODEL_CONDITION[a.outcome]
    if withheld:
        reason, message = Reason.SUSPENDED, withheld[:1024]
    elif a.outcome == "completed":
        message = f"{a.model}, prompt {a.prompt_version}, {a.requests} request(s)"
    elif a.outcome == "lint-only":
        message = f"{analysis.NO_MODEL}: the runbook markdown was parsed and linted, the model's review is missing"
    else:
        message = (a.error or "")[:1024]
    event = "Normal" if status == ConditionStatus.TRUE else "Warning"
    b.condition(ConditionType.MODEL_ANSWERED, status, reason, message, event=event)
    if a.succeeded:
        b.phase(RunPhase.SUCCEEDED, f"{a.summary()[:900]} in {a.duration_s:.1f}s", event="Normal")
    else:
        b.phase(RunPhase.FAILED, f"no SOP draft ({reason}) after {a.duration_s:.1f}s", event="Warning")
    write(ctx.client, b, run)
