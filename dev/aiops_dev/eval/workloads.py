"""Writes workloads in failing states onto a cluster, as the controllers and the kubelet would.

The local control plane has no controller-manager and no kubelet, so this module plays their part:
`Writer.write` creates any object and writes its runtime state through the status subresource, filling
in what a controller would (owner uids, a pod's labels and spec from its owner's template, an Event's
involved object). The failure scenarios (aiops_dev.eval.cases) are written through it; the few typed
helpers below build single objects for tests and evaluations. The objects have exactly the shapes a
real cluster serves, which is what the analyzers read.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.core import kube

Obj = dict[str, Any]
# Kinds without a namespace; a scenario may write one that another already wrote (nodes are shared).
CLUSTER_SCOPED = frozenset({"Node", "Namespace", "PersistentVolume", "StorageClass"})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def owner_ref(obj: Obj) -> Obj:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def container(
    name: str = "app", image: str = "registry.example.com/shop/app:1.0", memory: str = "256Mi", **extra: Any
) -> Obj:
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": memory}, "limits": {"memory": memory}},
        **extra,
    }


def _plural(kind: str) -> str:
    lower = kind.lower()
    return lower + ("es" if lower.endswith("s") else "s")


class Writer:
    def __init__(self, api: client.ApiClient, namespace: str):
        self.api = api
        self.ns = namespace
        self.core = client.CoreV1Api(api)
        self.written: dict[tuple[str, str], Obj] = {}  # (kind, name) -> the object as the server returned it

    def _json(self, obj: Any) -> Obj:
        return self.api.sanitize_for_serialization(obj)

    def _path(self, obj: Obj) -> str:
        version = obj["apiVersion"]
        prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
        if obj["kind"] in CLUSTER_SCOPED:
            return f"{prefix}/{_plural(obj['kind'])}"
        return f"{prefix}/namespaces/{obj['metadata'].get('namespace') or self.ns}/{_plural(obj['kind'])}"

    def write(self, obj: Obj) -> Obj:
        """Creates `obj` (in this writer's namespace unless it names one) and then writes its `status`;
        returns it as the server has it. A cluster-scoped object that exists already gets the status only."""
        body = copy.deepcopy(obj)
        status = body.pop("status", None)
        body.setdefault("metadata", {})
        self._complete(body)
        path = self._path(body)
        try:
            stored = json.loads(kube.request(self.api, "POST", path, body=body))
        except ApiException as exc:
            if exc.status != 409 or body["kind"] not in CLUSTER_SCOPED:
                raise
            stored = json.loads(kube.request(self.api, "GET", f"{path}/{body['metadata']['name']}"))
        if status is not None:
            stored = json.loads(
                kube.request(
                    self.api,
                    "PATCH",
                    f"{path}/{stored['metadata']['name']}/status",
                    body={"status": status},
                    content_type="application/merge-patch+json",
                )
            )
        self.written[(stored["kind"], stored["metadata"]["name"])] = stored
        return stored

    def _written(self, kind: str, name: str) -> Obj:
        try:
            return self.written[(kind, name)]
        except KeyError:
            raise ValueError(f"{kind}/{name} is referred to before it is written") from None

    def _complete(self, body: Obj) -> None:
        """Fills in what the API server or a controller would: the uids of owners written before, a pod's
        labels and spec from its controller's pod template, an Event's involved object and its namespace."""
        meta = body["metadata"]
        for ref in meta.get("ownerReferences") or []:
            ref.setdefault("uid", self._written(ref["kind"], ref["name"])["metadata"]["uid"])
        controller = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if body["kind"] == "Pod" and controller:
            template = self._written(controller["kind"], controller["name"])["spec"]["template"]
            meta.setdefault("labels", dict(template["metadata"].get("labels") or {}))
            body["spec"] = {**template["spec"], **(body.get("spec") or {})}
        if body["kind"] == "Event":
            involved = body["involvedObject"]
            if "uid" not in involved:
                target = self._written(involved["kind"], involved["name"])["metadata"]
                involved |= {"uid": target["uid"]} | (
                    {"namespace": target["namespace"]} if "namespace" in target else {}
                )
            # Events about cluster-scoped objects (Nodes) live in default, as the kubelet posts them.
            meta.setdefault("namespace", involved.get("namespace") or "default")
            meta.setdefault("generateName", f"{involved['name']}.")

    # --- single objects, for tests and evaluations ------------------------------------------------

    def deployment(self, name: str, containers: list[Obj], replicas: int = 1) -> Obj:
        labels = {"app": name}
        return self.write(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
                },
            }
        )

    def replicaset(self, deployment: Obj, containers: list[Obj], revision: int) -> Obj:
        """A ReplicaSet of the Deployment at `revision`, as the deployment controller writes it."""
        template_hash = _hash(repr(containers))
        labels = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": template_hash}
        return self.write(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{deployment['metadata']['name']}-{template_hash}",
                    "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                    "ownerReferences": [owner_ref({**deployment, "apiVersion": "apps/v1", "kind": "Deployment"})],
                },
                "spec": {
                    "replicas": deployment["spec"]["replicas"],
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
                },
            }
        )

    def pod(self, owner: Obj | None, name: str, containers: list[Obj], status: Obj, node: str | None = None) -> Obj:
        """A pod with its runtime state written through the status subresource."""
        labels = dict(owner["spec"]["template"]["metadata"]["labels"]) if owner else {"app": name}
        meta: Obj = {"name": name, "labels": labels}
        if owner:
            meta["ownerReferences"] = [owner_ref(owner)]
        spec: Obj = {"containers": containers}
        if node:
            spec["nodeName"] = node
        return self.write({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status})

    def node(
        self,
        name: str,
        conditions: list[Obj],
        capacity: Obj,
        labels: Obj | None = None,
        taints: list[Obj] | None = None,
    ) -> Obj:
        return self.write(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels or {}},
                "spec": {"taints": taints} if taints else {},
                "status": {"conditions": conditions, "capacity": capacity, "allocatable": capacity},
            }
        )

    def event(
        self,
        involved: Obj,
        reason: str,
        message: str,
        type_: str = "Warning",
        count: int = 1,
        component: str = "kubelet",
    ) -> Obj:
        """An Event about `involved`, posted as its controller, the scheduler or the kubelet would."""
        meta = involved["metadata"]
        ts = _now()
        return self.write(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "involvedObject": {
                    "apiVersion": involved.get("apiVersion", "v1"),
                    "kind": involved["kind"],
                    "name": meta["name"],
                    "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": count,
                "firstTimestamp": ts,
                "lastTimestamp": ts,
                "source": {"component": component},
                "reportingComponent": component,
            }
        )
