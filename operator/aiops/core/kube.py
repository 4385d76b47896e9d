"""The operator's Kubernetes client: configuration and the few calls the reconcilers make."""

from __future__ import annotations

import base64
import functools
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops import GROUP, VERSION
from aiops.api import Kind


@functools.cache
def api_client() -> client.ApiClient:
    """In-cluster configuration when running in a pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        # Read $KUBECONFIG now: the library only looks at it when it is first imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def get(kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        if kind.namespaced:
            return custom().get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        return custom().get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def patch_status(kind: Kind, name: str, namespace: str | None, status: dict[str, Any]) -> dict[str, Any]:
    """A merge patch of the status subresource: only the given top-level fields change."""
    body = {"status": status}
    merge = "application/merge-patch+json"
    if kind.namespaced:
        return custom().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, kind.plural, name, body, _content_type=merge
        )
    return custom().patch_cluster_custom_object_status(GROUP, VERSION, kind.plural, name, body, _content_type=merge)


def create(kind: Kind, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Creates the object; if it already exists returns the stored one. (object, created)"""
    namespace = body["metadata"].get("namespace")
    try:
        if kind.namespaced:
            return custom().create_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, body), True
        return custom().create_cluster_custom_object(GROUP, VERSION, kind.plural, body), True
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = get(kind, body["metadata"]["name"], namespace)
    if existing is None:  # deleted between our create and get: let the caller retry
        raise RuntimeError(f"{kind.kind} {namespace}/{body['metadata']['name']} vanished right after a conflict")
    return existing, False


def request(
    api: client.ApiClient,
    method: str,
    path: str,
    query: dict[str, Any] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 10,
) -> bytes:
    """A raw API call through the client's connection settings (auth, TLS); the body as bytes.

    For reading objects exactly as the server returns them and for paths without a typed API.
    Raises ApiException for HTTP errors, like the typed calls.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api.param_serialize(
        method,
        path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(*params, _request_timeout=timeout)
    data = resp.read()
    if resp.status >= 400:
        raise ApiException(status=resp.status, reason=resp.reason, body=data.decode("utf-8", errors="replace"))
    return data


def read_secret_key(name: str, namespace: str, key: str) -> bytes | None:
    """One key of a Secret, decoded; None when the Secret or the key is missing."""
    try:
        secret = core().read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    value = (secret.data or {}).get(key)
    return base64.b64decode(value) if value is not None else None
