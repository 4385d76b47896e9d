"""Failing liveness, readiness and startup probes (the kubelet's Unhealthy events), and running
containers that are not ready with no probe event to say why."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import event_item, event_time, events_for, finding, item, name, plural
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("LivenessProbeFailing", "ReadinessProbeFailing", "StartupProbeFailing", "ContainerNotReady")
SCORES = {
    "Liveness": 0.75,  # the kubelet restarts the container over it
    "Startup": 0.75,  # the container never gets to serve
    "Readiness": 0.6,  # traffic is withheld, nothing restarts
}
SCORE_KILLED = 0.85  # a liveness failure the kubelet acted on ("failed liveness probe, will be restarted")
SCORE_NOT_READY = 0.35  # not ready, but no event says why: weak

PROBE = re.compile(r"^(Liveness|Readiness|Startup) probe (?:failed|errored)", re.I)
CONTAINER_IN_PATH = re.compile(r"\{([^}]+)\}")  # involvedObject.fieldPath "spec.containers{app}"

# what the probe's error says -> what to do about it
SYMPTOMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"connection refused", re.I),
        "Nothing listens on the probe port: check the probe's port against the port the app binds (and its"
        " bind address), or give the app more time (initialDelaySeconds / a startupProbe).",
    ),
    (
        re.compile(r"deadline exceeded|timeout|timed out", re.I),
        "The endpoint answers too slowly: raise timeoutSeconds, keep the probe handler free of downstream calls,"
        " and check CPU throttling.",
    ),
    (
        re.compile(r"statuscode: \d+", re.I),
        "The health endpoint returns an error status: read the app log at the probe times; a liveness probe"
        " should not depend on downstream services.",
    ),
)
GENERIC = "Run the probe by hand (kubectl exec / port-forward) and compare with the probe spec."


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    killed = {
        (e["involvedObject"]["name"], _container(e))
        for e in events_for(bundle, {"Killing"}, kind="Pod")
        if "liveness probe" in (e.get("message") or "").lower()
    }
    groups: dict[tuple[str, str, str], list] = {}
    for event in events_for(bundle, {"Unhealthy"}, kind="Pod"):
        m = PROBE.match(event.get("message") or "")
        if m:
            key = (event["involvedObject"]["name"], _container(event), m.group(1).capitalize())
            groups.setdefault(key, []).append(event)
    findings = []
    for (pod_name, container, probe), events in sorted(groups.items()):
        count = sum(e.get("count") or 1 for e in events)
        newest = max(events, key=event_time)
        message = newest.get("message") or ""
        was_killed = probe == "Liveness" and (pod_name, container) in killed
        mitigation = next((fix for pattern, fix in SYMPTOMS if pattern.search(message)), GENERIC)
        findings.append(
            finding(
                f"Pod/{pod_name}",
                f"{probe}ProbeFailing",
                SCORE_KILLED if was_killed else SCORES[probe],
                f"{probe} probe of container {container} failed {plural(count, 'time')}"
                f"{', and the kubelet restarted the container' if was_killed else ''}: {message}",
                mitigation,
                [event_item(f"probe-{probe.lower()}", e) for e in events],
            )
        )
    probed = {(pod_name, container) for pod_name, container, _ in groups}
    for pod in bundle.pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            running = "running" in (status.get("state") or {})
            if running and status.get("ready") is False and (name(pod), status["name"]) not in probed:
                findings.append(
                    finding(
                        f"Pod/{name(pod)}",
                        "ContainerNotReady",
                        SCORE_NOT_READY,
                        f"Container {status['name']} is running but not ready, and no probe event says why.",
                        "Describe the pod: the readiness probe may fail quietly (events expire after an hour) or a"
                        " readiness gate is unmet.",
                        [
                            item(
                                "kubernetes",
                                f"Pod/{name(pod)} container {status['name']}: running since"
                                f" {status['state']['running'].get('startedAt', '?')}, ready false,"
                                f" restartCount {status.get('restartCount', 0)}",
                                "notready",
                                name(pod),
                                status["name"],
                            )
                        ],
                    )
                )
    return findings


def _container(event: Obj) -> str:
    m = CONTAINER_IN_PATH.search(event["involvedObject"].get("fieldPath") or "")
    return m.group(1) if m else "?"
