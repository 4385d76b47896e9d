"""The PromQL of each forecast resource: its usage over time and the limits it is held to, for one object
(summed over its pods) or grouped by namespace / claim (the periodic forecast's objects).

Metric names are the common exporters': cAdvisor (container_*), kube-state-metrics (kube_*), the kubelet's
volume stats and dcgm-exporter (DCGM_FI_DEV_FB_*, MiB).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.api.analysisrun import ForecastResource, ForecastTarget, ForecastTargetKind, LimitKind

MIB = 1024 * 1024


@dataclass(frozen=True)
class Queries:
    unit: str
    usage: str
    limits: dict[LimitKind, str]


def selector(target: ForecastTarget, namespace: str) -> str:
    """Label matchers for the target's pods (workloads: pods named after them, as their controllers name them)."""
    ns = target.namespace or namespace
    if target.kind == ForecastTargetKind.NAMESPACE:
        return f'namespace="{target.name}"'
    if target.kind == ForecastTargetKind.PERSISTENT_VOLUME_CLAIM:
        return f'namespace="{ns}",persistentvolumeclaim="{target.name}"'
    if target.kind == ForecastTargetKind.POD:
        return f'namespace="{ns}",pod="{target.name}"'
    name = target.name.replace(".", "\\\\.")  # a literal dot in the regex, escaped once more for PromQL's string
    return f'namespace="{ns}",pod=~"{name}-[^-]+(-[^-]+)?"'


def queries(resource: ForecastResource, match: str, by: str = "") -> Queries:
    """`match`: label matchers; `by`: the grouping labels ("" sums everything to one series)."""
    group = f" by ({by})" if by else ""
    if resource == ForecastResource.STORAGE:
        return Queries(
            "bytes",
            f"sum{group}(kubelet_volume_stats_used_bytes{{{match}}})",
            {LimitKind.CAPACITY: f"sum{group}(kubelet_volume_stats_capacity_bytes{{{match}}})"},
        )
    if resource == ForecastResource.GPU_MEMORY:
        used, free = (f"DCGM_FI_DEV_FB_{m}{{{match}}}" for m in ("USED", "FREE"))
        return Queries(
            "bytes", f"sum{group}({used}) * {MIB}", {LimitKind.CAPACITY: f"sum{group}({used} + {free}) * {MIB}"}
        )
    name = str(resource)
    container = f'{match},container!="",container!="POD"'
    usage = (
        f"sum{group}(rate(container_cpu_usage_seconds_total{{{container}}}[5m]))"
        if resource == ForecastResource.CPU
        else f"sum{group}(container_memory_working_set_bytes{{{container}}})"
    )
    limits = {
        LimitKind.REQUESTS: f'sum{group}(kube_pod_container_resource_requests{{{match},resource="{name}"}})',
        LimitKind.LIMITS: f'sum{group}(kube_pod_container_resource_limits{{{match},resource="{name}"}})',
    }
    namespace = next((m for m in match.split(",") if m.startswith("namespace=")), None)
    if namespace is not None:
        limits[LimitKind.QUOTA] = (
            f'min{group}(kube_resourcequota{{{namespace},type="hard",resource=~"limits.{name}|{name}"}})'
        )
    if not by:
        limits[LimitKind.NODE_ALLOCATABLE] = f'sum(kube_node_status_allocatable{{resource="{name}"}})'
    return Queries("cores" if resource == ForecastResource.CPU else "bytes", usage, limits)


def default_resources(target: ForecastTarget) -> list[ForecastResource]:
    if target.kind == ForecastTargetKind.PERSISTENT_VOLUME_CLAIM:
        return [ForecastResource.STORAGE]
    return [ForecastResource.CPU, ForecastResource.MEMORY]
