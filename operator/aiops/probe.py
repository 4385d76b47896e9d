"""Probes one cluster of the fleet: version, nodes, GPU inventory, OpenShift."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import kube
from .api.managedcluster import ManagedClusterSpec

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
PROBE_TIMEOUT_S = 10


class KubeconfigError(ValueError):
    """A kubeconfig Secret that cannot be turned into a client."""


class SecretMissing(LookupError):
    """The kubeconfig Secret, or its key, does not exist (yet)."""


def client_from_kubeconfig(raw: bytes) -> client.ApiClient:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data.get("clusters"):
        raise KubeconfigError("no clusters in the kubeconfig")
    try:
        return config.new_client_from_config_dict(data)
    except (config.ConfigException, KeyError, TypeError) as exc:
        raise KubeconfigError(str(exc)) from None


def cluster_client(spec: ManagedClusterSpec, default_namespace: str) -> client.ApiClient:
    """The local cluster's client, or one built from the ManagedCluster's kubeconfig Secret."""
    ref = spec.kubeconfig_secret_ref
    if ref is None:
        return kube.api_client()
    namespace = ref.namespace or default_namespace
    raw = kube.read_secret_key(ref.name, namespace, ref.key)
    if raw is None:
        raise SecretMissing(
            f"spec.kubeconfigSecretRef: Secret {namespace}/{ref.name} or its key {ref.key!r} does not exist"
        )
    try:
        return client_from_kubeconfig(raw)
    except KubeconfigError as exc:
        raise KubeconfigError(
            f"spec.kubeconfigSecretRef: Secret {namespace}/{ref.name} key {ref.key!r}: {exc}"
        ) from None


def gpu_inventory(nodes: list[Any]) -> dict[str, Any]:
    """Sums allocatable-capacity GPUs per product label over the given V1Node objects."""
    by_product: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "nodes": []})
    for node in nodes:
        count = int((node.status.capacity or {}).get(GPU_RESOURCE, "0") or 0)
        if count <= 0:
            continue
        product = (node.metadata.labels or {}).get(GPU_PRODUCT_LABEL, "unknown")
        by_product[product]["count"] += count
        by_product[product]["nodes"].append(node.metadata.name)
    models = [{"product": p, "count": v["count"], "nodes": sorted(v["nodes"])} for p, v in sorted(by_product.items())]
    return {"total": sum(m["count"] for m in models), "models": models}


def openshift_version(api: client.ApiClient) -> str | None:
    """The desired version from config.openshift.io ClusterVersion, None on plain Kubernetes."""
    try:
        cv = client.CustomObjectsApi(api).get_cluster_custom_object(
            "config.openshift.io", "v1", "clusterversions", "version", _request_timeout=PROBE_TIMEOUT_S
        )
    except ApiException as exc:
        if exc.status in (403, 404):
            return None
        raise
    return (cv.get("status", {}).get("desired") or {}).get("version")


def probe(api: client.ApiClient) -> dict[str, Any]:
    """Status fields for a reachable cluster; raises on any failure to reach it."""
    version = client.VersionApi(api).get_code(_request_timeout=PROBE_TIMEOUT_S)
    nodes = client.CoreV1Api(api).list_node(_request_timeout=PROBE_TIMEOUT_S).items
    ocp = openshift_version(api)
    result: dict[str, Any] = {
        "kubernetesVersion": version.git_version,
        "nodeCount": len(nodes),
        "gpuInventory": gpu_inventory(nodes),
        "capabilities": sorted(["kubernetes"] + (["openshift"] if ocp else [])),
    }
    if ocp:
        result["openshiftVersion"] = ocp
    return result
