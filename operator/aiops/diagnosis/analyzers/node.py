"""Node conditions of the nodes that host the target's pods: NotReady and the kubelet's pressure
conditions (memory, disk, PIDs) or a node without a network."""

from __future__ import annotations

from aiops.api.incident import Cause, CauseKind
from aiops.diagnosis.analyzers.common import finding, item, name, plural
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("NodeNotReady", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")
SCORE_NOT_READY = 0.85  # pods on it are not running as they should, or will be evicted
SCORE_PRESSURE = 0.7  # the kubelet evicts and refuses pods under pressure

# condition type -> (failure mode, what to do)
PROBLEMS = {
    "MemoryPressure": (
        "MemoryPressure",
        "Find the pods using memory beyond their requests on {node} (kubectl top pods, sorted) and set limits;"
        " cordon and drain the node if it keeps evicting.",
    ),
    "DiskPressure": (
        "DiskPressure",
        "Free disk on {node}: prune unused images (crictl rmi --prune), find pods writing to emptyDir or logs,"
        " and set ephemeral-storage limits.",
    ),
    "PIDPressure": (
        "PIDPressure",
        "A pod on {node} forks without bound: find it (process counts per pod) and set the kubelet's podPidsLimit.",
    ),
    "NetworkUnavailable": (
        "NetworkUnavailable",
        "The CNI has not configured {node}: check the CNI daemonset pod on that node and its logs.",
    ),
}
# NVIDIA GPU feature discovery's driver version labels, major to revision.
DRIVER_LABELS = ("nvidia.com/cuda.driver.major", "nvidia.com/cuda.driver.minor", "nvidia.com/cuda.driver.rev")
NOT_READY_FIX = (
    "Check the kubelet and container runtime on {node} (systemctl status kubelet, journalctl -u kubelet);"
    " cordon and drain it so its pods are rescheduled if it does not recover."
)


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    hosted: dict[str, list[str]] = {}
    for pod in bundle.pods:
        if node := (pod.get("spec") or {}).get("nodeName"):
            hosted.setdefault(node, []).append(name(pod))
    if bundle.target.kind == "Node":
        hosted.setdefault(bundle.target.name, [])
    findings = []
    for node in bundle.nodes:
        node_name = name(node)
        if node_name not in hosted:
            continue
        pods = hosted[node_name]
        hosting = f" It hosts {plural(len(pods), 'target pod')}." if pods else ""
        for condition in (node.get("status") or {}).get("conditions") or []:
            kind, status = condition.get("type"), condition.get("status")
            if kind == "Ready" and status in ("False", "Unknown"):
                # Unknown: the kubelet stopped posting status (node down or partitioned); False: it says it is sick
                mode, score, fix = "NodeNotReady", SCORE_NOT_READY, NOT_READY_FIX
            elif kind in PROBLEMS and status == "True":
                (mode, fix), score = PROBLEMS[kind], SCORE_PRESSURE
            else:
                continue
            summary = (
                f"Node/{node_name} condition {kind}={status} reason {condition.get('reason', '?')} since"
                f" {condition.get('lastTransitionTime', '?')}: {condition.get('message', '')}"
            )
            findings.append(
                finding(
                    f"Node/{node_name}",
                    mode,
                    score,
                    f"Node {node_name} has {kind}={status} ({condition.get('reason', '?')}).{hosting}",
                    fix.format(node=node_name),
                    [item("kubernetes", summary, "node", node_name, kind)],
                    node_causes(node),
                )
            )
    return findings


def node_causes(node: dict) -> list[Cause]:
    """The node's OS image with its kubelet, and its GPU driver where GPU feature discovery labels it: what
    nodes of one image or driver failing on several clusters at once would share."""
    info = (node.get("status") or {}).get("nodeInfo") or {}
    causes = []
    if info.get("osImage"):
        value = f"{info['osImage']}; kubelet {info.get('kubeletVersion', '?')}"
        causes.append(Cause(kind=CauseKind.NODE_IMAGE, value=value[:512]))
    labels = node["metadata"].get("labels") or {}
    driver = ".".join(labels[k] for k in DRIVER_LABELS if k in labels)
    if driver:
        causes.append(Cause(kind=CauseKind.GPU_DRIVER, value=driver))
    return causes
