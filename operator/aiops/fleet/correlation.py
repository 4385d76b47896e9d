"""Fleet correlation: Incidents on different clusters whose diagnoses share a cause become one problem.

The rules, deterministic and in this order:

1. An Incident *claims* the causes (`Suspect.causes`: an image, a dependency's host name, a node image,
   a GPU driver) of the suspects its diagnosis stands behind (diagnosis/causes.py): the top suspect,
   and any other scoring at least 0.8 of it. A cause named only by a weak, lower suspect claims nothing.
2. Two diagnosed Incidents share a cause when they claim an equal (kind, value), sit on different
   clusters (`spec.clusterRef`, or the local one), and were detected within WINDOW of each other.
3. A group is every Incident that claims one cause and was detected within WINDOW of the group's first
   Incident; it needs Incidents on at least MIN_CLUSTERS clusters. An Incident in several groups joins
   the one with the most clusters (then the earliest, then the cause's text): one parent per child.
4. A group becomes a parent Incident: named from the cause and the first detection (so two operators,
   or two passes, name the same parent), in the operator's namespace, severity the highest of its
   children. Children already folded into a parent stay with it.

Incidents the operator opened itself (source: correlation) never join a group. No model takes part:
a shared cause is named only from each child's own analyzer evidence.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops import API_VERSION, GROUP
from aiops.api import INCIDENT
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import (
    Cause,
    ChildIncident,
    Diagnosis,
    EvidenceItem,
    EvidenceSource,
    ExecutionStatus,
    IncidentPhase,
    IncidentReference,
    IncidentSource,
    IncidentSpec,
    Severity,
)
from aiops.core import kube
from aiops.core.status import StatusBuilder, parse_time, write_rebased
from aiops.diagnosis.analyzers.common import evidence_id
from aiops.diagnosis.causes import claims

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=30)
MIN_CLUSTERS = 2
LOCAL = "local"
SEVERITY_ORDER = [Severity.INFO, Severity.LOW, Severity.WARNING, Severity.HIGH, Severity.CRITICAL]
CAUSE_LABEL_VALUE_LEN = 16
CAUSE_LABEL = f"{GROUP}/shared-cause"
MAX_CHILDREN = 200  # IncidentStatus.children's bound


@dataclass(frozen=True)
class Member:
    namespace: str
    name: str
    cluster: str
    detected_at: datetime
    severity: Severity
    root_cause: str | None
    parent: str | None  # namespace/name of the parent it was folded into, if any

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Group:
    cause: Cause
    members: list[Member] = field(default_factory=list)

    @property
    def clusters(self) -> list[str]:
        return sorted({m.cluster for m in self.members})

    @property
    def first(self) -> datetime:
        return min(m.detected_at for m in self.members)

    @property
    def severity(self) -> Severity:
        return max((m.severity for m in self.members), key=SEVERITY_ORDER.index)


def cause_id(cause: Cause) -> str:
    return hashlib.sha256(f"{cause.kind}:{cause.value}".encode()).hexdigest()[:CAUSE_LABEL_VALUE_LEN]


def parent_name(group: Group) -> str:
    return f"fleet-{cause_id(group.cause)[:10]}-{group.first:%Y%m%d%H%M}"


def member(incident: dict[str, Any]) -> Member | None:
    """The Incident as a group member, or None when it cannot be one (a parent, not diagnosed)."""
    spec, status = incident.get("spec") or {}, incident.get("status") or {}
    if spec.get("source") == IncidentSource.CORRELATION or not status.get("diagnosis"):
        return None
    detected = parse_time(status.get("detectedAt") or incident["metadata"].get("creationTimestamp"))
    if detected is None:
        return None
    parent = status.get("parentRef")
    try:
        severity = Severity(spec.get("severity"))
    except ValueError:
        return None
    return Member(
        namespace=incident["metadata"]["namespace"],
        name=incident["metadata"]["name"],
        cluster=(spec.get("clusterRef") or {}).get("name") or LOCAL,
        detected_at=detected,
        severity=severity,
        root_cause=status["diagnosis"].get("rootCause"),
        parent=f"{parent['namespace']}/{parent['name']}" if parent else None,
    )


def groups(incidents: list[dict[str, Any]], window: timedelta = WINDOW) -> list[Group]:
    """Rules 2 and 3 over every Incident given: the groups, each child in at most one."""
    by_cause: dict[tuple[str, str], list[tuple[Member, Cause]]] = {}
    for incident in incidents:
        m = member(incident)
        if m is None:
            continue
        for cause in claims(incident):
            by_cause.setdefault((cause.kind, cause.value), []).append((m, cause))
    candidates: list[Group] = []
    for entries in by_cause.values():
        entries.sort(key=lambda e: (e[0].detected_at, e[0].key))
        start = 0
        while start < len(entries):
            first = entries[start][0].detected_at
            end = start
            while end < len(entries) and entries[end][0].detected_at - first <= window:
                end += 1
            group = Group(entries[start][1], [m for m, _ in entries[start:end]])
            if len(group.clusters) >= MIN_CLUSTERS:
                candidates.append(group)
            start = end
    candidates.sort(key=lambda g: (-len(g.clusters), g.first, g.cause.kind, g.cause.value))
    taken: set[str] = set()
    chosen = []
    for group in candidates:
        group.members = [m for m in group.members if m.key not in taken]
        if len(group.clusters) >= MIN_CLUSTERS:
            taken.update(m.key for m in group.members)
            chosen.append(group)
    return chosen


KIND_WORDS = {"image": "image", "dependency": "dependency", "nodeImage": "node image", "gpuDriver": "GPU driver"}


def title(group: Group) -> str:
    return f"Same {KIND_WORDS[group.cause.kind]} {group.cause.value} failing on {len(group.clusters)} clusters"[:256]


def parent_manifest(group: Group, name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {CAUSE_LABEL: cause_id(group.cause), "app.kubernetes.io/managed-by": "aiops-operator"},
        },
        "spec": IncidentSpec(
            title=title(group),
            description=(
                f"Opened by the operator: Incidents on {', '.join(group.clusters)} share {group.cause.kind}"
                f" {group.cause.value}. The children hold the evidence; this Incident notifies for all of them."
            ),
            severity=group.severity,
            source=IncidentSource.CORRELATION,
            shared_cause=group.cause,
        ).wire(),
    }


def fold(client: kube.Client, group: Group, incidents: dict[str, dict[str, Any]], namespace: str, now) -> str:
    """Rule 4: the group's parent created or brought up to date, its new children pointed at it.
    Idempotent: a second pass over the same group writes nothing. Returns the parent's namespace/name."""
    cid = cause_id(group.cause)
    # A child already folded for this cause names the parent to keep (its first detection may have moved).
    existing = next(
        (
            m.parent
            for m in group.members
            if m.parent
            and (incidents.get(m.parent, {}).get("metadata", {}).get("labels") or {}).get(CAUSE_LABEL) == cid
        ),
        None,
    )
    ns, name = existing.split("/", 1) if existing else (namespace, parent_name(group))
    parent, _ = (
        client.create(INCIDENT, parent_manifest(group, name, ns)) if not existing else (incidents[existing], False)
    )
    builder = StatusBuilder(INCIDENT, parent, now, _emitter(client, parent))
    status = builder.status
    known = {(c.namespace, c.name): c for c in status.children}  # children stay, even past the window
    for m in group.members:
        if m.parent in (None, f"{ns}/{name}"):
            known[(m.namespace, m.name)] = ChildIncident(
                name=m.name,
                namespace=m.namespace,
                cluster=m.cluster,
                root_cause=(m.root_cause or "")[:1024] or None,
                detected_at=m.detected_at,
            )
    children = sorted(known.values(), key=lambda c: (c.detected_at or now, c.cluster, c.namespace, c.name))
    # A parent of a storm stands for every child, but its status lists the first MAX_CHILDREN: the rest are
    # counted, pointed at it, and found again by their parentRef (settle).
    status.children = children[:MAX_CHILDREN]
    status.child_count = len(children)
    status.clusters = sorted({c.cluster for c in children})[:MAX_CHILDREN]
    status.detected_at = status.detected_at or group.first
    status.diagnosis = _diagnosis(group.cause, children, incidents)
    status.diagnosed_at = status.diagnosed_at or now
    clusters = len({c.cluster for c in children})
    message = f"{len(children)} Incidents on {clusters} clusters share {group.cause.kind} {group.cause.value}"
    builder.condition(ConditionType.READY, ConditionStatus.TRUE, Reason.SHARED_CAUSE, message[:1024])
    if status.phase in (None, IncidentPhase.NEW):
        builder.phase(IncidentPhase.DIAGNOSED, message[:1024])
    write_rebased(client, builder, parent)
    for m in group.members:
        # New children, and ours whose Correlated condition another writer's stale conditions list dropped.
        if m.parent is None or (m.parent == f"{ns}/{name}" and not _correlated(incidents[m.key])):
            child = incidents[m.key]
            b = StatusBuilder(INCIDENT, child, now, _emitter(client, child))
            b.status.parent_ref = IncidentReference(name=name, namespace=ns)
            text = f"folded into the fleet-wide Incident {ns}/{name}: {title(group)}; it notifies for this one"
            b.condition(
                ConditionType.CORRELATED, ConditionStatus.TRUE, Reason.SHARED_CAUSE, text[:1024], event="Normal"
            )
            write_rebased(client, b, child)
    return f"{ns}/{name}"


