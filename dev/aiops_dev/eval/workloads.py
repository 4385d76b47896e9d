"""Writes workloads in failing states onto a cluster, as the controllers and the kubelet would.

The local control plane has no controller-manager and no kubelet, so this module plays
their part: it creates a Deployment with its ReplicaSets (revision annotations, owner
references), pods whose runtime state is written through the status subresource, Nodes with
conditions and capacity, and the Events a kubelet or scheduler would post. The objects have
exactly the shapes a real cluster serves, which is what the analyzers read.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from aiops.core import kube

Obj = dict[str, Any]


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


class Writer:
    def __init__(self, api: client.ApiClient, namespace: str):
        self.api = api
        self.ns = namespace
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _json(self, obj: Any) -> Obj:
        return self.api.sanitize_for_serialization(obj)

    # --- workloads -----------------------------------------------------------------------------

    def deployment(self, name: str, containers: list[Obj], replicas: int = 1) -> Obj:
        labels = {"app": name}
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
            },
        }
        return self._json(self.apps.create_namespaced_deployment(self.ns, body))

    def replicaset(self, deployment: Obj, containers: list[Obj], revision: int) -> Obj:
        """A ReplicaSet of the Deployment at `revision`, as the deployment controller writes it."""
        template_hash = _hash(repr(containers))
        labels = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": template_hash}
        body = {
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
        return self._json(self.apps.create_namespaced_replica_set(self.ns, body))

    def pod(
        self,
        owner: Obj | None,
        name: str,
        containers: list[Obj],
        status: Obj,
        node: str | None = None,
        volumes: list[Obj] | None = None,
    ) -> Obj:
        """A pod with its runtime state written through the status subresource."""
        labels = dict(owner["spec"]["template"]["metadata"]["labels"]) if owner else {"app": name}
        meta: Obj = {"name": name, "labels": labels}
        if owner:
            meta["ownerReferences"] = [owner_ref(owner)]
        spec: Obj = {"containers": containers}
        if node:
            spec["nodeName"] = node
        if volumes:
            spec["volumes"] = volumes
        created = self.core.create_namespaced_pod(
            self.ns, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        )
        patched = self.core.patch_namespaced_pod_status(created.metadata.name, self.ns, {"status": status})
        return self._json(patched)

    def job(self, name: str, containers: list[Obj], status: Obj, backoff_limit: int = 6) -> Obj:
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": backoff_limit,
                "template": {"spec": {"restartPolicy": "Never", "containers": containers}},
            },
        }
        created = self.batch.create_namespaced_job(self.ns, body)
        return self._json(self.batch.patch_namespaced_job_status(created.metadata.name, self.ns, {"status": status}))

    # --- cluster surroundings ------------------------------------------------------------------

    def node(
        self,
        name: str,
        conditions: list[Obj],
        capacity: Obj,
        labels: Obj | None = None,
        taints: list[Obj] | None = None,
    ) -> Obj:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints} if taints else {},
        }
        try:
            self.core.create_node(body)
        except client.ApiException as exc:
            if exc.status != 409:  # nodes are cluster-scoped and shared by scenarios
                raise
        status = {"conditions": conditions, "capacity": capacity, "allocatable": capacity}
        return self._json(self.core.patch_node_status(name, {"status": status}))

    def pvc(self, name: str, storage_class: str | None, status: Obj) -> Obj:
        spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
        if storage_class:
            spec["storageClassName"] = storage_class
        created = self.core.create_namespaced_persistent_volume_claim(
            self.ns, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}
        )
        return self._json(
            self.core.patch_namespaced_persistent_volume_claim_status(
                created.metadata.name, self.ns, {"status": status}
            )
        )

    def hpa(self, name: str, target: Obj, min_replicas: int, max_replicas: int, status: Obj) -> Obj:
        """An HPA in the autoscaling/v2beta2 shape that 1.20 serves (v2 is the same shape)."""
        body = {
            "apiVersion": "autoscaling/v2beta2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target["kind"], "name": target["metadata"]["name"]},
                "minReplicas": min_replicas,
                "maxReplicas": max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                    }
                ],
            },
        }
        path = f"/apis/autoscaling/v2beta2/namespaces/{self.ns}/horizontalpodautoscalers"
        kube.request(self.api, "POST", path, body=body)
        patched = kube.request(
            self.api,
            "PATCH",
            f"{path}/{name}/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )
        return json.loads(patched)

    def quota(self, name: str, hard: Obj, used: Obj) -> Obj:
        created = self.core.create_namespaced_resource_quota(
            self.ns, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard}}
        )
        return self._json(
            self.core.patch_namespaced_resource_quota_status(
                created.metadata.name, self.ns, {"status": {"hard": hard, "used": used}}
            )
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
        namespace = meta.get("namespace") or "default"  # events about Nodes live in default
        ts = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
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
        return self._json(self.core.create_namespaced_event(namespace, body))
