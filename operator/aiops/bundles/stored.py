"""Bundles kept in the cluster for rootCause runs (`spec.bundle` of an AnalysisRun).

Supported: a .tar.gz in one key of a ConfigMap's `binaryData`, in the run's namespace, read through the
operator's own API client (its RBAC reads ConfigMaps) and unpacked in memory like any bundle. A bundle on
a PersistentVolumeClaim would need the claim mounted into the operator's pod, which the operator does not
do: such a run fails saying so and what to use instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api.analysisrun import BundleSource
from aiops.bundles import archive, reader
from aiops.bundles.archive import BundleError
from aiops.core import kube


def load(spec: BundleSource, namespace: str, api: client.ApiClient | None = None) -> reader.Snapshot:
    """The snapshot of the bundle `spec` names (read through `api`, default the operator's own client);
    BundleError when it cannot be had."""
    if spec.persistent_volume_claim is not None:
        pvc = spec.persistent_volume_claim
        raise BundleError(
            f"persistentVolumeClaim {pvc.claim_name} (path {pvc.path}): reading a bundle from a volume needs the "
            "claim mounted into the operator, which it does not do; put the .tar.gz (at most 1 MiB) in a "
            "ConfigMap's binaryData and use spec.bundle.configMap, or run `aiops analyze` on it"
        )
    assert spec.config_map is not None  # BundleSource holds exactly one source
    ref = spec.config_map
    where = f"ConfigMap {namespace}/{ref.name} key {ref.key}"
    data = config_map_bytes(api or kube.api_client(), namespace, ref.name, ref.key)
    return from_archive(data, where)


def config_map_bytes(api: client.ApiClient, namespace: str, name: str, key: str) -> bytes:
    """One key of a ConfigMap's binaryData, decoded."""
    where = f"ConfigMap {namespace}/{name}"
    try:
        cm = json.loads(kube.request(api, "GET", f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"))
    except ApiException as exc:
        why = {
            404: "does not exist",
            403: "may not be read by the operator (HTTP 403): grant its ServiceAccount `get` on configmaps there",
        }.get(exc.status, f"cannot be read: HTTP {exc.status} {exc.reason}")
        raise BundleError(f"{where} {why}") from None
    binary = cm.get("binaryData") or {}
    if key not in binary:
        text_keys = ", ".join(sorted(cm.get("data") or {})) or "none"
        raise BundleError(
            f"{where} has no key {key} in binaryData (binaryData keys: {', '.join(sorted(binary)) or 'none'}; "
            f"data keys: {text_keys}); create it with `kubectl create configmap {name} --from-file={key}=BUNDLE.tar.gz`"
        )
    try:
        return base64.b64decode(binary[key], validate=True)
    except binascii.Error as exc:
        raise BundleError(f"{where} key {key}: binaryData is not base64: {exc}") from None


def from_archive(data: bytes, where: str) -> reader.Snapshot:
    """The snapshot of a bundle archive held in memory."""
    return reader.parse(archive.read_archive(io.BytesIO(data), where, reader.wanted, archive.DEFAULT_LIMITS))
