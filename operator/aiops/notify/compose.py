"""Which notices an Incident is due, built from its own status and redacted before any channel sees them.

An Incident is due one notice per stage it has reached: its diagnosis landed, a step of its runbook
waits for approval (one notice per step), it resolved. A child folded into a fleet-wide parent is due
nothing: the parent speaks for it. An Incident whose diagnosis claims a cause other clusters could
share is held for `hold` after its diagnosis (the configuration's groupWaitSeconds, while there is a
fleet), so that a fleet-wide parent can form first, as Alertmanager's group_wait does; after that it
speaks for itself.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timedelta
from typing import Any

from aiops.api.incident import IncidentPhase, StepState
from aiops.core.status import parse_time
from aiops.diagnosis.causes import claims
from aiops.diagnosis.redaction import Redactor
from aiops.notify.notice import Notice, Stage
from aiops.sops.approvals import APPROVER

HOLD = timedelta(seconds=30)
EVIDENCE = 3


def approve_command(incident: dict[str, Any], step: str) -> str:
    """The exact kubectl line that approves `step`: appends to spec.approvals, or creates the list."""
    meta = incident["metadata"]
    entry = {"step": step, "approvedBy": APPROVER}
    if (incident.get("spec") or {}).get("approvals"):
        kind, body = "json", [{"op": "add", "path": "/spec/approvals/-", "value": entry}]
    else:
        kind, body = "merge", {"spec": {"approvals": [entry]}}
    patch = json.dumps(body, separators=(",", ":"))
    return f"kubectl -n {meta['namespace']} patch incident {meta['name']} --type={kind} -p {shlex.quote(patch)}"


def held(incident: dict[str, Any], now: datetime, hold: timedelta = HOLD) -> bool:
    """A diagnosis that claims a shareable cause waits `hold` for a fleet-wide parent to form."""
    if not hold or not claims(incident):
        return False
    diagnosed = parse_time((incident.get("status") or {}).get("diagnosedAt"))
    return diagnosed is not None and now - diagnosed < hold


def reached(incident: dict[str, Any]) -> list[tuple[Stage, str, str | None]]:
    """(stage, detail, when) of every stage the Incident has reached; none for a child of a fleet-wide parent."""
    status = incident.get("status") or {}
    if status.get("parentRef"):
        return []
    stages: list[tuple[Stage, str, str | None]] = []
    if status.get("diagnosis"):
        stages.append((Stage.DIAGNOSED, "", status.get("diagnosedAt")))
    for step in (status.get("sop") or {}).get("steps") or []:
        if step.get("state") == StepState.AWAITING_APPROVAL:
            stages.append((Stage.AWAITING_APPROVAL, step["id"], step.get("startedAt")))
    if status.get("phase") == IncidentPhase.RESOLVED:
        stages.append((Stage.RESOLVED, "", status.get("resolvedAt")))
    return stages


def stage_key(stage: Stage, detail: str) -> str:
    """A stage's part of Notice.key, as kept on the Incident once its notice is in the outbox."""
    return f"{stage}:{detail}" if detail else str(stage)


def due(incident: dict[str, Any], now: datetime, hold: timedelta = HOLD) -> list[Notice]:
    """The notices this Incident has reached and may send now, in order."""
    spec, status, meta = incident.get("spec") or {}, incident.get("status") or {}, incident["metadata"]
    diagnosis = status.get("diagnosis")
    sop = status.get("sop") or {}
    is_held = held(incident, now, hold)
    stages = [s for s in reached(incident) if not (s[0] == Stage.DIAGNOSED and is_held)]
    if not stages:
        return []
    redactor = Redactor()
    red = redactor.redact

    def text(value: Any) -> str | None:
        return red(str(value)) if value else None

    evidence = [red(e["summary"]) for e in (diagnosis or {}).get("evidence", [])[:EVIDENCE]]
    target = spec.get("target")
    children = [f"{c['cluster']} {c['namespace']}/{c['name']}" for c in status.get("children") or []]
    notices = []
    for stage, detail, when in stages:
        step = next((s for s in sop.get("steps") or [] if s["id"] == detail), None) if detail else None
        notices.append(
            Notice(
                incident=f"{meta['namespace']}/{meta['name']}",
                uid=meta["uid"],
                stage=stage,
                detail=detail,
                title=red(spec.get("title", meta["name"])),
                severity=spec.get("severity", "warning"),
                cluster=(spec.get("clusterRef") or {}).get("name") or "local",
                namespace=meta["namespace"],
                target=f"{target['kind']}/{target['name']}" if target else None,
                root_cause=text((diagnosis or {}).get("rootCause")),
                confidence=(diagnosis or {}).get("confidence"),
                evidence=evidence,
                sop=sop.get("name"),
                next_step=text(f"{detail}: {step.get('title') or ''}".rstrip(": ")) if step else None,
                approve_command=approve_command(incident, detail) if stage == Stage.AWAITING_APPROVAL else None,
                children=children,
                labels={k: str(v) for k, v in (meta.get("labels") or {}).items()},
                at=when or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    return notices