def _correlated(incident: dict[str, Any]) -> bool:
    conditions = (incident.get("status") or {}).get("conditions") or []
    return any(c.get("type") == ConditionType.CORRELATED and c.get("status") == "True" for c in conditions)


def settle(client: kube.Client, parent: dict[str, Any], incidents: dict[str, dict[str, Any]], now) -> None:
    """A parent resolves when every child it stands for has resolved."""
    builder = StatusBuilder(INCIDENT, parent, now, _emitter(client, parent))
    status = builder.status
    if not status.children or status.phase == IncidentPhase.RESOLVED:
        return
    me = {"namespace": parent["metadata"]["namespace"], "name": parent["metadata"]["name"]}
    keys = {f"{c.namespace}/{c.name}" for c in status.children} | {
        key for key, i in incidents.items() if ((i.get("status") or {}).get("parentRef") or None) == me
    }
    phases = [((incidents.get(key) or {}).get("status") or {}).get("phase") for key in keys]
    if all(p == IncidentPhase.RESOLVED for p in phases):
        builder.phase(IncidentPhase.RESOLVED, f"all {len(phases)} children resolved")
        status.resolved_at = now
        write_rebased(client, builder, parent)


def sweep(client: kube.Client, namespace: str, now, window: timedelta = WINDOW) -> list[str]:
    """One pass over the hub's Incidents: groups folded, finished parents resolved. Returns the parents."""
    incidents = {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i for i in client.list(INCIDENT)}
    folded = set()
    for group in groups(list(incidents.values()), window):
        try:
            folded.add(fold(client, group, incidents, namespace, now))
        except Exception as exc:  # noqa: BLE001  (one group's failure must not hold up the others')
            log.warning("fleet correlation: the group sharing %s %s (%d Incidents) failed, retried next pass: %s: %s",
                        group.cause.kind, group.cause.value, len(group.members), type(exc).__name__, exc)  # fmt: skip
    for key, incident in incidents.items():
        spec, status = incident.get("spec") or {}, incident.get("status") or {}
        if spec.get("source") == IncidentSource.CORRELATION and status.get("phase") != IncidentPhase.RESOLVED:
            # A parent this pass wrote is read again; the others are as listed.
            current = client.get(INCIDENT, *reversed(key.split("/", 1))) if key in folded else incident
            settle(client, current or incident, incidents, now)
    return sorted(folded)


