"""The periodic anomaly scan: a kopf timer on each ManagedCluster with spec.anomalyScan (aiops.anomaly.scan).

The timer ticks every AIOPS_ANOMALY_SCAN_TICK_S and each tick runs only the queries that are due, so each
query keeps its own intervalSeconds and a spec change applies on the next tick without re-arming anything.
The scan's state (per query: lastScanTime, scannedUntil, the last error) is written to status.anomalyScan
through kopf's patch, beside the probe's fields; Events say when an Incident opens or a query starts failing.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from aiops import GROUP, VERSION, settings
from aiops.anomaly import scan
from aiops.api import MANAGED_CLUSTER
from aiops.api.conditions import Reason
from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters import suspension
from aiops.clusters.access import ClusterAccess, ClusterAccessError, cluster_access
from aiops.core import kube
from aiops.core.status import now_utc

log = logging.getLogger(__name__)
TICK_S = settings.current().anomaly_scan_tick_s


def scan_cluster(body: dict[str, Any], patch: kopf.Patch | dict) -> None:
    """One tick for one cluster; the outcome goes into `patch` and kopf Events."""
    try:
        spec = ManagedClusterSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # the reconciler's Ready condition says what is wrong with the spec
    if spec.anomaly_scan is None or spec.anomaly_scan.suspend:
        return
    config = settings.current()
    name = body["metadata"]["name"]
    access: ClusterAccess | None = None
    unavailable = None
    try:
        access = cluster_access(name, config)
    except ClusterAccessError as exc:
        unavailable = str(exc)
    result = scan.tick(
        kube.API,
        body,
        spec.anomaly_scan,
        access,
        now_utc(),
        namespace=spec.anomaly_scan.incident_namespace or config.namespace,
        batch=config.anomaly_scan_batch,
        model=None if suspension.current(name, config.namespace) else config.llm,  # the kill switch: no model calls
        unavailable=unavailable,
    )
    if result is None:
        return
    patch.setdefault("status", {})["anomalyScan"] = result.status.wire()
    for _, message in result.opened:
        kopf.event(body, type="Normal", reason=Reason.INCIDENT_OPENED, message=message[:1024])
    for query, error in result.failed:
        kopf.event(body, type="Warning", reason=Reason.ANOMALY_SCAN_FAILED, message=f"query {query}: {error}"[:1024])


if TICK_S:

    @kopf.timer(
        GROUP,
        VERSION,
        MANAGED_CLUSTER.plural,
        id="anomaly-scan",
        interval=TICK_S,
        initial_delay=min(TICK_S, 5),
        when=lambda spec, **_: bool(spec.get("anomalyScan")),
    )
    def anomaly_scan(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        scan_cluster(dict(body), patch)
