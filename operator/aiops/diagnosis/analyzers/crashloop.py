"""CrashLoopBackOff: a container keeps exiting; the last exit code says how it died."""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import container_statuses, finding, item, name
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("CrashLoopBackOff",)
SCORE_EXPLAINED = 0.8  # the exit code names the kind of failure
SCORE_UNEXPLAINED = 0.7  # crashing, but the code (or the last state) does not say why

# exit code -> (meaning, what an SRE does about it)
EXIT_CODES: dict[int, tuple[str, str]] = {
    0: (
        "exited successfully, and restartPolicy Always restarts it",
        "The process finishes instead of serving: check its command/args, or run it as a Job.",
    ),
    1: (
        "application error",
        "Read the previous container's log (kubectl logs --previous) for the error; fix the config or code,"
        " or roll back the change that introduced it.",
    ),
    2: (
        "misuse of a shell builtin or bad arguments",
        "Check the container's command and args against the image's entrypoint.",
    ),
    126: (
        "command found but not executable",
        "Fix the file mode of the entrypoint in the image (chmod +x) or the command path.",
    ),
    127: (
        "command not found",
        "The command or entrypoint does not exist in the image: fix command/args or the image tag.",
    ),
    134: ("aborted (SIGABRT)", "Read the previous log for the assertion or abort; it is an application bug."),
    137: (
        "killed by SIGKILL (OOM kill or liveness-probe kill)",
        "Check the liveness probe (timeouts, initialDelaySeconds) and the memory working set against the limit.",
    ),
    139: (
        "segmentation fault (SIGSEGV)",
        "A native crash: check for an incompatible base image or library, and roll back the image.",
    ),
    143: (
        "terminated by SIGTERM",
        "Something stops the container: check liveness probes, preStop hooks and whether the process handles"
        " SIGTERM as a normal exit.",
    ),
}


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for pod in bundle.pods:
        for status in container_statuses(pod):
            waiting = (status.get("state") or {}).get("waiting") or {}
            last = (status.get("lastState") or {}).get("terminated") or {}
            # oom.py reports OOMKilled containers with stronger proof; saying it twice adds nothing.
            if waiting.get("reason") == "CrashLoopBackOff" and last.get("reason") != "OOMKilled":
                findings.append(_finding(bundle, pod, status, waiting, last))
    return findings


def _finding(bundle: EvidenceBundle, pod: Obj, status: Obj, waiting: Obj, last: Obj) -> Finding:
    pod_name, container = name(pod), status["name"]
    restarts = status.get("restartCount", 0)
    code = last.get("exitCode")
    meaning, mitigation = EXIT_CODES.get(
        code,
        (
            "no recorded exit code" if code is None else f"exit code {code}",
            "Read the previous container's log (kubectl logs --previous) and the pod's events.",
        ),
    )
    exit_text = f"exit code {code} ({meaning})" if code is not None else meaning
    evidence = [
        item(
            "kubernetes",
            f"Pod/{pod_name} container {container}: waiting CrashLoopBackOff ({waiting.get('message', '')}),"
            f" restartCount {restarts}, last terminated reason {last.get('reason', '?')} {exit_text}"
            f" at {last.get('finishedAt', '?')}",
            "crashloop",
            pod_name,
            container,
        )
    ]
    # The crashed instance's last words are usually the real error.
    lines = [line for line in bundle.logs.get(f"{pod_name}/{container}", []) if line.strip()]
    if lines:
        evidence.append(
            item("logs", f"{pod_name}/{container} last log line: {lines[-1]}", "crashloop-log", pod_name, container)
        )
    return finding(
        f"Pod/{pod_name}",
        "CrashLoopBackOff",
        SCORE_EXPLAINED if code in EXIT_CODES else SCORE_UNEXPLAINED,
        f"Container {container} is in CrashLoopBackOff after {restarts} restarts; last {exit_text}.",
        mitigation,
        evidence,
    )