def _diagnosis(cause: Cause, children: list[ChildIncident], incidents: dict[str, dict[str, Any]]) -> Diagnosis:
    """The parent's diagnosis: the shared cause, citing each child's own diagnosis."""
    evidence, confidences = [], []
    for c in children:
        child_diagnosis = ((incidents.get(f"{c.namespace}/{c.name}") or {}).get("status") or {}).get("diagnosis") or {}
        confidences.append(int(child_diagnosis.get("confidence") or 0))
        evidence.append(
            EvidenceItem(
                id=evidence_id("child", c.cluster, c.namespace, c.name),
                source=EvidenceSource.KUBERNETES,
                summary=f"{c.cluster} {c.namespace}/{c.name}: {c.root_cause or 'diagnosed'}"[:2048],
            )
        )
    clusters = sorted({c.cluster for c in children})
    return Diagnosis(
        root_cause=f"{KIND_WORDS[cause.kind]} {cause.value} is behind {len(children)} Incidents on {len(clusters)}"
        f" clusters ({', '.join(clusters)}); on each, its own diagnosis names it: {children[0].root_cause or ''}"[
            :2048
        ],
        reasoning="Fleet correlation rules (docs/fleet.md): the same cause, claimed by each child's top suspects,"
        " on different clusters, detected within the correlation window.",
        mitigation="Fix the shared cause once (for an image: roll it back where it was rolled out, then fix it in"
        " Git); each child's diagnosis has the per-cluster steps.",
        confidence=min(confidences, default=0),
        execution_status=ExecutionStatus.COMPLETED,
        evidence=evidence[:100],
    )


def _emitter(client: kube.Client, obj: dict[str, Any]):
    return lambda type_, reason, message: client.event(INCIDENT, obj, type_, reason, message)
