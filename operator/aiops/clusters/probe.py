"""Probes one cluster of the fleet: API server, version, nodes, GPU inventory, OpenShift, and the
reachability of its monitoring endpoints (Prometheus, Alertmanager, Loki, Tempo, Jaeger).

Everything here answers in plain words: a failure becomes a (reason, message) pair fit for a
status condition, never a stack trace.
"""

from __future__ import annotations

import ssl
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.api.conditions import Reason
from aiops.api.managedcluster import ClusterPhase, Endpoint, ManagedClusterSpec
from aiops.clusters.words import MESSAGE_LIMIT, connection_words, display_url, root, short
from aiops.core import kube

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
PROBE_TIMEOUT_S = 10
API_RETRIES = 1  # one retry per request; the periodic probe is the real retry loop
ENDPOINT_TIMEOUT_S = 5
# Readiness path per monitoring endpoint, relative to its configured URL. Jaeger's query service has its
# health check on another (admin) port; its services list answers 200 on the query port once it can read storage.
READY_PATHS = {
    "prometheus": "/-/ready",
    "alertmanager": "/-/ready",
    "loki": "/ready",
    "tempo": "/ready",
    "jaeger": "/api/services",
}
TITLES = {
    "prometheus": "Prometheus",
    "alertmanager": "Alertmanager",
    "loki": "Loki",
    "tempo": "Tempo",
    "jaeger": "Jaeger",
}

# Reasons for the API server being out of reach (condition APIServerReachable=False).


class KubeconfigError(ValueError):
    """A kubeconfig Secret that cannot be turned into a client."""


class SecretMissing(LookupError):
    """The kubeconfig Secret, or its key, does not exist (yet)."""


