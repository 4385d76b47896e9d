"""Support bundles for the tests and the benchmark: a real `kubectl cluster-info dump` of a test namespace,
the container logs a kubelet would have given it (the local control plane has none), a must-gather tree
written from the same objects, and tarballs of either."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tarfile
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from aiops_dev.eval.cases import CASES, Case
from aiops_dev.eval.workloads import CLUSTER_SCOPED, Writer

Obj = dict[str, Any]
Logs = dict[tuple[str, str, str], list[str]]  # (namespace, pod, container) -> lines

# Kinds an OpenShift must-gather writes per namespace: (group folder, file) and the list's apiVersion.
MUST_GATHER_LISTS = {
    "Pod": ("core", "pods", "v1"),
    "Event": ("core", "events", "v1"),
    "Service": ("core", "services", "v1"),
    "PersistentVolumeClaim": ("core", "persistentvolumeclaims", "v1"),
    "ResourceQuota": ("core", "resourcequotas", "v1"),
    "Deployment": ("apps", "deployments", "apps/v1"),
    "ReplicaSet": ("apps", "replicasets", "apps/v1"),
    "StatefulSet": ("apps", "statefulsets", "apps/v1"),
    "DaemonSet": ("apps", "daemonsets", "apps/v1"),
    "Job": ("batch", "jobs", "batch/v1"),
    "CronJob": ("batch", "cronjobs", "batch/v1"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers", "autoscaling/v2"),
}
# The lists `kubectl cluster-info dump` writes per namespace (besides replication-controllers), by kind.
DUMP_FILES = {"Pod": "pods", "Event": "events", "Service": "services", "Deployment": "deployments",
              "ReplicaSet": "replicasets", "DaemonSet": "daemonsets"}  # fmt: skip
# What `kubectl get -o json` is asked for when a must-gather is written from a live namespace.
LIVE_KINDS = ("pods", "events", "services", "persistentvolumeclaims", "resourcequotas", "deployments", "replicasets",
              "statefulsets", "daemonsets", "jobs", "cronjobs")  # fmt: skip
# HPAs in the shape the collector reads (autoscaling/v2, or v2beta2 before Kubernetes 1.23), not v1's.
HPA_VERSIONS = ("horizontalpodautoscalers.v2.autoscaling", "horizontalpodautoscalers.v2beta2.autoscaling")


class MemoryWriter(Writer):
    """The scenarios' Writer without a server, for unit tests and the benchmark: objects are completed as
    `Writer` completes them (owners' uids, a pod's labels and spec from its template, an Event's involved
    object) and given what the API server adds (namespace, uid, creationTimestamp, a generated name)."""

    def __init__(self, namespace: str, now: datetime | None = None):
        super().__init__(None, namespace)  # type: ignore[arg-type]  (never sent anywhere)
        self.now = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def write(self, obj: Obj) -> Obj:
        body = copy.deepcopy(obj)
        body.setdefault("metadata", {})
        self._complete(body)
        meta = body["metadata"]
        if body["kind"] not in CLUSTER_SCOPED:
            meta.setdefault("namespace", self.ns)
        meta.setdefault("name", f"{meta.get('generateName', 'obj-')}{uuid.uuid4().hex[:5]}")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", self.now)
        if body["kind"] == "Job":  # the API server labels a Job's pod template with its name
            template = body["spec"]["template"]
            template.setdefault("metadata", {}).setdefault("labels", {"job-name": meta["name"]})
        self.written[(body["kind"], meta["name"])] = body
        return body


def scenario_objects(case: Case, namespace: str, now: datetime | None = None) -> list[Obj]:
    """A failure scenario's objects as a cluster would hold them, written to memory."""
    return case.write(MemoryWriter(namespace, now), now)


def cluster_info_dump(kubectl, namespaces: list[str], dest: Path, output: str = "json") -> Path:
    """`kubectl cluster-info dump --output-directory dest` of these namespaces, as an engineer would send it."""
    kubectl("cluster-info", "dump", "--namespaces", ",".join(namespaces), "-o", output, "--output-directory", str(dest))
    return dest


def log_block(namespace: str, pod: str, container: str, lines: list[str]) -> str:
    """One container's log as `kubectl cluster-info dump` frames it."""
    of = f"container {container} of pod {namespace}/{pod}"
    return "\n".join([f"==== START logs for {of} ====", *lines, f"==== END logs for {of} ===="]) + "\n"


def write_dump_logs(dump: Path, logs: Logs) -> None:
    """The logs.txt a dump holds for each pod (replacing what kubectl wrote without a kubelet)."""
    by_pod: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (ns, pod, container), lines in sorted(logs.items()):
        by_pod[(ns, pod)].append(log_block(ns, pod, container, lines))
    for (ns, pod), blocks in by_pod.items():
        (dump / ns / pod).mkdir(parents=True, exist_ok=True)
        (dump / ns / pod / "logs.txt").write_text("".join(blocks))


