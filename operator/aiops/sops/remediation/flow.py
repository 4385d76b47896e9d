"""An Incident's road from diagnosis to resolution: match an SOP, follow it, keep the score.

`follow` is called periodically for an Incident that is Diagnosed or Remediating; it records what it
did in a StatusBuilder (one status write per call, nothing half-written) and refreshes the SOP's
effect statistics when the runbook ends.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from aiops.api import SOP
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import (
    ChangeState,
    Diagnosis,
    IncidentPhase,
    IncidentSpec,
    IncidentStatus,
    MatchedSOP,
    StepState,
)
from aiops.api.sop import SOPSpec
from aiops.clusters import informer, suspension
from aiops.clusters.access import cluster_access
from aiops.core import events, kube, metrics
from aiops.core.events import EventType
from aiops.core.status import StatusBuilder
from aiops.diagnosis import pipeline
from aiops.settings import Settings
from aiops.sops import approvals
from aiops.sops.remediation import actions, effects, engine, gitops, matching, undo

log = logging.getLogger(__name__)


def valid_sops(client: kube.Client, namespace: str, cached: bool = False) -> dict[str, SOPSpec]:
    """The namespace's SOPs whose spec validates; an invalid one is reported on itself, not used here. With `cached`,
    read from the watch-fed cache when it holds them (the operator's own cluster, synced): for the passes that follow
    a runbook already matched. A match is decided once and for good, on a list from the API server: a watch may not
    have brought yet the SOP applied with the Incident."""
    cache = informer.local() if cached and client is kube.API else None
    watched = cache.informer(informer.SOPS_PATH) if cache is not None else None
    items = watched.items(namespace) if watched is not None else client.list(SOP, namespace)
    sops = {}
    for item in items:
        try:
            sops[item["metadata"]["name"]] = SOPSpec.model_validate(item.get("spec") or {})
        except ValidationError:
            continue
    return sops


def variables(body: dict[str, Any], spec: IncidentSpec, diagnosis: Diagnosis | None) -> dict[str, str]:
    """$NAMESPACE, $TARGET (also $APP), $KIND, $POD and $NODE for checks; empty when the Incident has none."""
    namespace = body["metadata"]["namespace"]
    try:
        target = pipeline.resolve_target(spec, namespace)
        kind, name, namespace = target.kind, target.name, target.namespace
    except pipeline.PipelineError:
        kind = name = ""
    suspects = [s.resource for s in diagnosis.suspects] if diagnosis else []

    def first(prefix: str) -> str:
        if kind == prefix:
            return name
        return next((r.split("/", 1)[1] for r in suspects if r.startswith(prefix + "/")), "")

    return {
        "NAMESPACE": namespace,
        "TARGET": name,
        "APP": name,
        "KIND": kind,
        "POD": first("Pod"),
        "NODE": first("Node"),
        "DEPLOYMENT": first("Deployment"),
    }


def follow(
    client: kube.Client, body: dict[str, Any], builder: StatusBuilder[IncidentStatus], settings: Settings
) -> None:
    """One step of the Incident's runbook: match an SOP, then advance its steps as far as approvals allow."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    try:
        spec = IncidentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # the Incident reconciler has already said what is wrong
    if _suspended(client, builder, spec, settings):
        return  # the kill switch: nothing is matched, run, verified or undone until it is lifted
    status = builder.status
    diagnosis = status.diagnosis
    sops = valid_sops(client, namespace, cached=status.sop is not None)
    matched, true, false = ConditionType.SOP_MATCHED, ConditionStatus.TRUE, ConditionStatus.FALSE
    if status.sop is None and not _match(spec, builder, sops, settings, start=True):
        return
    sop = status.sop.model_copy(deep=True)  # advance() works on its own copy: the audit diff below needs the old
    if sop.finished_at:
        return
    if sop.name not in sops:
        message = f"SOP {sop.name} was deleted or became invalid"
        builder.condition(matched, false, Reason.SOP_GONE, message, event="Warning")
        return
    steps = {st.id for st in sops[sop.name].steps}
    unknown = [(i, a.step) for i, a in enumerate(spec.approvals) if a.step not in steps]
    if unknown:
        i, step = unknown[0]
        message = f"spec.approvals[{i}].step: SOP {sop.name} has no step {step!r} (steps: {', '.join(sorted(steps))})"
        builder.condition(ConditionType.APPROVALS_VALID, false, Reason.UNKNOWN_STEP, message, event="Warning")
    elif spec.approvals:
        message = f"{len(spec.approvals)} approval(s) name steps of {sop.name}"
        builder.condition(ConditionType.APPROVALS_VALID, true, Reason.VALID, message)
    vars_ = variables(body, spec, diagnosis)
    access = cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, settings)
    world = engine.World(
        api=access.api,
        prometheus=access.prometheus,
        variables=vars_,
        targets=actions.Targets(
            vars_["NAMESPACE"] or namespace, vars_["DEPLOYMENT"] or None, vars_["POD"] or None, vars_["NODE"] or None
        ),  # fmt: skip
        approvals=(verdicts := approvals.judge(spec, sops[sop.name], meta.get("uid", ""), settings.approvals)),
        incident=f"{namespace}/{meta['name']}",
        gitops=gitops.GitOps(
            settings=settings.gitops,
            incident=f"{namespace}/{meta['name']}",
            uid=meta.get("uid", ""),
            sop=sop.name,
            diagnosis=diagnosis.root_cause if diagnosis else "",
            token=gitops.secret_tokens(settings.namespace, settings.gitops.token_secret),
            token_source=f"Secret {settings.namespace}/{settings.gitops.token_secret}",
        ),
    )
    progress = engine.advance(sop, sops[sop.name], world, builder.now)
    for entry in progress.sop.audit[len(sop.audit) :]:
        proposed = entry.outcome.startswith(gitops.OPENED)  # a pull request: "done" comes once Argo CD synced it
        outcome = "done" if entry.outcome == "done" else "proposed" if proposed else "failed"
        if entry.undo:
            outcome = "undone" if entry.outcome.startswith(undo.UNDONE) else "undo-failed"
        metrics.SOP_ACTIONS.labels(entry.action, outcome).inc()
        events.publish(
            EventType.SOP_ACTION, f"{namespace}/{meta['name']}", {"sop": sop.name, **entry.wire()}, dict(body)
        )
    for type_, reason, message in progress.events:
        builder.emit(type_, reason, message[:1024])
        builder.record(reason, message[:1024])
    status.sop = progress.sop.wire()  # as the engine built it: every list it filled, even empty
    _approved(builder, sop, progress.sop, verdicts)
    _change_verified(builder, sop, progress.sop)
    if progress.outcome == "resolved":
        builder.phase(IncidentPhase.RESOLVED, f"SOP {sop.name} completed")
        status.resolved_at = builder.now
    elif progress.outcome == "escalated":
        builder.phase(IncidentPhase.ESCALATED, f"SOP {sop.name} escalated", event="Warning")
    if progress.outcome in ("resolved", "escalated"):
        effects.refresh(client, namespace, sop.name, {**body, "status": status.wire()})


