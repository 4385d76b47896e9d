"""Jobs that gave up: too many failed pods (BackoffLimitExceeded) or out of time (DeadlineExceeded)."""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import container_statuses, finding, item, name
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("JobBackoffLimitExceeded", "JobDeadlineExceeded", "JobFailed")
SCORE = 0.85  # the Job controller's verdict; the pods' exits say why

FIXES = {
    "BackoffLimitExceeded": (
        "JobBackoffLimitExceeded",
        "The job's pods keep failing: read the failed pods' logs (kubectl logs job/{job} --previous) and fix the"
        " cause before re-running; raise backoffLimit only for flaky, retry-safe work.",
    ),
    "DeadlineExceeded": (
        "JobDeadlineExceeded",
        "The job ran past activeDeadlineSeconds: find what made it slow (input size, a stuck dependency, CPU"
        " throttling) or raise the deadline.",
    ),
}
OTHER_FIX = "Read the Failed condition and the job's pods; fix the cause, then delete and re-create the Job."


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for job in bundle.jobs:
        job_name = name(job)
        failed = next(
            (
                c
                for c in (job.get("status") or {}).get("conditions") or []
                if c.get("type") == "Failed" and c.get("status") == "True"
            ),
            None,
        )
        if failed is None:
            continue
        spec, status = job.get("spec") or {}, job.get("status") or {}
        mode, fix = FIXES.get(failed.get("reason", ""), ("JobFailed", OTHER_FIX))
        evidence = [
            item(
                "kubernetes",
                f"Job/{job_name} Failed={failed['status']} reason {failed.get('reason')} at"
                f" {failed.get('lastTransitionTime', '?')}: {failed.get('message', '')}; failed pods"
                f" {status.get('failed', 0)}, backoffLimit {spec.get('backoffLimit', 6)}, activeDeadlineSeconds"
                f" {spec.get('activeDeadlineSeconds', 'none')}",
                "job",
                job_name,
            )
        ]
        exits = _pod_exits(bundle, job_name)
        evidence += [item("kubernetes", text, "job-pod", pod_name) for pod_name, text in exits]
        last_exit = f" Last pod: {exits[-1][1]}." if exits else ""
        findings.append(
            finding(
                f"Job/{job_name}",
                mode,
                SCORE,
                f"Job {job_name} failed: {failed.get('reason')}: {failed.get('message', '')}.{last_exit}",
                fix.format(job=job_name),
                evidence,
            )
        )
    return findings


def _pod_exits(bundle: EvidenceBundle, job_name: str) -> list[tuple[str, str]]:
    """(pod, how its container ended) for the job's failed pods, oldest first."""
    exits = []
    for pod in sorted(bundle.pods, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
        owners = pod["metadata"].get("ownerReferences") or []
        if not any(o.get("kind") == "Job" and o.get("name") == job_name for o in owners):
            continue
        for status in container_statuses(pod):
            terminated = _terminated(status)
            if terminated.get("exitCode", 0) != 0:
                exits.append(
                    (
                        name(pod),
                        f"Pod/{name(pod)} container {status['name']} exited {terminated['exitCode']}"
                        f" ({terminated.get('reason', '?')}) at {terminated.get('finishedAt', '?')}",
                    )
                )
    return exits


def _terminated(status: Obj) -> Obj:
    return (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
