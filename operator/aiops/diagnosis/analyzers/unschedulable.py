"""Pending pods the scheduler cannot place, with the scheduler's per-node reasons parsed out of
`0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 Insufficient nvidia.com/gpu.`"""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import (
    event_item,
    event_time,
    events_for,
    finding,
    item,
    name,
    workload_resource,
)
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = (
    "InsufficientGPU",
    "InsufficientCPU",
    "InsufficientMemory",
    "InsufficientResource",
    "UntoleratedTaint",
    "NodeAffinityMismatch",
    "PodAffinityMismatch",
    "UnboundPVC",
    "VolumeNodeAffinityConflict",
    "NodesCordoned",
    "Unschedulable",
)
# A cause that rules out every node is the whole answer: 0.6 + 0.3 x the share of nodes it rules out.
SCORE_BASE, SCORE_SHARE = 0.6, 0.3
SCORE_CONTROL_PLANE_TAINT = 0.3  # workloads are meant to stay off control-plane nodes: context, not a cause
SCORE_UNBOUND_PVC = 0.5  # the claim is the suspect; pvc.py says why it is unbound

AVAILABLE = re.compile(r"(\d+)/(\d+) nodes are available: (.*?)(?:\.\s+preemption:|\.?\s*$)", re.S)
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")

# (pattern on one "N <reason>" part, failure mode or None for Insufficient*); first match wins
RULES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"Insufficient (\S+)"), None),
    (re.compile(r"Too many pods"), "InsufficientResource"),
    (re.compile(r"(?:untolerated taint|had taint) \{([^}]*)\}"), "UntoleratedTaint"),
    (
        re.compile(r"didn't match Pod's node affinity|didn't match node selector|node affinity/selector"),
        "NodeAffinityMismatch",
    ),
    (re.compile(r"pod (?:anti-)?affinity"), "PodAffinityMismatch"),
    (re.compile(r"unbound immediate PersistentVolumeClaims"), "UnboundPVC"),
    (re.compile(r"volume node affinity conflict"), "VolumeNodeAffinityConflict"),
    (re.compile(r"were unschedulable"), "NodesCordoned"),
)

MITIGATIONS = {
    "InsufficientGPU": "No node has a free {detail}: add GPU nodes (or let the autoscaler scale the GPU pool),"
    " free GPUs held by idle pods, or lower the pod's GPU request.",
    "InsufficientCPU": "Requests exceed free CPU: lower the pod's cpu request, scale the node pool, or evict"
    " lower-priority workloads.",
    "InsufficientMemory": "Requests exceed free memory: lower the pod's memory request, scale the node pool, or"
    " evict lower-priority workloads.",
    "InsufficientResource": "No node has room for {detail}: scale the node pool or lower the request.",
    "UntoleratedTaint": "Nodes carry taint {detail}: add a matching toleration to the pod template if it belongs"
    " there, or remove the taint if it was left behind (kubectl taint nodes NODE KEY-).",
    "NodeAffinityMismatch": "No node matches the pod's nodeSelector/affinity: check the selector against"
    " node labels (kubectl get nodes --show-labels); a renamed label or a drained pool is typical.",
    "PodAffinityMismatch": "Pod (anti-)affinity rules leave no node: relax required rules to preferred, or add"
    " nodes/zones.",
    "UnboundPVC": "The pod waits for its PersistentVolumeClaim to bind: see the claim's events (storage class,"
    " provisioner).",
    "VolumeNodeAffinityConflict": "The pod's volume is pinned to a zone/node the pod cannot run on: schedule the"
    " pod into the volume's zone or recreate the volume.",
    "NodesCordoned": "Nodes are cordoned: uncordon them once maintenance is over (kubectl uncordon NODE).",
    "Unschedulable": "Read the scheduler's message; scale the cluster or relax the pod's constraints.",
}


def parse(message: str) -> tuple[int, list[tuple[str, str, str, int]]]:
    """The node total and, per cause, (failure mode, key such as the resource or taint, the scheduler's
    words, nodes ruled out) of a scheduler message; total 0 and no causes if it does not parse."""
    m = AVAILABLE.search(message)
    if not m:
        return 0, []
    total = int(m.group(2))
    causes = []
    for part in re.split(r",\s*(?=\d+\s)", m.group(3)):
        counted = re.match(r"(\d+)\s+(.*)", part.strip())
        # "pod has unbound immediate PersistentVolumeClaims" has no count: it rules out every node
        count, text = (int(counted.group(1)), counted.group(2)) if counted else (total, part.strip())
        causes.append((*_cause(text), text, count))
    return total, causes


def _cause(text: str) -> tuple[str, str]:
    for pattern, mode in RULES:
        if m := pattern.search(text):
            if mode is None:
                resource = m.group(1).rstrip(".")
                if resource.endswith("/gpu"):
                    return "InsufficientGPU", resource
                return {"cpu": "InsufficientCPU", "memory": "InsufficientMemory"}.get(
                    resource, "InsufficientResource"
                ), resource
            return mode, (m.group(1).strip() if m.groups() else text)
    return "Unschedulable", text


def _scheduler_message(bundle: EvidenceBundle, pod: Obj) -> tuple[str, list]:
    """The newest scheduler verdict for a pending pod, and the evidence for it."""
    pod_name = name(pod)
    condition = next(
        (
            c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
        ),
        None,
    )
    events = [
        e for e in events_for(bundle, {"FailedScheduling"}, kind="Pod") if e["involvedObject"]["name"] == pod_name
    ]
    evidence = []
    message = ""
    if condition:
        message = condition.get("message") or ""
        evidence.append(
            item(
                "kubernetes",
                f"Pod/{pod_name} PodScheduled=False Unschedulable since {condition.get('lastTransitionTime', '?')}:"
                f" {message}",
                "unschedulable",
                pod_name,
            )
        )
    if events:
        newest = max(events, key=event_time)
        message = newest.get("message") or message
        evidence.append(event_item("unschedulable-event", newest))
    return message, evidence


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    # (failure mode, key) -> pods, evidence, best score, the scheduler's words
    groups: dict[tuple[str, str], tuple[list[str], list, float, str]] = {}
    for pod in bundle.pods:
        if (pod.get("status") or {}).get("phase") != "Pending":
            continue
        message, evidence = _scheduler_message(bundle, pod)
        if not evidence:
            continue
        total, causes = parse(message)
        for mode, key, text, count in causes or [("Unschedulable", "", message or "no scheduler message", 0)]:
            if mode == "UntoleratedTaint" and key.split(":")[0].strip() in CONTROL_PLANE_TAINTS:
                score = SCORE_CONTROL_PLANE_TAINT
            elif mode == "UnboundPVC":
                score = SCORE_UNBOUND_PVC
            else:
                score = SCORE_BASE + SCORE_SHARE * (count / total if total else 1)
            words = f"{text} ({count}/{total} nodes)" if total else text
            pods, cited, best, _ = groups.get((mode, key), ([], [], 0.0, words))
            groups[(mode, key)] = (pods + [name(pod)], cited + evidence, max(best, score), words)
    return [
        finding(
            workload_resource(bundle, pods),
            mode,
            score,
            f"{len(pods)} pod(s) Pending, the scheduler says: {words}.",
            MITIGATIONS[mode].format(detail=key),
            evidence,
        )
        for (mode, key), (pods, evidence, score, words) in groups.items()
    ]