def settle_unmatched(
    client: kube.Client, body: dict[str, Any], builder: StatusBuilder[IncidentStatus], settings: Settings
) -> None:
    """At diagnosis, in the diagnosis's own write: SOPMatched=False when no SOP matches, so that no timer starts for
    the Incident (kopf adds and removes a finalizer for each timer it starts, and the timer's pass costs a status
    write of its own). A match is left to `follow`, which says it and starts the runbook unless the kill switch
    holds; saying that none fits holds nothing back, so it needs no kill-switch read."""
    try:
        spec = IncidentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return
    _match(spec, builder, valid_sops(client, body["metadata"]["namespace"]), settings, start=False)


def _match(
    spec: IncidentSpec, builder: StatusBuilder[IncidentStatus], sops: dict[str, SOPSpec], settings: Settings,
    start: bool,
) -> bool:  # fmt: skip
    """Whether an SOP matches; when none does (or the one named is invalid) SOPMatched=False says why. With
    `start`, a match is said and its runbook started (phase Remediating)."""
    matched, true, false = ConditionType.SOP_MATCHED, ConditionStatus.TRUE, ConditionStatus.FALSE
    # The embedder is loaded only for SOPs to compare: an Incident in a namespace without runbooks needs none.
    model = matching.embedder(settings) if sops and not spec.sop_ref else (None, "no SOP to compare")
    match, why = matching.choose(spec, builder.status.diagnosis, sops, *model)
    if match is None:
        builder.condition(matched, false, Reason.NO_MATCH, why, event="Normal")
        return False
    if match.name not in sops:
        message = f"SOP {match.name} is missing or invalid"
        builder.condition(matched, false, Reason.SOP_INVALID, message, event="Warning")
        return False
    if start:
        builder.condition(matched, true, Reason.MATCHED, why[:1024], event="Normal")
        builder.status.sop = engine.start(match, sops[match.name], builder.now).wire()
        builder.phase(IncidentPhase.REMEDIATING, f"Following SOP {match.name}")
    return True


