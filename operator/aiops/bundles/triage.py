"""What is broken in a bundle, when nobody named a target: the targets worth a diagnosis, worst first.

A symptom is read straight off an object's status (a pod crashlooping, OOMKilled, pending, evicted or not
Ready; a Deployment, StatefulSet or DaemonSet short of ready replicas; a failed Job; a NotReady node or one
under pressure) or off a Warning event. Pods are folded into the workload that owns them, so a Deployment
with ten crashlooping pods is one target with its symptoms, not ten. Each symptom weighs by how plainly it
says something is wrong (WEIGHTS); targets are ranked by the sum, and the caller diagnoses the first few.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiops.bundles.reader import Obj, Snapshot
from aiops.diagnosis.collectors.kubernetes import owners
from aiops.diagnosis.evidence import Target

SEVERE, DEGRADED, HINT = 3, 2, 1
# Container states that say plainly why it is not running.
FAILING_WAITS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
RESTARTS = 3  # restarts from which a container counts as unstable on their own
NODE_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
# Warning events on these kinds are about a target the collector can read; others are left out.
EVENT_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Node", "PersistentVolumeClaim"}
CLUSTER_SCOPED_NAMESPACE = "default"  # a Node target's namespace: the collector reads node events cluster-wide


def key(target: Target) -> str:
    """Kind/namespace/name, or Node/name: how a target is named to people (and in --target)."""
    t = target
    return f"{t.kind}/{t.name}" if t.kind == "Node" else f"{t.kind}/{t.namespace}/{t.name}"


@dataclass
class Problem:
    target: Target
    seen: dict[str, list[str]] = field(default_factory=dict)  # symptom -> the pods showing it ([]: the target)
    weight: int = 0

    @property
    def key(self) -> str:
        return key(self.target)

    @property
    def symptoms(self) -> list[str]:
        """Each symptom once, with the pods that show it: ten crashlooping pods make one line."""
        return [f"{symptom} ({_pods(pods)})" if pods else symptom for symptom, pods in self.seen.items()]


def _pods(names: list[str]) -> str:
    if len(names) > 3:
        return f"{len(names)} pods: {', '.join(names[:2])}, ..."
    return f"pod{'s' if len(names) > 1 else ''} {', '.join(names)}"


def find(snap: Snapshot) -> list[Problem]:
    """Every broken target in the bundle, the worst first."""
    found: dict[tuple[str, str, str], Problem] = {}
    rs_owner = {
        (rs["metadata"].get("namespace", ""), rs["metadata"]["name"]): sorted(owners(rs, "Deployment"))
        for rs in snap.all("ReplicaSet")
    }

    def note(target: Target, symptom: str, weight: int, pod: str | None = None) -> None:
        p = found.setdefault((target.kind, target.namespace, target.name), Problem(target))
        if symptom in p.seen and (pod is None or pod in p.seen[symptom]):
            return  # noted already
        p.seen.setdefault(symptom, []).extend([pod] if pod else [])
        p.weight += weight

    def pod_target(pod: Obj) -> Target:
        meta = pod["metadata"]
        ns = meta.get("namespace", "")
        for ref in meta.get("ownerReferences") or []:
            if ref.get("kind") == "ReplicaSet" and (deps := rs_owner.get((ns, ref.get("name")))):
                return Target("Deployment", deps[0], ns)
            if ref.get("kind") in ("StatefulSet", "DaemonSet", "Job"):
                return Target(ref["kind"], ref["name"], ns)
        return Target("Pod", meta["name"], ns)

    pods = {(p["metadata"].get("namespace", ""), p["metadata"]["name"]): p for p in snap.all("Pod")}
    for pod in pods.values():
        name = pod["metadata"]["name"]
        for symptom, weight in _pod_symptoms(pod):
            note(pod_target(pod), symptom, weight, name)
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for w in snap.all(kind):
            if symptom := _short_of_replicas(w):
                note(Target(kind, w["metadata"]["name"], w["metadata"].get("namespace", "")), symptom, DEGRADED)
            for c in (w.get("status") or {}).get("conditions") or []:
                if (c.get("type"), c.get("status")) in (("Progressing", "False"), ("ReplicaFailure", "True")):
                    target = Target(kind, w["metadata"]["name"], w["metadata"].get("namespace", ""))
                    note(target, f"{c['type']}: {c.get('reason')}: {c.get('message', '')}"[:200], SEVERE)
    for job in snap.all("Job"):
        for c in (job.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                target = Target("Job", job["metadata"]["name"], job["metadata"].get("namespace", ""))
                note(target, f"failed: {c.get('reason')}: {c.get('message', '')}"[:200], SEVERE)
    for node in snap.all("Node"):
        target = Target("Node", node["metadata"]["name"], CLUSTER_SCOPED_NAMESPACE)
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("status") != "True":
                note(target, f"NotReady ({c.get('reason') or c.get('status')})", SEVERE)
            elif c.get("type") in NODE_PRESSURE and c.get("status") == "True":
                note(target, f"{c['type']} ({c.get('reason')})", DEGRADED)
    for event in snap.all("Event"):
        obj = event.get("involvedObject") or {}
        if event.get("type") != "Warning" or obj.get("kind") not in EVENT_KINDS or not obj.get("name"):
            continue
        ns = obj.get("namespace") or event["metadata"].get("namespace", "")
        pod = pods.get((ns, obj["name"])) if obj["kind"] == "Pod" else None
        if obj["kind"] == "Node":
            target = Target("Node", obj["name"], CLUSTER_SCOPED_NAMESPACE)
        else:
            target = pod_target(pod) if pod else Target(obj["kind"], obj["name"], ns)
        if obj["kind"] == "Pod":
            note(target, f"Warning event {event.get('reason')}", HINT, obj["name"])
        else:
            note(target, f"Warning event {event.get('reason')} on {obj['kind']} {obj['name']}", HINT)
    return sorted(found.values(), key=lambda p: (-p.weight, p.key))


def _pod_symptoms(pod: Obj) -> list[tuple[str, int]]:
    status = pod.get("status") or {}
    out: list[tuple[str, int]] = []
    if status.get("reason") == "Evicted":
        out.append((f"evicted: {status.get('message', '')}"[:160], SEVERE))
    phase = status.get("phase")
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    scheduled = conditions.get("PodScheduled") or {}
    if phase == "Pending" and scheduled.get("status") == "False":
        out.append((f"unschedulable: {scheduled.get('message') or scheduled.get('reason')}"[:160], SEVERE))
    elif phase in ("Pending", "Failed", "Unknown"):
        out.append((phase, DEGRADED))
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        name = cs.get("name")
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FAILING_WAITS:
            out.append((f"container {name}: {waiting['reason']}", SEVERE))
        for state in ((cs.get("state") or {}).get("terminated"), (cs.get("lastState") or {}).get("terminated")):
            if state and state.get("reason") == "OOMKilled":
                out.append((f"container {name}: OOMKilled", SEVERE))
        if (cs.get("restartCount") or 0) >= RESTARTS:
            out.append((f"container {name}: restarted {cs['restartCount']} times", HINT))
    if phase == "Running" and (conditions.get("Ready") or {}).get("status") == "False":
        out.append(("not Ready", DEGRADED))
    return list(dict.fromkeys(out))


def _short_of_replicas(w: Obj) -> str | None:
    spec, status = w.get("spec") or {}, w.get("status") or {}
    if w["kind"] == "DaemonSet":
        want, ready = status.get("desiredNumberScheduled") or 0, status.get("numberReady") or 0
    else:
        want = spec.get("replicas", 1)
        ready = status.get("availableReplicas" if w["kind"] == "Deployment" else "readyReplicas") or 0
    return f"{ready}/{want} replicas ready" if ready < want else None
