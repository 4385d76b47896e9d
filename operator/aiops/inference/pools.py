"""The vLLM pool manager: one Deployment + Service per catalogue model, in the operator's namespace.

Ownership is by label (there is no custom resource for a pool): everything the operator creates carries
`app.kubernetes.io/managed-by: aiops-operator` and `aiops.dev/pool: <model>`; the Service is owned by its
Deployment (deleting the Deployment removes it). A pool scales up to 1 when a run needs it and back to 0 after
the catalogue's idleSeconds without use, or at once when a run's wait for it times out and nothing else uses it.

Pool state, for an SRE (`kubectl get deploy -l aiops.dev/pool -o yaml`): the Deployment's replicas and
readyReplicas, and its annotations aiops.dev/endpoint, aiops.dev/served-model, aiops.dev/last-used,
aiops.dev/active-runs, aiops.dev/scaled (why it last scaled). Runs record the pod and endpoint they used.

Runs per pool are limited (catalogue maxConcurrentRuns); the queue is in memory, in arrival order (one
operator replica; after a restart the daemons of unfinished runs queue again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import openai
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.core import kube
from aiops.inference.catalogue import ModelEntry
from aiops.inference.gateway import GatewayConfig

log = logging.getLogger(__name__)

PORT = 8000
MODELS_DIR = "/models"
POOL_LABEL = "aiops.dev/pool"
MANAGED_BY = {"app.kubernetes.io/managed-by": "aiops-operator"}
GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
A_SPEC_HASH = "aiops.dev/pool-spec-hash"
A_ENDPOINT = "aiops.dev/endpoint"
A_MODEL = "aiops.dev/served-model"
A_LAST_USED = "aiops.dev/last-used"
A_ACTIVE = "aiops.dev/active-runs"
A_SCALED = "aiops.dev/scaled"
PROBE_TIMEOUT_S = 10.0


def resource_name(pool: str) -> str:
    return f"aiops-pool-{pool}"


def served_name(pool: str, entry: ModelEntry) -> str:
    return entry.served_model_name or pool


def endpoint(pool: str, entry: ModelEntry, namespace: str) -> str:
    """The /v1 base URL runs use: the external one, the override (operator outside the cluster), or the Service."""
    if entry.external is not None:
        return entry.external.base_url
    return entry.endpoint_override or f"http://{resource_name(pool)}.{namespace}.svc:{PORT}/v1"


def labels(pool: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": resource_name(pool),
        "app.kubernetes.io/component": "model-pool",
        **MANAGED_BY,
        POOL_LABEL: pool,
    }


def weights_path(entry: ModelEntry) -> str:
    w = entry.weights
    sub = (w.pvc.sub_path if w.pvc else w.image.path if w.image else None) or ""
    return f"{MODELS_DIR}/{sub.strip('/')}".rstrip("/") if sub.strip("/") else MODELS_DIR


def _weights_volume(entry: ModelEntry) -> dict:
    w = entry.weights
    if w.pvc:
        return {"name": "weights", "persistentVolumeClaim": {"claimName": w.pvc.claim_name, "readOnly": True}}
    if w.image:
        image = {"reference": w.image.reference, "pullPolicy": w.image.pull_policy or "IfNotPresent"}
        return {"name": "weights", "image": image}
    return {"name": "weights", "hostPath": {"path": w.host_path.path, "type": "Directory"}}


def vllm_args(pool: str, entry: ModelEntry) -> list[str]:
    args = [
        weights_path(entry),
        "--served-model-name",
        served_name(pool, entry),
        "--tensor-parallel-size",
        str(entry.tensor_parallel_size),
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]
    if entry.pipeline_parallel_size > 1:
        args += ["--pipeline-parallel-size", str(entry.pipeline_parallel_size)]
    if entry.max_model_len:
        args += ["--max-model-len", str(entry.max_model_len)]
    return args + list(entry.extra_args)


def pod_template(pool: str, entry: ModelEntry) -> dict:
    gpus = str(entry.gpu_count)
    container = {
        "name": "vllm",
        "image": entry.image,
        "command": ["vllm", "serve"],
        "args": vllm_args(pool, entry),
        "env": [
            # An arbitrary non-root UID (OpenShift) has no home: caches go to the writable /tmp.
            {"name": "HOME", "value": "/tmp"},
            {"name": "HF_HOME", "value": "/tmp/hf"},
            {"name": "HF_HUB_OFFLINE", "value": "1"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {GPU: gpus}, "limits": {GPU: gpus}},
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "weights", "mountPath": MODELS_DIR, "readOnly": True},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    spec: dict = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [
            _weights_volume(entry),
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},  # NCCL and PyTorch workers share memory here
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if entry.gpu_product:
        spec["nodeSelector"] = {PRODUCT_LABEL: entry.gpu_product}
    if entry.tolerations:
        spec["tolerations"] = [t.wire() for t in entry.tolerations]
    return {"metadata": {"labels": labels(pool)}, "spec": spec}


def spec_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def deployment_manifest(pool: str, entry: ModelEntry, namespace: str, replicas: int = 1) -> dict:
    template = pod_template(pool, entry)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": resource_name(pool),
            "namespace": namespace,
            "labels": labels(pool),
            "annotations": {
                A_SPEC_HASH: spec_hash(template),
                A_ENDPOINT: endpoint(pool, entry, namespace),
                A_MODEL: served_name(pool, entry),
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {POOL_LABEL: pool}},
            "strategy": {"type": "Recreate"},  # no surge: a second replica would need GPUs of its own
            "template": template,
        },
    }


def service_manifest(pool: str, namespace: str, owner: dict) -> dict:
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": resource_name(pool),
            "namespace": namespace,
            "labels": labels(pool),
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": {
            "selector": {POOL_LABEL: pool},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _apps() -> client.AppsV1Api:
    return client.AppsV1Api(kube.api_client())


def _json(obj) -> dict:
    return kube.api_client().sanitize_for_serialization(obj)


def get_deployment(pool: str, namespace: str) -> dict | None:
    try:
        return _json(_apps().read_namespaced_deployment(resource_name(pool), namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _patch(pool: str, namespace: str, body: dict) -> dict:
    return _json(_apps().patch_namespaced_deployment(resource_name(pool), namespace, body))


def missing_weights(entry: ModelEntry, namespace: str) -> str | None:
    """Why the pool can never become ready, when it is plain before scheduling: its weights claim is absent."""
    w = entry.weights
    if w is None or w.pvc is None:
        return None
    try:
        kube.core().read_namespaced_persistent_volume_claim(w.pvc.claim_name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return (
                f"weights.pvc.claimName: PersistentVolumeClaim {namespace}/{w.pvc.claim_name} does not exist;"
                " create it with the model weights (or fix the catalogue)"
            )
        raise
    return None


def ensure(pool: str, entry: ModelEntry, namespace: str, now: datetime) -> dict:
    """The pool's Deployment (created, updated to the catalogue, scaled to 1) and Service; the Deployment."""
    want = deployment_manifest(pool, entry, namespace)
    have = get_deployment(pool, namespace)
    stamp = {A_LAST_USED: _rfc3339(now)}
    if have is None:
        want["metadata"]["annotations"] |= stamp | {A_SCALED: f"created at {_rfc3339(now)}"}
        try:
            have = _json(_apps().create_namespaced_deployment(namespace, want))
            log.info("pool %s: created Deployment %s/%s", pool, namespace, resource_name(pool))
        except ApiException as exc:
            if exc.status != 409:
                raise
            have = get_deployment(pool, namespace) or {}
    annotations = (have.get("metadata") or {}).get("annotations") or {}
    changes: dict = {}
    if annotations.get(A_SPEC_HASH) != want["metadata"]["annotations"][A_SPEC_HASH]:
        changes["template"] = want["spec"]["template"]  # the catalogue entry changed
    if not (have.get("spec") or {}).get("replicas"):
        changes["replicas"] = 1
    if changes:
        meta = {"annotations": {**want["metadata"]["annotations"], **stamp}}
        if "replicas" in changes:
            meta["annotations"][A_SCALED] = f"up to 1 at {_rfc3339(now)}: a run needs it"
            log.info("pool %s: scaling up to 1", pool)
        have = _patch(pool, namespace, {"metadata": meta, "spec": changes})
    _ensure_service(pool, namespace, have)
    return have


