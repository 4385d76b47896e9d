"""The Incident that anomalies open (source anomaly), for anomalyDetection runs and the periodic scan alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiops import API_VERSION
from aiops.anomaly.detect import Anomaly
from aiops.api import INCIDENT
from aiops.api.common import LocalObjectReference, TimeWindow
from aiops.api.incident import IncidentSource, IncidentSpec, Severity, WorkloadReference

SHOWN = 5  # anomalies listed in the description, the most severe first
MANAGED_BY = {"app.kubernetes.io/managed-by": "aiops-operator"}


def manifest(
    name: str,
    namespace: str,
    found_by: str,
    anomalies: list[Anomaly],
    series: int,
    *,
    severity: Severity,
    cluster: str | None,
    target: WorkloadReference | None,
    start: datetime,
    end: datetime | None,
    labels: dict[str, str],
    explanation: str | None = None,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """found_by: what found them, e.g. "AnalysisRun x (anomalyDetection)"; anomalies: the most severe first."""
    top = anomalies[0]
    more = len(anomalies) - 1
    lines = [f"- {a.summary}" for a in anomalies[:SHOWN]]
    if more >= SHOWN:
        lines.append(f"- and {len(anomalies) - SHOWN} more")
    description = f"{found_by} found {len(anomalies)} anomalies in {series} series:\n" + "\n".join(lines)
    if explanation:
        description = f"{explanation}\n\n{description}"
    spec = IncidentSpec(
        title=f"Anomaly in {top.series}{f' (+{more} more)' if more else ''}"[:256],
        description=description[:16384],
        severity=severity,
        source=IncidentSource.ANOMALY,
        cluster_ref=LocalObjectReference(name=cluster) if cluster else None,
        target=target,
        window=TimeWindow(start=start, end=end),
    )
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {**labels, **MANAGED_BY}}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    return {"apiVersion": API_VERSION, "kind": INCIDENT.kind, "metadata": metadata, "spec": spec.wire()}
