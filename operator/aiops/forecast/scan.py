"""The periodic capacity forecast of a ManagedCluster (spec.capacityForecast): per namespace (cpu, memory,
gpuMemory) and per PersistentVolumeClaim (storage), and one warning Incident per (resource, object) expected
to reach a limit within warnHours.

One tick (controllers/capacityforecast.py calls `tick` every AIOPS_CAPACITY_FORECAST_TICK_S):
1. Due: never run, or last run intervalSeconds ago or more (status.capacityForecast.lastRunTime: a restarted
   operator does not run again early).
2. Per resource one grouped range query (aiops.forecast.query): every namespace or claim it returns is
   forecast over horizonHours and compared with its limits.
3. An object whose forecast reaches a hard limit (limits, quota, node allocatable, capacity: not requests)
   within warnHours opens an Incident (source forecast) named from
   cluster, resource, object and how many such Incidents were resolved before: a retried or restarted tick
   finds the one it made (create is idempotent by name), and none opens while one is open.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops import API_VERSION, GROUP
from aiops.api import INCIDENT
from aiops.api.analysisrun import ForecastResource, LimitKind, ResourceForecast
from aiops.api.common import LocalObjectReference, TimeWindow
from aiops.api.incident import IncidentPhase, IncidentSource, IncidentSpec, WorkloadReference
from aiops.api.managedcluster import CapacityForecast, CapacityForecastStatus
from aiops.clusters.prometheus import PrometheusSource
from aiops.core import kube
from aiops.forecast import resources
from aiops.forecast.query import forecast_objects

CLUSTER_LABEL = f"{GROUP}/cluster"
KEY_LABEL = f"{GROUP}/capacity-forecast"  # a digest of (cluster, resource, object)
SOURCE_LABEL = f"{GROUP}/source"
MAX_AT_RISK = 20
MAX_ERRORS = 10
MAX_INCIDENTS_PER_TICK = 10  # more at once is a storm: the rest open on the next runs


@dataclass
class TickResult:
    status: CapacityForecastStatus
    opened: list[str] = field(default_factory=list)  # messages for Events
    failed: list[str] = field(default_factory=list)


def due(config: CapacityForecast, state: CapacityForecastStatus, now: datetime) -> bool:
    last = state.last_run_time
    return last is None or now - last >= timedelta(seconds=config.interval_seconds)


def _match(config: CapacityForecast) -> str:
    return f'namespace=~"{"|".join(config.namespaces)}"' if config.namespaces else 'namespace!=""'


def _object(resource: ForecastResource, labels: dict[str, str]) -> tuple[str, str, str]:
    """(kind, namespace, name) of a grouped series."""
    if resource == ForecastResource.STORAGE:
        return "PersistentVolumeClaim", labels.get("namespace", ""), labels.get("persistentvolumeclaim", "")
    return "Namespace", labels.get("namespace", ""), labels.get("namespace", "")


def tick(
    client: kube.Client,
    cluster: dict[str, Any],
    config: CapacityForecast,
    prometheus: PrometheusSource | None,
    now: datetime,
    *,
    namespace: str,
    unavailable: str | None = None,
) -> TickResult | None:
    """One forecast of the cluster when due (None when not). Never raises for what Prometheus answers; API
    errors creating Incidents propagate (the next tick retries: the names are stable)."""
    name = cluster["metadata"]["name"]
    state = CapacityForecastStatus.model_validate(((cluster.get("status") or {}).get("capacityForecast")) or {})
    if not due(config, state, now):
        return None
    result = TickResult(state.model_copy(deep=True))
    result.status.last_run_time = now
    if prometheus is None:
        error = unavailable or f"ManagedCluster {name} has no spec.endpoints.prometheus: the forecast needs one"
        if error not in state.errors:
            result.failed.append(error)
        result.status.errors, result.status.at_risk, result.status.objects = [error[:1024]], [], 0
        return result
    warn_until = now + timedelta(hours=config.warn_hours)
    risky: list[tuple[ResourceForecast, tuple[str, str, str]]] = []
    errors, count = [], 0
    for resource in config.resources:
        by = "namespace,persistentvolumeclaim" if resource == ForecastResource.STORAGE else "namespace"
        out = forecast_objects(
            prometheus,
            resource,
            resources.queries(resource, _match(config), by),
            lambda labels, r=resource: "/".join(x for x in dict.fromkeys(_object(r, labels)) if x),
            now=now,
            history=timedelta(days=config.history_days),
            horizon=timedelta(hours=config.horizon_hours),
            level=0.8,
        )
        if isinstance(out, str):
            errors.append(f"{resource}: {out}")
            continue
        for o in out:
            count += 1
            if (at := hard_exhaustion(o.entry)) is not None and at <= warn_until:
                risky.append((o.entry, _object(resource, o.labels)))
    result.failed += [e for e in errors if e[:1024] not in state.errors]
    result.status.errors = [e[:1024] for e in errors[:MAX_ERRORS]]
    result.status.objects = count
    risky.sort(key=lambda r: hard_exhaustion(r[0]))
    result.status.at_risk = [_risk(e) for e, _ in risky[:MAX_AT_RISK]]
    _open(client, name, config, risky, result, namespace, now)
    return result


def _first_hard_crossing(e: ResourceForecast):
    """The first hard limit the forecast reaches, or None. Requests are left out: usage above its requests is
    common and no outage (the run's status still reports the crossing), so it pages nobody."""
    hard = [c for c in e.limits if c.exhausted_at and c.kind != LimitKind.REQUESTS]
    return min(hard, key=lambda c: c.exhausted_at, default=None)


def hard_exhaustion(e: ResourceForecast) -> datetime | None:
    """When the forecast first reaches a hard limit."""
    first = _first_hard_crossing(e)
    return first.exhausted_at if first else None


def _risk(e: ResourceForecast) -> str:
    first = _first_hard_crossing(e)
    at = f"{first.exhausted_at:%Y-%m-%dT%H:%MZ}"
    return f"{e.resource} of {e.object} reaches {first.kind} ({first.value:g} {e.unit}) at {at}"[:1024]


def _key(cluster: str, resource: str, obj: tuple[str, str, str]) -> str:
    return hashlib.sha256(f"{cluster}\n{resource}\n{'/'.join(obj)}".encode()).hexdigest()[:16]


def _open(
    client: kube.Client,
    cluster: str,
    config: CapacityForecast,
    risky: list[tuple[ResourceForecast, tuple[str, str, str]]],
    result: TickResult,
    namespace: str,
    now: datetime,
) -> None:
    if not risky:
        return
    mine: dict[str, list[dict]] = {}
    for obj in client.list(INCIDENT, namespace):
        labels = obj["metadata"].get("labels") or {}
        if labels.get(CLUSTER_LABEL) == cluster[:63] and KEY_LABEL in labels:
            mine.setdefault(labels[KEY_LABEL], []).append(obj)
    opened = 0
    for entry, obj in risky:
        key = _key(cluster, entry.resource, obj)
        earlier = mine.get(key, [])
        if any((i.get("status") or {}).get("phase") != IncidentPhase.RESOLVED for i in earlier):
            continue  # one is open: it already says so
        if opened >= MAX_INCIDENTS_PER_TICK:
            break
        name = f"capacity-{cluster[:80]}-{entry.resource.lower()}-{key}-{len(earlier)}"
        body = manifest(cluster, config, entry, obj, name, namespace, key, now)
        made, created = client.create(INCIDENT, body)
        opened += 1
        if created:
            ref = f"{made['metadata']['namespace']}/{made['metadata']['name']}"
            result.status.incidents_opened += 1
            result.status.last_incident = ref
            result.opened.append(f"Incident {ref} (source forecast): {_risk(entry)}")


def manifest(
    cluster: str,
    config: CapacityForecast,
    entry: ResourceForecast,
    obj: tuple[str, str, str],
    name: str,
    namespace: str,
    key: str,
    now: datetime,
) -> dict[str, Any]:
    kind, ns, obj_name = obj
    h = entry.at_horizon
    lines = [
        f"The capacity forecast of ManagedCluster {cluster} expects {entry.resource} of {entry.object} to reach a "
        f"limit within {config.warn_hours:g}h.",
        f"Now: {entry.current:g} {entry.unit}; in {config.horizon_hours:g}h: {h.mean:g} (80% interval {h.lower:g} .. "
        f"{h.upper:g}); method {entry.method}, {entry.points} points.",
    ]
    lines += [
        f"- {c.kind} {c.value:g}: reached at {c.exhausted_at:%Y-%m-%dT%H:%MZ}"
        if c.exhausted_at
        else f"- {c.kind} {c.value:g}: not reached in the horizon"
        + (f" (upper bound at {c.earliest_at:%Y-%m-%dT%H:%MZ})" if c.earliest_at else "")
        for c in entry.limits
    ]
    spec = IncidentSpec(
        title=f"Capacity: {entry.resource} of {entry.object} reaches a limit soon"[:256],
        description="\n".join(lines)[:16384],
        severity=config.severity,
        source=IncidentSource.FORECAST,
        cluster_ref=LocalObjectReference(name=cluster),
        target=WorkloadReference(kind=kind, name=obj_name, namespace=ns or None),
        window=TimeWindow(start=now - timedelta(days=config.history_days), end=None),
    )
    labels = {CLUSTER_LABEL: cluster[:63], KEY_LABEL: key, SOURCE_LABEL: "forecast"}
    labels["app.kubernetes.io/managed-by"] = "aiops-operator"
    return {
        "apiVersion": API_VERSION,
        "kind": INCIDENT.kind,
        "metadata": {"name": name[:253], "namespace": namespace, "labels": labels},
        "spec": spec.wire(),
    }