def _ensure_service(pool: str, namespace: str, deployment: dict) -> None:
    core = kube.core()
    try:
        core.read_namespaced_service(resource_name(pool), namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
        try:
            core.create_namespaced_service(namespace, service_manifest(pool, namespace, deployment))
        except ApiException as exc2:
            if exc2.status != 409:
                raise


def is_ready(deployment: dict | None) -> bool:
    if not deployment:
        return False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return (spec.get("replicas") or 0) > 0 and (status.get("readyReplicas") or 0) > 0


def ready_pod(pool: str, namespace: str) -> str | None:
    """A ready pod of the pool, for the run's status (None when none is visible)."""
    pods = kube.core().list_namespaced_pod(namespace, label_selector=f"{POOL_LABEL}={pool}").items
    for pod in pods:
        for cond in (pod.status and pod.status.conditions) or []:
            if cond.type == "Ready" and cond.status == "True":
                return pod.metadata.name
    return None


def touch(pool: str, namespace: str, now: datetime, active: int) -> None:
    """Records use: last-used time and the runs now using the pool."""
    try:
        _patch(pool, namespace, {"metadata": {"annotations": {A_LAST_USED: _rfc3339(now), A_ACTIVE: str(active)}}})
    except ApiException as exc:
        if exc.status != 404:
            raise


def scale_to_zero(pool: str, namespace: str, now: datetime, why: str) -> None:
    try:
        _patch(
            pool,
            namespace,
            {
                "metadata": {"annotations": {A_SCALED: f"to 0 at {_rfc3339(now)}: {why}", A_ACTIVE: "0"}},
                "spec": {"replicas": 0},
            },
        )
        log.info("pool %s: scaled to 0: %s", pool, why)
    except ApiException as exc:
        if exc.status != 404:
            raise


def gateway_config(pool: str, entry: ModelEntry, namespace: str, base: GatewayConfig | None) -> GatewayConfig:
    """The operator's model settings (timeouts, retries, token budget) aimed at the pool."""
    url, model = endpoint(pool, entry, namespace), served_name(pool, entry)
    api_key = "not-needed"
    if entry.external and entry.external.api_key_secret:
        ref = entry.external.api_key_secret
        value = kube.read_secret_key(ref.name, namespace, ref.key)
        if value is None:
            raise ValueError(
                f"models.{pool}.external.apiKeySecret: Secret {namespace}/{ref.name} has no key {ref.key!r}"
            )
        api_key = value.decode().strip()
    if base is None:
        return GatewayConfig(base_url=url, model=model, api_key=api_key)
    return replace(base, base_url=url, model=model, api_key=api_key)


def unreachable(config: GatewayConfig, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the model server at `config.base_url` cannot serve now (its GET /models fails), or None. Asked before
    a run that could fall back commits to a catalogue model: the run's own calls would find out only after their
    retries, and then a rootCause run settles for the analyzers' diagnosis."""
    url = f"{config.base_url.rstrip('/')}/models"
    api = openai.OpenAI(base_url=config.base_url, api_key=config.api_key, timeout=timeout_s, max_retries=0)
    try:
        api.models.with_raw_response.list()
    except openai.APIStatusError as exc:
        return f"{url} answered HTTP {exc.status_code}"
    except openai.APIError as exc:
        return f"cannot reach {url}: {exc.__cause__ or exc}"
    finally:
        api.close()
    return None


def _rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    from aiops.core.status import parse_time

    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


class Scheduler:
    """Per-pool admission: at most `limit` runs hold a pool at once, the rest queue in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, set[str]] = {}
        self._queue: dict[str, list[str]] = {}

    def admit(self, pool: str, run: str, limit: int) -> int:
        """0 when `run` holds a slot (now or already), else its 1-based place in the queue."""
        with self._lock:
            active = self._active.setdefault(pool, set())
            queue = self._queue.setdefault(pool, [])
            if run in active:
                return 0
            if run not in queue:
                queue.append(run)
            if len(active) < limit and queue[0] == run:
                queue.pop(0)
                active.add(run)
                return 0
            return queue.index(run) + 1

    def release(self, pool: str, run: str) -> int:
        """Frees the run's slot or queue place; the runs still holding the pool."""
        with self._lock:
            self._active.get(pool, set()).discard(run)
            if run in self._queue.get(pool, []):
                self._queue[pool].remove(run)
            return len(self._active.get(pool, ()))

    def active(self, pool: str) -> int:
        with self._lock:
            return len(self._active.get(pool, ())) + len(self._queue.get(pool, ()))


SCHEDULER = Scheduler()


def sweep(catalogue, namespace: str, now: datetime, scheduler: Scheduler = SCHEDULER) -> None:
    """Scales idle pools to zero; deletes pools whose model left the catalogue (no orphans)."""
    models = catalogue.models if catalogue else {}
    found = _apps().list_namespaced_deployment(
        namespace, label_selector=f"{POOL_LABEL},app.kubernetes.io/managed-by=aiops-operator"
    )
    for item in found.items:
        dep = _json(item)
        pool = dep["metadata"]["labels"][POOL_LABEL]
        entry = models.get(pool)
        if entry is None or entry.external is not None:
            log.info("pool %s: no longer in the catalogue as a pool; deleting its Deployment", pool)
            try:  # the Service goes with it (owner reference)
                _apps().delete_namespaced_deployment(resource_name(pool), namespace, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise
            continue
        if not (dep["spec"].get("replicas") or 0) or not entry.idle_seconds or scheduler.active(pool):
            continue
        annotations = dep["metadata"].get("annotations") or {}
        last = _parse(annotations.get(A_LAST_USED)) or _parse(dep["metadata"].get("creationTimestamp"))
        if last is None or now - last >= timedelta(seconds=entry.idle_seconds):
            scale_to_zero(pool, namespace, now, f"idle for {entry.idle_seconds}s or more")
