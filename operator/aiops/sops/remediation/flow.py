"""An Incident's road from diagnosis to resolution: match an SOP, follow it, keep the score.

`follow` is called periodically for an Incident that is Diagnosed or Remediating; it records what it
did in a StatusBuilder (one status write per call, nothing half-written) and refreshes the SOP's
effect statistics when the runbook ends.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from aiops import GROUP, VERSION
from aiops.api import SOP
from aiops.api.incident import Diagnosis, IncidentPhase, IncidentSpec, MatchedSOP
from aiops.api.sop import SOPSpec
from aiops.clusters.access import cluster_access
from aiops.core import events, kube, metrics
from aiops.core.events import EventType
from aiops.core.status import StatusBuilder
from aiops.diagnosis import pipeline
from aiops.settings import Settings
from aiops.sops.remediation import actions, effects, engine, matching

SOP_MATCHED = "SOPMatched"
APPROVALS = "ApprovalsValid"
log = logging.getLogger(__name__)


def valid_sops(namespace: str) -> dict[str, SOPSpec]:
    """The namespace's SOPs whose spec validates; an invalid one is reported on itself, not used here."""
    items = kube.custom().list_namespaced_custom_object(GROUP, VERSION, namespace, SOP.plural)["items"]
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


def follow(body: dict[str, Any], builder: StatusBuilder, settings: Settings) -> None:
    meta = body["metadata"]
    namespace = meta["namespace"]
    try:
        spec = IncidentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # the Incident reconciler has already said what is wrong
    status = builder.new
    diagnosis = Diagnosis.model_validate(status["diagnosis"]) if status.get("diagnosis") else None
    sops = valid_sops(namespace)
    if status.get("sop") is None:
        match, why = matching.choose(spec, diagnosis, sops)
        if match is None:
            builder.condition(SOP_MATCHED, "False", "NoMatch", why, event="Normal")
            return
        if match.name not in sops:
            builder.condition(
                SOP_MATCHED, "False", "SOPInvalid", f"SOP {match.name} is missing or invalid", event="Warning"
            )
            return
        builder.condition(SOP_MATCHED, "True", "Matched", why[:1024], event="Normal")
        builder.set(sop=engine.start(match, sops[match.name], builder.now).wire())
        builder.phase(IncidentPhase.REMEDIATING.value, f"Following SOP {match.name}")
    sop = MatchedSOP.model_validate(builder.new["sop"])
    if sop.finished_at:
        return
    if sop.name not in sops:
        builder.condition(SOP_MATCHED, "False", "SOPGone", f"SOP {sop.name} was deleted or became invalid", "Warning")
        return
    steps = {st.id for st in sops[sop.name].steps}
    unknown = [(i, a.step) for i, a in enumerate(spec.approvals) if a.step not in steps]
    if unknown:
        i, step = unknown[0]
        message = f"spec.approvals[{i}].step: SOP {sop.name} has no step {step!r} (steps: {', '.join(sorted(steps))})"
        builder.condition(APPROVALS, "False", "UnknownStep", message, event="Warning")
    elif spec.approvals:
        builder.condition(APPROVALS, "True", "Valid", f"{len(spec.approvals)} approval(s) name steps of {sop.name}")
    vars_ = variables(body, spec, diagnosis)
    access = cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, settings)
    world = engine.World(
        api=access.api,
        prometheus=access.prometheus,
        variables=vars_,
        targets=actions.Targets(
            vars_["NAMESPACE"] or namespace, vars_["DEPLOYMENT"] or None, vars_["POD"] or None, vars_["NODE"] or None
        ),  # fmt: skip
        approvals={a.step: a for a in spec.approvals},
        incident=f"{namespace}/{meta['name']}",
    )
    progress = engine.advance(sop, sops[sop.name], world, builder.now)
    for entry in progress.sop.audit[len(sop.audit) :]:
        metrics.SOP_ACTIONS.labels(entry.action, "done" if entry.outcome == "done" else "failed").inc()
        events.publish(
            EventType.SOP_ACTION, f"{namespace}/{meta['name']}", {"sop": sop.name, **entry.wire()}, dict(body)
        )
    for type_, reason, message in progress.events:
        builder.emit(type_, reason, message[:1024])
        builder.record(reason, message[:1024])
    builder.set(sop=progress.sop.wire())
    if progress.outcome == "resolved":
        builder.phase(IncidentPhase.RESOLVED.value, f"SOP {sop.name} completed")
        builder.set(resolvedAt=builder.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    elif progress.outcome == "escalated":
        builder.phase(IncidentPhase.ESCALATED.value, f"SOP {sop.name} escalated", event="Warning")
    if progress.outcome in ("resolved", "escalated"):
        effects.refresh(namespace, sop.name, {**body, "status": builder.new})


def is_pending(status: dict[str, Any]) -> bool:
    """Diagnosed or Remediating, with an SOP still to match or to finish."""
    if status.get("phase") not in (IncidentPhase.DIAGNOSED.value, IncidentPhase.REMEDIATING.value):
        return False
    if (status.get("sop") or {}).get("finishedAt"):
        return False
    return not any(c.get("type") == SOP_MATCHED and c.get("status") == "False" for c in status.get("conditions") or [])
