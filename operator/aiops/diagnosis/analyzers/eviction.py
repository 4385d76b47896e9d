"""Evicted pods: the kubelet killed them to relieve node pressure (or an ephemeral-storage limit)."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import finding, item, name, plural
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("Evicted",)
SCORE = 0.75  # proof that pods died of node pressure; the node's condition may have cleared since

# "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. Container app was using
# 1800Mi, request is 256Mi, has larger consumption of its request."
LOW_ON = re.compile(r"low on resource: ([\w-]+)")
USING = re.compile(r"Container (\S+) was using ([^\s,]+), request is ([^\s,]+)")
# "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi." / "Container app exceeded its
# local ephemeral storage limit "1Gi"." : the pod's own limit, not the node
OVER_LIMIT = re.compile(r"ephemeral (?:local )?storage.*(?:exceeds|limit)|exceeded its local ephemeral", re.I)


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    # (suspect, resource) -> evidence: node pressure blames the node, an ephemeral-storage limit the pod
    groups: dict[tuple[str, str], list] = {}
    for pod in bundle.pods:
        status = pod.get("status") or {}
        if status.get("phase") != "Failed" or status.get("reason") != "Evicted":
            continue
        message = status.get("message") or ""
        node = (pod.get("spec") or {}).get("nodeName") or "?"
        low = LOW_ON.search(message)
        if low or not OVER_LIMIT.search(message):
            key = (f"Node/{node}", low.group(1) if low else "unknown")
        else:
            key = (f"Pod/{name(pod)}", "ephemeral-storage")
        groups.setdefault(key, []).append(
            item("kubernetes", f"Pod/{name(pod)} on node {node} Evicted: {message}", "evicted", name(pod))
        )
    findings = []
    for (suspect, resource), evidence in sorted(groups.items()):
        hogs = sorted({f"{m[1]} ({m[2]} used, {m[3]} requested)" for e in evidence if (m := USING.search(e.summary))})
        if suspect.startswith("Pod/"):
            reason = f"{suspect} was evicted for writing more ephemeral storage than its limit."
            fix = (
                "Raise the ephemeral-storage limit, or stop writing to the container filesystem and emptyDir"
                " (log to stdout, put data on a volume)."
            )
        else:
            reason = f"{plural(len(evidence), 'pod')} evicted from {suspect} for lack of {resource}" + (
                f"; over their requests: {', '.join(hogs)}." if hogs else "."
            )
            fix = (
                f"Set {resource} requests close to real use (and limits) so the scheduler does not overcommit the"
                " node: pods using far more than they request are evicted first. Delete the Failed pods once done"
                " (kubectl delete pod --field-selector=status.phase=Failed)."
            )
        findings.append(finding(suspect, "Evicted", SCORE, reason, fix, evidence))
    return findings
