"""The periodic capacity forecast: a kopf timer on each ManagedCluster with spec.capacityForecast
(aiops.forecast.scan), the same pattern as the anomaly scan (controllers/anomalyscan.py).

The timer ticks every AIOPS_CAPACITY_FORECAST_TICK_S and a tick forecasts only when intervalSeconds have passed
since status.capacityForecast.lastRunTime, so a spec change or a restart needs no re-arming. The state goes to
status.capacityForecast through kopf's patch; Events say when an Incident opens or a query starts failing.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from aiops import GROUP, VERSION, settings
from aiops.api import MANAGED_CLUSTER
from aiops.api.conditions import Reason
from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters.access import ClusterAccessError, cluster_access
from aiops.core import kube
from aiops.core.status import now_utc
from aiops.forecast import scan

TICK_S = settings.current().capacity_forecast_tick_s


def forecast_cluster(body: dict[str, Any], patch: kopf.Patch | dict) -> None:
    """One tick for one cluster; the outcome goes into `patch` and kopf Events."""
    try:
        spec = ManagedClusterSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return  # the reconciler's Ready condition says what is wrong with the spec
    if spec.capacity_forecast is None or spec.capacity_forecast.suspend:
        return
    config = settings.current()
    name = body["metadata"]["name"]
    prometheus, unavailable = None, None
    try:
        prometheus = cluster_access(name, config).prometheus
    except ClusterAccessError as exc:
        unavailable = str(exc)
    result = scan.tick(
        kube.API,
        body,
        spec.capacity_forecast,
        prometheus,
        now_utc(),
        namespace=spec.capacity_forecast.incident_namespace or config.namespace,
        unavailable=unavailable,
    )
    if result is None:
        return
    patch.setdefault("status", {})["capacityForecast"] = result.status.wire()
    for message in result.opened:
        kopf.event(body, type="Normal", reason=Reason.INCIDENT_OPENED, message=message[:1024])
    for error in result.failed:
        kopf.event(body, type="Warning", reason=Reason.CAPACITY_FORECAST_FAILED, message=error[:1024])


if TICK_S:

    @kopf.timer(
        GROUP,
        VERSION,
        MANAGED_CLUSTER.plural,
        id="capacity-forecast",
        interval=TICK_S,
        initial_delay=min(TICK_S, 5),
        when=lambda spec, **_: bool(spec.get("capacityForecast")),
    )
    def capacity_forecast(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        forecast_cluster(dict(body), patch)
