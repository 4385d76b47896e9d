"""The operator's Kubernetes client: configuration and the calls of the controllers, executors and ingestor."""

from __future__ import annotations

import base64
import functools
import logging
import os
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops import API_VERSION, GROUP, VERSION
from aiops.api import Kind

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
CONNECTIONS = 32


@functools.cache
def api_client() -> client.ApiClient:
    """In-cluster configuration when running in a pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        # Read $KUBECONFIG now: the library only looks at it when it is first imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    settings = pin_proxy(client.Configuration.get_default_copy())
    # kopf's handler threads, the analysis workers and the notification/correlation passes share it:
    # a pool smaller than them discards connections, and every new one costs a TLS handshake.
    settings.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(settings)


def pin_proxy(settings: client.Configuration) -> client.Configuration:
    """The proxy as the environment gave it when the configuration was loaded, kept. With a token, the kubeconfig
    and in-cluster loaders' refresh hook sets `host` again before every request, and the host setter would read the
    environment's proxies again each time: a tenth of the operator's CPU in a burst of diagnoses."""
    settings.proxy = settings.proxy
    return settings


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


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


class Client(Protocol):
    """The calls that status writers, executors and the ingestor make: the API server, or a fake in unit tests."""

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def list(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]: ...

    def create(self, kind: Kind, body: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...

    def patch(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]: ...

    def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]: ...

    def event(self, kind: Kind, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


class ApiServer:
    """The Client of one cluster: the configured one (in-cluster or KUBECONFIG) unless an ApiClient is given."""

    def __init__(self, api: client.ApiClient | None = None):
        self.api = api

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api or api_client())

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            if kind.namespaced:
                return self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
            return self._custom.get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str | None = None) -> list[dict[str, Any]]:
        """The objects of the kind, in one namespace or (None) in all."""
        if namespace:
            return self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural)["items"]
        return self._custom.list_cluster_custom_object(GROUP, VERSION, kind.plural)["items"]

    def create(self, kind: Kind, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Creates the object; if it already exists returns the stored one. (object, created)

        A missing namespace is an ApiException with status 404.
        """
        namespace = body["metadata"].get("namespace")
        try:
            if kind.namespaced:
                return self._custom.create_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, body), True
            return self._custom.create_cluster_custom_object(GROUP, VERSION, kind.plural, body), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = self.get(kind, body["metadata"]["name"], namespace)
        if existing is None:  # deleted between our create and get: let the caller retry
            raise RuntimeError(f"{kind.kind} {namespace}/{body['metadata']['name']} vanished right after a conflict")
        return existing, False

    def patch(self, kind: Kind, name: str, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of the object (metadata, spec)."""
        if kind.namespaced:
            return self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, name, body, _content_type=MERGE_PATCH
            )
        return self._custom.patch_cluster_custom_object(
            GROUP, VERSION, kind.plural, name, body, _content_type=MERGE_PATCH
        )

    def patch_status(
        self, kind: Kind, name: str, namespace: str | None, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        """A merge patch of the status subresource: only the given top-level fields change. With a
        resourceVersion the API server refuses it (409) when the object changed since it was read."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        if kind.namespaced:
            return self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, kind.plural, name, body, _content_type=MERGE_PATCH
            )
        return self._custom.patch_cluster_custom_object_status(
            GROUP, VERSION, kind.plural, name, body, _content_type=MERGE_PATCH
        )

    def event(self, kind: Kind, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the object, for writers outside a kopf handler (which posts its own).

        Best effort: the status already says it; a failed Event is logged, never raised."""
        meta = obj["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = meta.get("namespace") or "default"
        try:
            client.CoreV1Api(self.api or api_client()).create_namespaced_event(
                namespace,
                {
                    "metadata": {"generateName": f"aiops-{meta['name'][:40]}-", "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": API_VERSION,
                        "kind": kind.kind,
                        "name": meta["name"],
                        "namespace": meta.get("namespace"),
                        "uid": meta["uid"],
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message[:1024],
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                    "source": {"component": "aiops-operator"},
                    "reportingComponent": "aiops-operator",
                },
            )
        except ApiException as exc:
            log.warning("Event %s on %s %s not posted: %s", reason, kind.kind, meta["name"], exc)


API = ApiServer()
get = API.get
create = API.create
patch_status = API.patch_status
