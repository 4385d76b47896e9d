"""Kubernetes objects in the exact shapes a 1.2x API server returns (`kubectl get -o json` items),
small enough to read in a test. Times are minutes after WINDOW_START."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.diagnosis.evidence import EvidenceBundle, Target

Obj = dict[str, Any]
NS = "shop"
WINDOW_START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(hours=1)
IMAGE = "registry.example.com/shop/checkout:1.4.2"


def ts(minutes: float) -> str:
    return (WINDOW_START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(minutes: float) -> float:
    return (WINDOW_START + timedelta(minutes=minutes)).timestamp()


def bundle(kind: str = "Deployment", name: str = "checkout", **fields: Any) -> EvidenceBundle:
    return EvidenceBundle(target=Target(kind, name, NS), window_start=WINDOW_START, window_end=WINDOW_END, **fields)


def _uid(name: str) -> str:
    h = hashlib.sha256(name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def meta(name: str, namespace: str | None = NS, created: float = -120, **extra: Any) -> Obj:
    m = {"name": name, "uid": _uid(name), "resourceVersion": "48213", "creationTimestamp": ts(created), **extra}
    if namespace:
        m["namespace"] = namespace
    return m


def owner(kind: str, name: str, api_version: str = "apps/v1") -> Obj:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": _uid(name),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(type_: str, status: str, reason: str | None = None, message: str | None = None, at: float = 0) -> Obj:
    c = {"type": type_, "status": status, "lastTransitionTime": ts(at)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


# --- pods --------------------------------------------------------------------------------------


def container(name: str = "app", image: str = IMAGE, memory: str | None = "256Mi", **extra: Any) -> Obj:
    resources: Obj = {"requests": {"cpu": "100m", "memory": memory or "128Mi"}}
    if memory:
        resources["limits"] = {"memory": memory}
    return {
        "name": name,
        "image": image,
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "resources": resources,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        **extra,
    }


def running(started: float = 0) -> Obj:
    return {"running": {"startedAt": ts(started)}}


def waiting(reason: str, message: str | None = None) -> Obj:
    w = {"reason": reason}
    if message:
        w["message"] = message
    return {"waiting": w}


def terminated(reason: str, exit_code: int, finished: float = 5) -> Obj:
    return {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": ts(finished - 2),
            "finishedAt": ts(finished),
            "containerID": "containerd://" + "ab" * 32,
        }
    }


def status(
    name: str = "app",
    state: Obj | None = None,
    last_state: Obj | None = None,
    restarts: int = 0,
    ready: bool = True,
    image: str = IMAGE,
) -> Obj:
    state = state if state is not None else running()
    s = {
        "name": name,
        "state": state,
        "lastState": last_state or {},
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "imageID": "" if "waiting" in state else f"{image.split(':')[0]}@sha256:{'c0' * 32}",
        "started": "running" in state,
    }
    if "waiting" not in state:
        s["containerID"] = "containerd://" + "9f" * 32
    return s


def pod(
    name: str = "checkout-7d9f8b6c5-x2kqz",
    statuses: list[Obj] | None = None,
    containers: list[Obj] | None = None,
    phase: str = "Running",
    node: str | None = "node-a",
    conditions: list[Obj] | None = None,
    rs: str | None = "checkout-7d9f8b6c5",
    **status_extra: Any,
) -> Obj:
    statuses = statuses if statuses is not None else [status()]
    ready = "True" if statuses and all(s["ready"] for s in statuses) else "False"
    spec: Obj = {
        "containers": containers if containers is not None else [container(s["name"]) for s in statuses],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
    }
    if node:
        spec["nodeName"] = node
    labels = {"app": "checkout", "pod-template-hash": rs.rsplit("-", 1)[-1]} if rs else {"app": "checkout"}
    st: Obj = {
        "phase": phase,
        "conditions": conditions
        if conditions is not None
        else [
            condition("Initialized", "True"),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", "True"),
        ],
        "qosClass": "Burstable",
        **status_extra,
    }
    if node:
        st |= {"hostIP": "10.0.1.12", "podIP": "10.244.1.17", "startTime": ts(-30), "containerStatuses": statuses}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, labels=labels, ownerReferences=[owner("ReplicaSet", rs)] if rs else []),
        "spec": spec,
        "status": st,
    }


def pending_pod(name: str, message: str) -> Obj:
    """A pod the scheduler could not place, as kube-scheduler leaves it."""
    return pod(
        name,
        statuses=[],
        containers=[container()],
        phase="Pending",
        node=None,
        conditions=[condition("PodScheduled", "False", "Unschedulable", message)],
    )


# --- events ------------------------------------------------------------------------------------


def event(
    kind: str,
    name: str,
    reason: str,
    message: str,
    type_: str = "Warning",
    count: int = 1,
    first: float = 5,
    last: float = 10,
    field_path: str | None = None,
    component: str = "kubelet",
) -> Obj:
    involved = {"kind": kind, "name": name, "apiVersion": "v1", "uid": _uid(name)}
    if kind != "Node":
        involved["namespace"] = NS
    if field_path:
        involved["fieldPath"] = field_path
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta(f"{name}.{hashlib.sha256((reason + message).encode()).hexdigest()[:16]}", created=first),
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": component, "host": "node-a"},
        "firstTimestamp": ts(first),
        "lastTimestamp": ts(last),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": "node-a",
    }


# --- other kinds -------------------------------------------------------------------------------


def node(name: str = "node-a", **problems: tuple[str, str, str]) -> Obj:
    """A node whose conditions are healthy except `problems`: type -> (status, reason, message)."""
    healthy = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    }
    conditions = []
    for type_, (st, reason, message) in (healthy | problems).items():
        c = condition(type_, st, reason, message, at=-600)
        c["lastHeartbeatTime"] = ts(50)
        conditions.append(c)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(name, namespace=None, labels={"kubernetes.io/hostname": name}),
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": f"aws:///eu-west-1a/i-{_uid(name)[:8]}"},
        "status": {
            "capacity": {"cpu": "8", "memory": "32863756Ki", "pods": "110"},
            "allocatable": {"cpu": "7910m", "memory": "31712780Ki", "pods": "110"},
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.29.4", "containerRuntimeVersion": "containerd://1.7.13"},
        },
    }


def deployment(name: str = "checkout", revision: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, annotations={"deployment.kubernetes.io/revision": str(revision)}, generation=revision),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": _template(name, [container()])},
        "status": {"observedGeneration": revision, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 2},
    }


def _template(app: str, containers: list[Obj], pod_hash: str | None = None, **spec: Any) -> Obj:
    labels = {"app": app} | ({"pod-template-hash": pod_hash} if pod_hash else {})
    return {"metadata": {"labels": labels}, "spec": {"containers": containers, "restartPolicy": "Always", **spec}}


def replicaset(
    revision: int, created: float, containers: list[Obj] | None = None, deployment: str = "checkout", **spec: Any
) -> Obj:
    pod_hash = hashlib.sha256(f"{deployment}{revision}".encode()).hexdigest()[:9]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta(
            f"{deployment}-{pod_hash}",
            created=created,
            labels={"app": deployment, "pod-template-hash": pod_hash},
            annotations={
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "deployment.kubernetes.io/revision": str(revision),
            },
            ownerReferences=[owner("Deployment", deployment)],
        ),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": deployment, "pod-template-hash": pod_hash}},
            "template": _template(deployment, containers or [container()], pod_hash, **spec),
        },
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 1},
    }


def hpa(
    name: str = "checkout",
    current: int = 3,
    desired: int = 3,
    maximum: int = 10,
    conditions: list[Obj] | None = None,
    cpu: int = 55,
) -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout"},
            "minReplicas": 2,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                }
            ],
        },
        "status": {
            "currentReplicas": current,
            "desiredReplicas": desired,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": cpu, "averageValue": "55m"}},
                }
            ],
            "conditions": conditions
            if conditions is not None
            else [
                condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
                condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to compute the replica count"),
                condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within range"),
            ],
        },
    }


def job(name: str = "nightly-report", conditions: list[Obj] | None = None, failed: int = 0, succeeded: int = 0) -> Obj:
    st: Obj = {"startTime": ts(0), "active": 0 if conditions else 1, "failed": failed, "succeeded": succeeded}
    if conditions:
        st["conditions"] = conditions
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(name, labels={"job-name": name}),
        "spec": {
            "backoffLimit": 3,
            "completions": 1,
            "parallelism": 1,
            "template": _template(name, [container("report")], restartPolicy="Never"),
        },
        "status": st,
    }


def quota(name: str = "compute-resources", hard: dict[str, str] | None = None, used: dict[str, str] | None = None):
    hard = hard or {"limits.memory": "4Gi", "limits.cpu": "4", "pods": "20"}
    used = used or {"limits.memory": "2Gi", "limits.cpu": "1500m", "pods": "6"}
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta(name),
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": used},
    }


def pvc(name: str = "data-checkout-0", phase: str = "Bound", storage_class: str | None = "fast-ssd") -> Obj:
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
        "volumeMode": "Filesystem",
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    st: Obj = {"phase": phase}
    if phase == "Bound":
        spec["volumeName"] = f"pvc-{_uid(name)}"
        st |= {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(name), "spec": spec, "status": st}


def certificate(name: str = "checkout-tls", not_after: float = 60 * 24 * 60, ready: Obj | None = None) -> Obj:
    ready = ready or condition("Ready", "True", "Ready", "Certificate is up to date and has not expired", at=-60)
    ready["observedGeneration"] = 1
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": meta(name, generation=1),
        "spec": {
            "dnsNames": ["checkout.shop.example.com"],
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt"},
            "secretName": name,
        },
        "status": {
            "conditions": [ready],
            "notBefore": ts(not_after - 90 * 24 * 60),
            "notAfter": ts(not_after),
            "renewalTime": ts(not_after - 30 * 24 * 60),
            "revision": 3,
        },
    }