def dump_tree(root: Path, objects: list[Obj], logs: Logs | None = None) -> Path:
    """A cluster-info dump folder written from objects (for unit tests without a server): the lists kubectl
    writes (items without kind and apiVersion, as the API server lists them) and the logs."""
    files = DUMP_FILES
    lists: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for o in objects:
        if o["kind"] == "Node":
            lists[("", "nodes")].append(o)
        elif o["kind"] in files:
            lists[(o["metadata"]["namespace"], files[o["kind"]])].append(o)
    for ns in {o["metadata"].get("namespace") for o in objects if o["kind"] != "Node"}:
        for name in files.values():
            lists.setdefault((ns, name), [])
    for (ns, name), items in lists.items():
        folder = root / ns if ns else root
        folder.mkdir(parents=True, exist_ok=True)
        kind = next((k for k, v in files.items() if v == name), "Node")
        body = {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                "items": [_list_item(o) for o in items] or None}  # fmt: skip
        (folder / f"{name}.json").write_text(json.dumps(body, indent=4))
    write_dump_logs(root, logs or {})
    return root


def live_objects(kubectl, namespace: str) -> list[Obj]:
    """The namespace's objects and the cluster's nodes, as the API server returns them (kind set)."""
    out = []
    for resource in (*LIVE_KINDS, "nodes"):
        body = kubectl.json("get", resource, *(["-n", namespace] if resource != "nodes" else []))
        out += body.get("items") or []
    for resource in HPA_VERSIONS:
        proc = kubectl("get", resource, "-n", namespace, "-o", "json", check=False)
        if proc.returncode == 0:
            return out + (json.loads(proc.stdout).get("items") or [])
    return out


def must_gather_tree(root: Path, objects: list[Obj], logs: Logs | None = None) -> Path:
    """An OpenShift must-gather written from objects: under the image folder `oc adm must-gather` creates,
    namespaces/<ns>/<group>/<resource>.yaml lists, one YAML per pod and per node, and each container's
    current.log (with timestamps, as `oc adm inspect` asks for)."""
    base = root / "must-gather.local.5271920571" / "quay-io-openshift-release-dev-ocp-v4-0-art-dev-sha256-0b1c2d"
    lists: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for o in objects:
        meta = o["metadata"]
        if o["kind"] == "Node":
            path = base / "cluster-scoped-resources" / "core" / "nodes" / f"{meta['name']}.yaml"
            _write_yaml(path, o)
            continue
        if o["kind"] not in MUST_GATHER_LISTS:
            continue
        group, resource, _ = MUST_GATHER_LISTS[o["kind"]]
        lists[(meta["namespace"], f"{group}/{resource}")].append(o)
        if o["kind"] == "Pod":
            _write_yaml(base / "namespaces" / meta["namespace"] / "pods" / meta["name"] / f"{meta['name']}.yaml", o)
    for (ns, rel), items in lists.items():
        kind = items[0]["kind"]
        api_version = MUST_GATHER_LISTS[kind][2]
        body = {"apiVersion": api_version, "kind": f"{kind}List", "items": items, "metadata": {"resourceVersion": "1"}}
        _write_yaml(base / "namespaces" / ns / f"{rel}.yaml", body)
    for (ns, pod, container), lines in (logs or {}).items():
        folder = base / "namespaces" / ns / "pods" / pod / container / container / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "current.log").write_text("".join(f"2026-12-06T06:00:{i % 60:02d}.000000000Z {line}\n"
                                                    for i, line in enumerate(lines)))  # fmt: skip
    return root


def tar_gz(folder: Path, dest: Path) -> Path:
    """The folder packed as `tar czf dest folder` would (its name as the top entry)."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return dest


def _list_item(o: Obj) -> Obj:
    return {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}


def _write_yaml(path: Path, obj: Obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Through JSON first: objects that share parts would be written with YAML aliases, which kubectl never writes.
    path.write_text(yaml.safe_dump(json.loads(json.dumps(obj)), sort_keys=False))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`aiops ARGS` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "aiops.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip


def big_dump(root: Path, min_objects: int = 500, now: datetime | None = None) -> Path:
    """A cluster-info dump of at least `min_objects` namespaced objects (events not counted): every failure
    scenario, again and again, each copy in a namespace of its own, with a log for each pod."""
    objects: list[Obj] = []
    copy_no = 0
    while sum(o["kind"] in DUMP_FILES and o["kind"] != "Event" for o in objects) < min_objects:
        for case in CASES:
            objects += scenario_objects(case, f"{case.name[:50]}-{copy_no}", now)
        copy_no += 1
    nodes = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Node"}  # shared, as on a cluster
    objects = [o for o in objects if o["kind"] != "Node"] + list(nodes.values())
    logs = {
        (o["metadata"]["namespace"], o["metadata"]["name"], c["name"]): [
            f"GET /api/orders/{i} 200 {i % 7}ms" if i % 5 else f"upstream {i} failed: connection refused"
            for i in range(200)
        ]
        for o in objects
        if o["kind"] == "Pod"
        for c in o["spec"].get("containers") or []
    }
    return dump_tree(root, objects, logs)
