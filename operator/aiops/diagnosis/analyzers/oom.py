"""OOMKilled containers: the kernel's OOM killer ended a container (exit 137) at its memory limit."""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import container_statuses, finding, item, limit_of, name, pod_revision
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("OOMKilled",)
SCORE = 0.95  # the kubelet's own verdict: direct proof


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for pod in bundle.pods:
        for status in container_statuses(pod):
            for when in ("state", "lastState"):
                terminated = (status.get(when) or {}).get("terminated") or {}
                if terminated.get("reason") == "OOMKilled":
                    findings.append(_finding(bundle, pod, status, terminated))
                    break
    return findings


def _finding(bundle: EvidenceBundle, pod: Obj, status: Obj, terminated: Obj) -> Finding:
    pod_name, container = name(pod), status["name"]
    limit = limit_of(pod, container, "memory")
    restarts = status.get("restartCount", 0)
    exit_code = terminated.get("exitCode", 137)
    limit_text = f"memory limit {limit}" if limit else "no memory limit (the node ran out of memory)"
    summary = (
        f"Pod/{pod_name} container {container}: terminated OOMKilled, exit code {exit_code},"
        f" finished {terminated.get('finishedAt', '?')}, restartCount {restarts}, {limit_text}"
    )
    revision = pod_revision(bundle, pod)
    rollback = f"; roll back if the growth started with revision {revision}" if revision else ""
    if limit:
        mitigation = (
            f"Raise the memory limit of container {container} above its working set (limit {limit})"
            f" or fix the leak{rollback}."
        )
    else:
        mitigation = (
            f"Set memory requests and a limit on container {container} so the scheduler places it on a node"
            f" with room, and find what grew{rollback}."
        )
    return finding(
        f"Pod/{pod_name}",
        "OOMKilled",
        SCORE,
        f"Container {container} was OOMKilled (exit {exit_code}) and restarted {restarts} times; {limit_text}.",
        mitigation,
        [item("kubernetes", summary, "oom", pod_name, container)],
    )
