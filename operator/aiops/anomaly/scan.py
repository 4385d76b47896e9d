"""The periodic anomaly scan of a ManagedCluster (spec.anomalyScan): which queries are due, which anomalies
are new, which of them someone already knows about, and one Incident for each of the rest.

One tick (controllers/anomalyscan.py calls `tick` every AIOPS_ANOMALY_SCAN_TICK_S):
1. Due queries: never scanned, or last scanned intervalSeconds ago or more; the longest-waiting first and
   at most `batch` per tick, so a cluster with many queries spreads them over ticks (bounded work).
2. Each runs as a range query over the lookback and is scored with the detector anomalyDetection runs use
   (anomaly.run.run_queries -> anomaly.detect).
3. New anomalies are those that began after the query's status.scannedUntil, the end of the window the
   previous scan scored. That watermark lives in the ManagedCluster's status, so a restarted operator (or
   the replica that takes over) does not alert again on what was already seen.
4. New anomalies are grouped by target: the query's target, else the workload the series' labels name,
   else its namespace. A target with an open Incident on the same cluster, or an Alertmanager alert firing
   on it, is deduplicated: counted, and said in status.anomalyScan.lastSkipped, with no Incident.
5. Each remaining target gets one Incident (source anomaly), at most MAX_INCIDENTS_PER_TICK per tick;
   with a model configured it opens with a one-paragraph explanation citing the series (anomaly.explain).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops import GROUP
from aiops.anomaly import explain, incident
from aiops.anomaly import run as queries
from aiops.anomaly.detect import Anomaly
from aiops.api import INCIDENT
from aiops.api.incident import IncidentPhase, IncidentSpec, Severity, WorkloadReference
from aiops.api.managedcluster import AnomalyScan, AnomalyScanStatus, ScanQuery, ScanQueryStatus
from aiops.clusters.access import ClusterAccess
from aiops.clusters.telemetry import SourceError
from aiops.core import kube
from aiops.diagnosis.evidence import Target
from aiops.diagnosis.pipeline import PipelineError, resolve_target, target_from_labels
from aiops.inference.gateway import GatewayConfig

log = logging.getLogger(__name__)

MAX_INCIDENTS_PER_TICK = 10  # more targets at once is a storm: the rest are said in lastSkipped
MAX_SKIPPED = 10
CLUSTER_LABEL = f"{GROUP}/cluster"
QUERY_LABEL = f"{GROUP}/anomaly-query"
SOURCE_LABEL = f"{GROUP}/source"


def due(scan: AnomalyScan, state: AnomalyScanStatus, now: datetime, batch: int) -> list[ScanQuery]:
    """The queries to run this tick: never scanned or scanned an interval ago, the longest-waiting first."""
    last = {q.name: q.last_scan_time for q in state.queries}
    interval = timedelta(seconds=scan.interval_seconds)
    waiting = [q for q in scan.queries if last.get(q.name) is None or now - last[q.name] >= interval]
    waiting.sort(key=lambda q: (last.get(q.name) is not None, last.get(q.name) or now))
    return waiting[:batch]


def new_since(anomalies: list[Anomaly], watermark: datetime | None) -> list[Anomaly]:
    """The anomalies that began after the previous scan's window ended (all of them on a first scan)."""
    if watermark is None:
        return list(anomalies)
    cut = watermark.timestamp()
    return [a for a in anomalies if a.start > cut]


def target_of(query: ScanQuery, labels: dict[str, str]) -> Target | None:
    """Where an anomaly of this series is: the query's target, the workload its labels name, its namespace."""
    if query.target is not None:
        return Target(query.target.kind, query.target.name, query.target.namespace or labels.get("namespace", ""))
    found = target_from_labels(labels, "")
    if found is None and labels.get("namespace"):
        return Target("Namespace", labels["namespace"], labels["namespace"])
    return found if found is not None and (found.namespace or found.kind == "Node") else None


def same_target(a: Target, b: Target) -> bool:
    """Whether two targets are one workload: equal, a workload and one of its pods (name-prefixed, as
    controllers name them), or a namespace and anything in it."""
    if a.kind == "Node" or b.kind == "Node":
        return (a.kind, a.name) == (b.kind, b.name)
    if a.namespace != b.namespace:
        return False
    if "Namespace" in (a.kind, b.kind) or (a.kind, a.name) == (b.kind, b.name):
        return True
    pod, other = (a, b) if a.kind == "Pod" else (b, a)
    return pod.kind == "Pod" and other.kind != "Pod" and pod.name.startswith(other.name + "-")


