"""How to reach a cluster: its API client and the Prometheus and Loki endpoints to read evidence from.

The local cluster uses the operator's own settings; a ManagedCluster its kubeconfig Secret and
spec.endpoints, with bearer tokens read from the Secrets they reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client

from aiops.api import MANAGED_CLUSTER
from aiops.api.managedcluster import ManagedClusterSpec
from aiops.clusters import probe
from aiops.clusters.prometheus import PrometheusSource
from aiops.core import kube
from aiops.settings import Settings


class ClusterAccessError(Exception):
    """The cluster, or a Secret it needs, cannot be read; the message says which."""


@dataclass
class ClusterAccess:
    api: client.ApiClient
    prometheus: PrometheusSource | None
    loki_url: str | None
    loki_token: str | None = None


def _secret_value(ref, settings: Settings) -> str | None:
    if ref is None:
        return None
    raw = kube.read_secret_key(ref.name, ref.namespace or settings.namespace, ref.key)
    if raw is None:
        raise ClusterAccessError(
            f"Secret {ref.namespace or settings.namespace}/{ref.name} key {ref.key!r} does not exist"
        )
    return raw.decode().strip()


def cluster_access(cluster_name: str | None, settings: Settings) -> ClusterAccess:
    """The local cluster with the operator's own endpoints, or a ManagedCluster's."""
    if cluster_name is None:
        prom = PrometheusSource(settings.prometheus_url) if settings.prometheus_url else None
        return ClusterAccess(kube.api_client(), prom, settings.loki_url)
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
    loki = endpoints.loki if endpoints else None
    return ClusterAccess(
        api, prom, loki.url if loki else None, _secret_value(loki.auth_secret_ref, settings) if loki else None
    )
