"""The kill switch: while it is set, the operator takes no SOP action and starts no model call.

Two places, read on every pass (from watches where the process keeps them: `watch`), so setting or lifting one
needs no restart:
- fleet-wide: the ConfigMap `aiops-suspend` in the operator's namespace (AIOPS_NAMESPACE); its existence
  suspends, its keys `reason`, `by` and `since` say why, who and when;
- one cluster: `spec.suspend` of its ManagedCluster (`reason`, `by`, `since`); for Incidents without a
  clusterRef, of the ManagedCluster that is the local cluster (no kubeconfig Secret).
`aiops suspend [--cluster NAME]` and `aiops resume [--cluster NAME]` set and lift them. A switch that cannot
be read counts as set: the operator does not act on what it cannot check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aiops import GROUP, VERSION
from aiops.api import MANAGED_CLUSTER
from aiops.api.managedcluster import ManagedClusterSpec
from aiops.api.managedcluster import Suspension as ClusterSuspension
from aiops.clusters import informer
from aiops.core import kube

CONFIGMAP = "aiops-suspend"


@dataclass(frozen=True)
class Suspension:
    where: str  # "fleet-wide (ConfigMap aiops-system/aiops-suspend)", "cluster prod (ManagedCluster prod)"
    by: str | None = None
    reason: str | None = None
    since: str | None = None
    lift: str = "aiops resume"

    def message(self) -> str:
        who = f" by {self.by}" if self.by else ""
        since = f" since {self.since}" if self.since else ""
        why = f": {self.reason}" if self.reason else ""
        return f"suspended {self.where}{who}{since}{why}; lift it with `{self.lift}`"[:1024]


def fleet_from(data: dict[str, str] | None, namespace: str) -> Suspension:
    data = data or {}
    return Suspension(
        f"fleet-wide (ConfigMap {namespace}/{CONFIGMAP})",
        data.get("by") or None,
        data.get("reason") or None,
        data.get("since") or None,
    )


def cluster_from(name: str, spec: ManagedClusterSpec) -> Suspension | None:
    s = spec.suspend
    if s is None:
        return None
    since = s.since.strftime("%Y-%m-%dT%H:%M:%SZ") if s.since else None
    return Suspension(f"for cluster {name} (ManagedCluster {name} spec.suspend)", s.by, s.reason, since,
                      f"aiops resume --cluster {name}")  # fmt: skip


def fleet(namespace: str) -> Suspension | None:
    if (seen := _watched_in(namespace)) is not None:
        cm = seen.configmap.get(namespace, CONFIGMAP)
        return fleet_from(cm.get("data"), namespace) if cm is not None else None
    try:
        cm = kube.core().read_namespaced_config_map(CONFIGMAP, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        return Suspension(f"fleet-wide: ConfigMap {namespace}/{CONFIGMAP} cannot be read (HTTP {exc.status})")
    return fleet_from(cm.data, namespace)


def from_object(obj: dict[str, Any]) -> Suspension | None:
    name = obj["metadata"]["name"]
    try:
        return cluster_from(name, ManagedClusterSpec.model_validate(obj.get("spec") or {}))
    except ValidationError:  # its own Ready condition says what is wrong; a raw spec.suspend still counts
        present = "suspend" in (obj.get("spec") or {})
        return Suspension(f"for cluster {name} (ManagedCluster {name}, invalid spec)") if present else None


def current(cluster: str | None, namespace: str, client_: kube.Client = kube.API) -> Suspension | None:
    """The suspension that holds for an Incident of `cluster` (None: the local cluster), fleet-wide first."""
    if found := fleet(namespace):
        return found
    seen = _watched_in(namespace) if client_ is kube.API else None  # the watches see this cluster only
    try:
        if cluster is not None:
            # Not seen yet (created a moment ago, or absent): the API server says which.
            obj = (seen.clusters.get("", cluster) if seen else None) or client_.get(MANAGED_CLUSTER, cluster)
            return from_object(obj) if obj else None
        clusters = seen.clusters.items() if seen else client_.list(MANAGED_CLUSTER)
        local = [o for o in clusters if not (o.get("spec") or {}).get("kubeconfigSecretRef")]
    except ApiException as exc:
        return Suspension(f"for cluster {cluster or 'local'}: its ManagedCluster cannot be read (HTTP {exc.status})")
    return next(filter(None, map(from_object, local)), None)


def suspend(cluster: str | None, namespace: str, reason: str | None, by: str | None, now: datetime) -> str:
    """Sets the switch; what was set, as a sentence. Raises ApiException (a missing ManagedCluster: 404)."""
    since = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if cluster is not None:
        value = ClusterSuspension(reason=reason, by=by, since=now).wire()
        kube.API.patch(MANAGED_CLUSTER, cluster, None, {"spec": {"suspend": value}})
        return cluster_from(cluster, ManagedClusterSpec.model_validate({"suspend": value})).message()
    data = {k: v for k, v in (("reason", reason), ("by", by), ("since", since)) if v}
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=CONFIGMAP, namespace=namespace), data=data)
    try:
        kube.core().create_namespaced_config_map(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        kube.core().replace_namespaced_config_map(CONFIGMAP, namespace, body)
    return fleet_from(data, namespace).message()


def resume(cluster: str | None, namespace: str) -> bool:
    """Lifts the switch; False when it was not set. Raises ApiException (a missing ManagedCluster: 404)."""
    if cluster is not None:
        obj = kube.API.get(MANAGED_CLUSTER, cluster)
        if obj is None:
            raise ApiException(status=404, reason=f"ManagedCluster {cluster} does not exist")
        if "suspend" not in (obj.get("spec") or {}):
            return False
        kube.API.patch(MANAGED_CLUSTER, cluster, None, {"spec": {"suspend": None}})
        return True
    try:
        kube.core().delete_namespaced_config_map(CONFIGMAP, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@dataclass
class Watched:
    """Both switches kept by watches: every diagnosis and every remediation tick reads them, two requests each
    otherwise. The ConfigMap is watched by name, in its namespace (the Role grants that one ConfigMap only)."""

    namespace: str
    cache: informer.Cache

    @property
    def clusters(self) -> informer.Informer:
        return self.cache.informers[CLUSTERS_PATH]

    @property
    def configmap(self) -> informer.Informer:
        return self.cache.informers[_configmaps_path(self.namespace)]

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.cache.informers.values())


CLUSTERS_PATH = f"/apis/{GROUP}/{VERSION}/{MANAGED_CLUSTER.plural}"
_watched: Watched | None = None


def _configmaps_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


def watch(api: client.ApiClient, namespace: str) -> None:
    """Keeps both switches by watches from now on, in this process (the operator, a worker); until the watches have
    listed, and whenever one is down, the switches are read from the API server as before."""
    global _watched
    if _watched is None:
        path = _configmaps_path(namespace)
        cache = informer.Cache(api, (CLUSTERS_PATH, path), {path: f"metadata.name={CONFIGMAP}"})
        _watched = Watched(namespace, cache.start())


def stop_watching() -> None:
    global _watched
    if _watched is not None:
        _watched.cache.stop()
        _watched = None


def _watched_in(namespace: str) -> Watched | None:
    seen = _watched
    return seen if seen is not None and seen.namespace == namespace and seen.ready() else None