def _approved(
    builder: StatusBuilder[IncidentStatus],
    before: MatchedSOP,
    after: MatchedSOP,
    verdicts: dict[str, approvals.Verdict],
) -> None:
    """Condition Approved: who still has to approve the step that waits, or who approved the action just done;
    an unverified approval, counted or not, is a Warning."""
    false, true = ConditionStatus.FALSE, ConditionStatus.TRUE
    waiting = next(
        (st for st in after.steps if st.id == after.current and st.state == StepState.AWAITING_APPROVAL), None
    )
    if waiting is not None:
        verdict = verdicts[waiting.id]
        if verdict.refused_unverified:
            builder.condition(ConditionType.APPROVED, false, Reason.UNVERIFIED_APPROVAL, verdict.message, "Warning")
        else:
            builder.condition(ConditionType.APPROVED, false, Reason.AWAITING_APPROVAL, verdict.message)
        return
    was = {st.id: st.state for st in before.steps}
    for st in after.steps:  # the actions this pass finished: approved, or given up waiting for approvals
        if (
            st.id not in verdicts
            or st.state == was.get(st.id)
            or st.state not in (StepState.SUCCEEDED, StepState.FAILED)
        ):
            continue
        verdict = verdicts[st.id]
        if verdict.approvers and verdict.unverified:
            builder.condition(ConditionType.APPROVED, true, Reason.APPROVED_UNVERIFIED, verdict.message, "Warning")
        elif verdict.approvers:
            builder.condition(ConditionType.APPROVED, true, Reason.APPROVED, verdict.message, "Normal")
        elif was.get(st.id) == StepState.AWAITING_APPROVAL:
            builder.condition(ConditionType.APPROVED, false, Reason.TIMEOUT, f"step {st.id}: {st.output}"[:1024])


def _suspended(
    client: kube.Client, builder: StatusBuilder[IncidentStatus], spec: IncidentSpec, settings: Settings
) -> bool:
    """Condition Suspended; True while the kill switch (fleet-wide, or the Incident's cluster's) holds."""
    held = suspension.current(spec.cluster_ref.name if spec.cluster_ref else None, settings.namespace, client)
    if held is not None:
        builder.condition(ConditionType.SUSPENDED, ConditionStatus.TRUE, Reason.SUSPENDED, held.message(), "Warning")
        return True
    was = builder.find(ConditionType.SUSPENDED)
    if was is not None and was.status == ConditionStatus.TRUE:
        message = "the kill switch was lifted: the runbook goes on where it stopped"
        builder.condition(ConditionType.SUSPENDED, ConditionStatus.FALSE, Reason.RESUMED, message, "Normal")
    return False


def _change_verified(builder: StatusBuilder[IncidentStatus], before: MatchedSOP, after: MatchedSOP) -> None:
    """Condition ChangeVerified: a change verified, undone, or that should have been undone, in this pass. The
    engine's Events (ChangeVerified, ActionUndone, UndoFailed) tell it already."""
    was = {c.step: c.state for c in before.changes}
    for c in after.changes:
        if c.state == was.get(c.step):
            continue
        said = f"step {c.step}: {c.action} on {c.target}"
        if c.state == ChangeState.VERIFIED:
            builder.condition(ConditionType.CHANGE_VERIFIED, ConditionStatus.TRUE, Reason.VERIFIED, f"{said} verified")
        elif c.state == ChangeState.UNDONE:
            message = f"{said} undone: {c.reason}"[:1024]
            builder.condition(ConditionType.CHANGE_VERIFIED, ConditionStatus.FALSE, Reason.UNDONE, message)
        elif c.state == ChangeState.NOT_UNDONE:
            message = f"{said} should have been undone and was not, put it back by hand: {c.reason}"[:1024]
            builder.condition(ConditionType.CHANGE_VERIFIED, ConditionStatus.FALSE, Reason.UNDO_FAILED, message)


def is_pending(status: dict[str, Any]) -> bool:
    """Diagnosed or Remediating, with an SOP still to match or to finish."""
    if status.get("phase") not in (IncidentPhase.DIAGNOSED.value, IncidentPhase.REMEDIATING.value):
        return False
    if (status.get("sop") or {}).get("finishedAt"):
        return False
    return not any(
        c.get("type") == ConditionType.SOP_MATCHED and c.get("status") == "False"
        for c in status.get("conditions") or []
    )