def _key(t: Target) -> str:
    return f"{t.kind}/{t.namespace}/{t.name}" if t.namespace else f"{t.kind}/{t.name}"


@dataclass
class Known:
    """What already pages someone about the cluster: open Incidents and firing alerts, by target."""

    incidents: list[tuple[Target, str]] = field(default_factory=list)  # (target, "ns/name")
    alerts: list[tuple[Target, str]] = field(default_factory=list)  # (target, alertname)

    def about(self, target: Target) -> str | None:
        for t, name in self.incidents:
            if same_target(t, target):
                return f"Incident {name} is open on {_key(t)}"
        for t, name in self.alerts:
            if same_target(t, target):
                return f"alert {name} is firing on {_key(t)}"
        return None


def known(client: kube.Client, access: ClusterAccess, cluster: str, hub: bool) -> Known:
    """Open Incidents on this cluster (clusterRef naming it, or none when it is the operator's own) and the
    alerts its Alertmanager has firing. An Alertmanager that cannot be read is logged and left out: an
    Incident too many beats a missed one."""
    out = Known()
    for obj in client.list(INCIDENT):
        if (obj.get("status") or {}).get("phase") == IncidentPhase.RESOLVED:
            continue
        try:
            spec = IncidentSpec.model_validate(obj.get("spec") or {})
            target = resolve_target(spec, obj["metadata"]["namespace"])
        except (ValueError, PipelineError):
            continue  # an Incident with no target covers no workload
        ref = spec.cluster_ref.name if spec.cluster_ref else None
        if ref == cluster or (ref is None and hub):
            out.incidents.append((target, f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"))
    if access.alertmanager is not None:
        try:
            for labels in access.alertmanager.firing():
                if (t := target_from_labels(labels, labels.get("namespace", ""))) is not None or labels.get(
                    "namespace"
                ):
                    t = t or Target("Namespace", labels["namespace"], labels["namespace"])
                    out.alerts.append((t, labels.get("alertname", "?")))
        except SourceError as exc:
            log.warning("anomaly scan of %s: alerts not checked: %s", cluster, exc)
    return out


@dataclass
class Finding:
    """New anomalies of one query on one target."""

    query: ScanQuery
    target: Target | None  # None: the series' labels name no workload or namespace
    anomalies: list[Anomaly]
    series: int
    start: datetime
    end: datetime


@dataclass
class TickResult:
    status: AnomalyScanStatus
    opened: list[tuple[str, str]] = field(default_factory=list)  # ("ns/name", message)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (query, error) for errors that are new


def incident_name(cluster: str, finding: Finding) -> str:
    """Stable for one onset on one target: a retried tick finds the Incident it made."""
    onset = min(a.start for a in finding.anomalies)
    identity = f"{cluster}\n{finding.query.name}\n{_key(finding.target)}\n{onset:.0f}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"anomaly-{cluster[:100]}-{finding.query.name[:40]}-{digest}".replace(".", "-")


def tick(
    client: kube.Client,
    cluster: dict[str, Any],
    scan: AnomalyScan,
    access: ClusterAccess | None,
    now: datetime,
    *,
    namespace: str,
    batch: int,
    model: GatewayConfig | None,
    unavailable: str | None = None,
    run: Callable[..., queries.AnomalyOutcome] = queries.run_queries,
) -> TickResult | None:
    """One scan of the due queries; None when none is due. `access` None: the cluster cannot be reached, and
    `unavailable` says why (each due query records it). Never raises for what Prometheus, Alertmanager or
    the model do; API errors creating Incidents propagate (the next tick retries; the names are stable)."""
    name = cluster["metadata"]["name"]
    hub = not (cluster.get("spec") or {}).get("kubeconfigSecretRef")
    state = AnomalyScanStatus.model_validate(((cluster.get("status") or {}).get("anomalyScan")) or {})
    todo = due(scan, state, now, batch)
    if not todo:
        return None
    by_name = {q.name: q for q in state.queries}
    result = TickResult(state.model_copy(deep=True))
    findings: list[Finding] = []
    start = now - timedelta(minutes=scan.lookback_minutes)
    for query in todo:
        previous = by_name.get(query.name) or ScanQueryStatus(name=query.name)
        if access is None or access.prometheus is None:
            outcome = queries.AnomalyOutcome(start=start, end=now, step="")
            error = unavailable or f"ManagedCluster {name} has no spec.endpoints.prometheus: the scan needs one"
        else:
            outcome = run(access.prometheus, [query.query], start, now)
            error = None if outcome.ran else outcome.failure()
        if error and error != previous.error:
            result.failed.append((query.name, error))
        findings += _group(query, outcome, new_since(outcome.anomalies, previous.scanned_until))
        by_name[query.name] = ScanQueryStatus(
            name=query.name,
            last_scan_time=now,
            # A failed scan saw nothing: the watermark stays, so the next one still finds what began since.
            scanned_until=outcome.end if outcome.ran else previous.scanned_until,
            series=outcome.series,
            anomalies=len(outcome.anomalies),
            error=error[:1024] if error else None,
        )
    configured = [q.name for q in scan.queries]
    result.status.queries = [by_name[n] for n in configured if n in by_name]
    if findings and access is not None:
        _settle(client, name, hub, access, findings, result, namespace=namespace, severity=scan.severity, model=model)
    return result


def _group(query: ScanQuery, outcome: queries.AnomalyOutcome, fresh: list[Anomaly]) -> list[Finding]:
    """One Finding per target (target None: series whose labels name none), the most severe first."""
    groups: dict[str, Finding] = {}
    for a in fresh:
        target = target_of(query, outcome.labels.get(a.series, {}))
        key = _key(target) if target else ""
        if key not in groups:
            groups[key] = Finding(query, target, [], outcome.series, outcome.start, outcome.end)
        groups[key].anomalies.append(a)
    return list(groups.values())


def _settle(
    client: kube.Client,
    cluster: str,
    hub: bool,
    access: ClusterAccess,
    findings: list[Finding],
    result: TickResult,
    *,
    namespace: str,
    severity: Severity,
    model: GatewayConfig | None,
) -> None:
    skipped: list[str] = []
    placed = [f for f in findings if f.target is not None]
    for f in findings:
        if f.target is None:
            skipped.append(
                f"query {f.query.name}: {len(f.anomalies)} anomalies on series whose labels name no workload or "
                f"namespace ({f.anomalies[0].series[:200]}): set the query's target"
            )
    placed.sort(key=lambda f: -f.anomalies[0].score)
    already = known(client, access, cluster, hub) if placed else Known()
    opened = 0
    for f in placed:
        why = already.about(f.target)
        if why is not None:
            result.status.deduplicated += 1
            skipped.append(f"query {f.query.name}: {len(f.anomalies)} new anomalies on {_key(f.target)}: {why}")
            continue
        if opened >= MAX_INCIDENTS_PER_TICK:
            skipped.append(
                f"query {f.query.name}: {len(f.anomalies)} new anomalies on {_key(f.target)}: over "
                f"{MAX_INCIDENTS_PER_TICK} Incidents in one scan, see the earlier ones"
            )
            continue
        obj, created = client.create(INCIDENT, _manifest(cluster, f, f.target, namespace, severity, model))
        ref = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        opened += 1
        already.incidents.append((f.target, ref))  # a second query on the same target joins this one
        if created:
            result.status.incidents_opened += 1
            result.status.last_incident = ref
            result.opened.append(
                (ref, f"Incident {ref} (source anomaly) for {_key(f.target)}: {f.anomalies[0].summary}")
            )
    result.status.last_skipped = [s[:1024] for s in skipped[:MAX_SKIPPED]]


def _manifest(
    cluster: str, f: Finding, target: Target, namespace: str, severity: Severity, model: GatewayConfig | None
) -> dict[str, Any]:
    ref = WorkloadReference(kind=target.kind, name=target.name, namespace=target.namespace or None)
    explanation = None
    if model is not None:
        said = explain.explain(model, _key(target), f.anomalies)
        explanation = said.text or f"(No explanation: {said.error})"[:2048]
    return incident.manifest(
        incident_name(cluster, f),
        namespace,
        f"The anomaly scan of ManagedCluster {cluster} (query {f.query.name})",
        f.anomalies,
        f.series,
        severity=severity,
        cluster=cluster,
        target=ref,
        start=f.start,
        end=None,
        labels={CLUSTER_LABEL: cluster[:63], QUERY_LABEL: f.query.name, SOURCE_LABEL: "anomaly"},
        explanation=explanation,
    )