class ProbeError(Exception):
    """The API server could not be probed; `reason` is a condition reason, the message plain words."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def client_from_kubeconfig(raw: bytes) -> client.ApiClient:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"not valid YAML: {short(exc)}") from None
    if not isinstance(data, dict) or not data.get("clusters"):
        raise KubeconfigError("no clusters in the kubeconfig")
    configuration = client.Configuration()
    try:
        # persist_config=False: never write refreshed credentials back to a file.
        config.load_kube_config_from_dict(data, client_configuration=configuration, persist_config=False)
    except (config.ConfigException, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KubeconfigError(short(exc) or type(exc).__name__) from None
    if not str(configuration.host or "").startswith(("https://", "http://")):
        raise KubeconfigError(f"the cluster's server {configuration.host!r} is not an https:// URL")
    configuration.retries = API_RETRIES
    return client.ApiClient(configuration=kube.pin_proxy(configuration))


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
    """Sums capacity GPUs per product label over the given V1Node objects."""
    by_product: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "nodes": []})
    for node in nodes:
        try:
            count = int((node.status.capacity or {}).get(GPU_RESOURCE, "0") or 0)
        except (AttributeError, ValueError):
            continue
        if count <= 0:
            continue
        product = (node.metadata.labels or {}).get(GPU_PRODUCT_LABEL, "unknown")
        by_product[product]["count"] += count
        by_product[product]["nodes"].append(node.metadata.name)
    models = [{"product": p, "count": v["count"], "nodes": sorted(v["nodes"])} for p, v in sorted(by_product.items())]
    return {"total": sum(m["count"] for m in models), "models": models}


def not_ready_nodes(nodes: list[Any]) -> list[str]:
    """Names of the nodes whose Ready condition is not True (False, Unknown, or not reported)."""
    bad = []
    for node in nodes:
        conditions = (node.status.conditions if node.status else None) or []
        ready = next((c for c in conditions if c.type == "Ready"), None)
        if ready is None or ready.status != "True":
            bad.append(node.metadata.name)
    return sorted(bad)


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
    inventory = gpu_inventory(nodes)
    not_ready = not_ready_nodes(nodes)
    result: dict[str, Any] = {
        "kubernetesVersion": version.git_version,
        "nodeCount": len(nodes),
        "readyNodeCount": len(nodes) - len(not_ready),
        "gpuInventory": inventory,
        "capabilities": sorted(
            ["kubernetes"] + (["openshift"] if ocp else []) + (["gpu"] if inventory["total"] else [])
        ),
        "notReadyNodes": not_ready,
    }
    if ocp:
        result["openshiftVersion"] = ocp
    return result


def classify_api_error(exc: BaseException, server: str) -> ProbeError:
    """Turns a failed API call into a ProbeError naming what went wrong."""
    if isinstance(exc, ProbeError):
        return exc
    if isinstance(exc, ApiException):
        status = exc.status
        if status == 401:
            return ProbeError(
                Reason.UNAUTHORIZED,
                f"the API server at {server} rejected the credentials (401 Unauthorized): "
                "the token or client certificate in the kubeconfig is invalid or expired",
            )
        if status == 403:
            return ProbeError(
                Reason.FORBIDDEN,
                f"the API server at {server} refused the request (403 Forbidden): the kubeconfig's identity "
                "may not read the version and list nodes",
            )
        return ProbeError(Reason.API_ERROR, f"the API server at {server} answered {status} {exc.reason or ''}".strip())
    cause = root(exc)
    if isinstance(cause, ssl.SSLError) or isinstance(cause, urllib3.exceptions.SSLError):
        return ProbeError(Reason.TLS_ERROR, f"TLS with the API server at {server} failed: {short(cause)}")
    if isinstance(cause, urllib3.exceptions.LocationValueError | urllib3.exceptions.LocationParseError):
        return ProbeError(Reason.INVALID_KUBECONFIG, f"the kubeconfig's server {server!r} is not a valid URL")
    # NewConnectionError subclasses ConnectTimeoutError in urllib3: look at it first.
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        return ProbeError(Reason.UNREACHABLE, f"cannot reach the API server at {server}: {connection_words(cause)}")
    if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
        return ProbeError(Reason.UNREACHABLE, f"the API server at {server} did not answer within {PROBE_TIMEOUT_S}s")
    return ProbeError(Reason.UNREACHABLE, f"cannot reach the API server at {server}: {connection_words(cause)}")


def _server(api: client.ApiClient) -> str:
    return getattr(api.configuration, "host", None) or "(unknown server)"


def probe_api(api: client.ApiClient) -> dict[str, Any]:
    """`probe` with failures turned into ProbeError."""
    try:
        return probe(api)
    except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise classify_api_error(exc, _server(api)) from None


# --- monitoring endpoints -------------------------------------------------------------------------


@dataclass
class EndpointCheck:
    name: str  # prometheus | alertmanager | loki | tempo | jaeger
    url: str
    ok: bool
    reason: str
    message: str

    @property
    def condition_type(self) -> str:
        return f"{TITLES[self.name]}Reachable"


def check_endpoint(
    name: str, url: str, token: str | None = None, insecure: bool = False, timeout: float = ENDPOINT_TIMEOUT_S
) -> EndpointCheck:
    """GETs the endpoint's readiness path; 200 is reachable, anything else names the problem."""
    target = url.rstrip("/") + READY_PATHS[name]
    shown = display_url(target)
    title = TITLES[name]
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def failed(reason: str, words: str) -> EndpointCheck:
        return EndpointCheck(name, url, False, reason, f"{title} at {shown}: {words}"[:MESSAGE_LIMIT])

    try:
        resp = httpx.get(target, headers=headers, timeout=timeout, verify=not insecure, follow_redirects=False)
    except httpx.TimeoutException:
        return failed(Reason.TIMEOUT, f"no answer within {timeout:g}s")
    except httpx.ConnectError as exc:
        cause = root(exc)
        if isinstance(cause, ssl.SSLError) or "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
            return failed(
                Reason.TLS_ERROR, f"TLS failed: {short(exc)} (set insecureSkipVerify for a self-signed certificate)"
            )
        return failed(Reason.CONNECTION_FAILED, connection_words(exc))
    except (httpx.HTTPError, ValueError) as exc:
        return failed(Reason.CONNECTION_FAILED, short(exc) or type(exc).__name__)
    if resp.status_code in (401, 403):
        hint = "the token from authSecretRef was refused" if token else "it needs a token (authSecretRef)"
        return failed(Reason.UNAUTHORIZED, f"{resp.status_code}: {hint}")
    if resp.status_code != 200:
        body = short(resp.text[:200]) if resp.text else ""
        return failed(Reason.NOT_READY, f"answered {resp.status_code}" + (f": {body}" if body else ""))
    return EndpointCheck(name, url, True, Reason.READY, f"{title} at {shown}: ready")


