"""How to reach a cluster: its API client, its Prometheus, and the sources of its logs (Loki) and traces
(Tempo, or else Jaeger) to read evidence from.

The local cluster uses the operator's own settings; a ManagedCluster its kubeconfig Secret and
spec.endpoints, with bearer tokens read from the Secrets they reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from aiops.api import MANAGED_CLUSTER
from aiops.api.common import SecretKeyReference
from aiops.api.managedcluster import ClusterEndpoints, ManagedClusterSpec
from aiops.clusters import informer, probe
from aiops.clusters.alertmanager import AlertmanagerSource
from aiops.clusters.jaeger import JaegerSource
from aiops.clusters.loki import LokiSource
from aiops.clusters.prometheus import PrometheusSource
from aiops.clusters.telemetry import LogSource, TraceSource
from aiops.clusters.tempo import TempoSource
from aiops.core import kube
from aiops.settings import Settings


class ClusterAccessError(Exception):
    """The cluster, or a Secret it needs, cannot be read; the message says which."""


@dataclass
class ClusterAccess:
    api: client.ApiClient
    prometheus: PrometheusSource | None
    loki_url: str | None  # kept for the Loki collector until it reads `logs`
    loki_token: str | None = None
    logs: LogSource | None = None
    traces: TraceSource | None = None  # Tempo when the cluster has one, else Jaeger
    cache: informer.Cache | None = None  # watch-fed objects (the local cluster, when the operator runs)
    alertmanager: AlertmanagerSource | None = None  # a ManagedCluster's, for what is already alerting


def _secret_value(ref: SecretKeyReference | None, settings: Settings) -> str | None:
    if ref is None:
        return None
    raw = kube.read_secret_key(ref.name, ref.namespace or settings.namespace, ref.key)
    if raw is None:
        raise ClusterAccessError(
            f"Secret {ref.namespace or settings.namespace}/{ref.name} key {ref.key!r} does not exist"
        )
    return raw.decode().strip()


def local_sources(settings: Settings) -> tuple[LogSource | None, TraceSource | None]:
    """The local cluster's log and trace sources, from AIOPS_LOKI_URL, AIOPS_TEMPO_URL, AIOPS_JAEGER_URL."""
    logs = LokiSource(settings.loki_url) if settings.loki_url else None
    traces: TraceSource | None = None
    if settings.tempo_url:
        traces = TempoSource(settings.tempo_url)
    elif settings.jaeger_url:
        traces = JaegerSource(settings.jaeger_url)
    return logs, traces


def endpoint_sources(
    endpoints: ClusterEndpoints | None, token: Callable[[SecretKeyReference | None], str | None]
) -> tuple[LogSource | None, TraceSource | None]:
    """A ManagedCluster's log and trace sources from spec.endpoints; `token` reads an authSecretRef."""
    if endpoints is None:
        return None, None
    logs: LogSource | None = None
    traces: TraceSource | None = None
    if (loki := endpoints.loki) is not None:
        logs = LokiSource(loki.url, token(loki.auth_secret_ref), bool(loki.insecure_skip_verify))
    if (tempo := endpoints.tempo) is not None:
        traces = TempoSource(tempo.url, token(tempo.auth_secret_ref), bool(tempo.insecure_skip_verify))
    elif (jaeger := endpoints.jaeger) is not None:
        traces = JaegerSource(jaeger.url, token(jaeger.auth_secret_ref), bool(jaeger.insecure_skip_verify))
    return logs, traces


def cluster_access(cluster_name: str | None, settings: Settings) -> ClusterAccess:
    """The local cluster with the operator's own endpoints, or a ManagedCluster's."""
    if cluster_name is None:
        prom = PrometheusSource(settings.prometheus_url) if settings.prometheus_url else None
        logs, traces = local_sources(settings)
        return ClusterAccess(
            kube.api_client(), prom, settings.loki_url, logs=logs, traces=traces, cache=informer.local()
        )
    obj = kube.get(MANAGED_CLUSTER, cluster_name)
    if obj is None:
        raise ClusterAccessError(f"spec.clusterRef: ManagedCluster {cluster_name!r} does not exist")
    spec = ManagedClusterSpec.model_validate(obj.get("spec") or {})
    try:
        api = probe.cluster_client(spec, settings.namespace)
    except (probe.SecretMissing, probe.KubeconfigError) as exc:
        raise ClusterAccessError(f"ManagedCluster {cluster_name}: {exc}") from None
    endpoints = spec.endpoints
    prom = None
    if endpoints and endpoints.prometheus:
        prom = PrometheusSource(
            endpoints.prometheus.url,
            _secret_value(endpoints.prometheus.auth_secret_ref, settings),
            bool(endpoints.prometheus.insecure_skip_verify),
        )
    tokens: dict[tuple[str, str, str], str | None] = {}

    def token(ref: SecretKeyReference | None) -> str | None:
        if ref is None:
            return None
        key = (ref.namespace or "", ref.name, ref.key)
        if key not in tokens:
            tokens[key] = _secret_value(ref, settings)
        return tokens[key]

    logs, traces = endpoint_sources(endpoints, token)
    loki = endpoints.loki if endpoints else None
    am = endpoints.alertmanager if endpoints else None
    alertmanager = AlertmanagerSource(am.url, token(am.auth_secret_ref), bool(am.insecure_skip_verify)) if am else None
    return ClusterAccess(
        api,
        prom,
        loki.url if loki else None,
        token(loki.auth_secret_ref) if loki else None,
        logs,
        traces,
        alertmanager=alertmanager,
    )