def endpoint_token(endpoint: Endpoint, default_namespace: str) -> str | None:
    """The bearer token from the endpoint's authSecretRef; SecretMissing when it names nothing."""
    ref = endpoint.auth_secret_ref
    if ref is None:
        return None
    namespace = ref.namespace or default_namespace
    raw = kube.read_secret_key(ref.name, namespace, ref.key)
    if raw is None:
        raise SecretMissing(f"Secret {namespace}/{ref.name} or its key {ref.key!r} does not exist")
    return raw.decode(errors="replace").strip()


def check_endpoints(spec: ManagedClusterSpec, default_namespace: str) -> list[EndpointCheck]:
    """One check per configured endpoint."""
    checks = []
    endpoints = spec.endpoints
    for name in READY_PATHS:
        endpoint: Endpoint | None = getattr(endpoints, name, None) if endpoints else None
        if endpoint is None:
            continue
        try:
            token = endpoint_token(endpoint, default_namespace)
        except SecretMissing as exc:
            checks.append(
                EndpointCheck(
                    name, endpoint.url, False, Reason.AUTH_SECRET_MISSING, f"{TITLES[name]} authSecretRef: {exc}"
                )
            )
            continue
        except ApiException as exc:
            checks.append(
                EndpointCheck(name, endpoint.url, False, Reason.AUTH_SECRET_UNREADABLE, f"{TITLES[name]}: {exc.reason}")
            )
            continue
        checks.append(check_endpoint(name, endpoint.url, token, bool(endpoint.insecure_skip_verify)))
    return checks


# --- the whole probe ------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    """What one probe found. `error` is set when the API server could not be probed."""

    fields: dict[str, Any] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)
    endpoints: list[EndpointCheck] = field(default_factory=list)
    error: ProbeError | None = None


def probe_cluster(spec: ManagedClusterSpec, default_namespace: str) -> ProbeResult:
    """Probes the API server and the configured endpoints.

    Raises SecretMissing / KubeconfigError when the kubeconfig Secret is absent or unusable.
    """
    api = cluster_client(spec, default_namespace)
    result = ProbeResult()
    try:
        try:
            found = probe_api(api)
        except ProbeError as exc:
            result.error = exc
        else:
            result.not_ready = found.pop("notReadyNodes")
            result.fields = found
    finally:
        api.close()
    result.endpoints = check_endpoints(spec, default_namespace)
    return result


@dataclass
class Verdict:
    phase: str
    ready: str  # the Ready condition's status
    reason: str
    message: str


def verdict(result: ProbeResult) -> Verdict:
    """Ready / Degraded / Unreachable from a probe result."""
    if result.error is not None:
        return Verdict(ClusterPhase.UNREACHABLE.value, "False", result.error.reason, result.error.message)
    f = result.fields
    problems = [c.message for c in result.endpoints if not c.ok]
    if result.not_ready:
        names = ", ".join(result.not_ready[:5]) + (" ..." if len(result.not_ready) > 5 else "")
        problems.append(f"{len(result.not_ready)} of {f['nodeCount']} nodes NotReady: {names}")
    if problems:
        return Verdict(ClusterPhase.DEGRADED.value, "False", Reason.DEGRADED, "; ".join(problems)[: MESSAGE_LIMIT * 2])
    summary = f"Kubernetes {f['kubernetesVersion']}"
    if f.get("openshiftVersion"):
        summary += f" (OpenShift {f['openshiftVersion']})"
    summary += f", {f['nodeCount']} nodes, {f['gpuInventory']['total']} GPUs"
    return Verdict(ClusterPhase.READY.value, "True", Reason.PROBED, summary)
