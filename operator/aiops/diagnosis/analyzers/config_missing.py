"""CreateContainerConfigError and config volume mounts: a ConfigMap or Secret (or one key of it)
that the pod references does not exist."""

from __future__ import annotations

import re

from aiops.diagnosis.analyzers.common import container_statuses, event_item, events_for, finding, item, name, plural
from aiops.diagnosis.evidence import EvidenceBundle, Finding

FAILURE_MODES = ("MissingConfigMap", "MissingSecret", "MissingConfigKey")
SCORE = 0.9  # the kubelet names the missing object

# `configmap "app-config" not found`, `secret "db-creds" not found`,
# `couldn't find key DB_URL in ConfigMap shop/app-config` (also in Secret ns/name).
MISSING_OBJECT = re.compile(r'\b(configmap|secret)s? "([^"]+)" not found', re.I)
MISSING_KEY = re.compile(
    r"couldn't find key (\S+) in (ConfigMap|Secret) (?:[^/\s]+/)?([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)", re.I
)


def missing_config(message: str) -> tuple[str, str, str | None] | None:
    """(kind, name, key or None) of the config object a kubelet message says is missing."""
    if m := MISSING_KEY.search(message):
        return ("ConfigMap" if m.group(2).lower() == "configmap" else "Secret"), m.group(3), m.group(1)
    if m := MISSING_OBJECT.search(message):
        return ("ConfigMap" if m.group(1).lower() == "configmap" else "Secret"), m.group(2), None
    return None


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    # (kind, name, key) -> pods and evidence: one finding per missing object, however many pods need it
    groups: dict[tuple[str, str, str | None], tuple[set[str], list]] = {}
    for pod in bundle.pods:
        for status in container_statuses(pod):
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") != "CreateContainerConfigError":
                continue
            missing = missing_config(waiting.get("message") or "")
            if missing:
                pods, evidence = groups.setdefault(missing, (set(), []))
                pods.add(name(pod))
                evidence.append(
                    item(
                        "kubernetes",
                        f"Pod/{name(pod)} container {status['name']}: waiting CreateContainerConfigError:"
                        f" {waiting.get('message')}",
                        "config",
                        name(pod),
                        status["name"],
                    )
                )
    # A configMap/secret volume that does not exist shows only as FailedMount events.
    for event in events_for(bundle, {"Failed", "FailedMount"}, kind="Pod"):
        missing = missing_config(event.get("message") or "")
        if missing:
            pods, evidence = groups.setdefault(missing, (set(), []))
            pods.add(event["involvedObject"]["name"])
            evidence.append(event_item("config-event", event))
    findings = []
    for (kind, obj, key), (pods, evidence) in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1], g[0][2] or "")):
        ns = bundle.target.namespace
        if key:
            mode, what = "MissingConfigKey", f"key {key} of {kind} {ns}/{obj}"
            fix = f"Add key {key} to {kind} {obj} (or mark the reference optional: true), then restart the pods."
        else:
            mode, what = ("MissingConfigMap" if kind == "ConfigMap" else "MissingSecret"), f"{kind} {ns}/{obj}"
            fix = (
                f"Create {kind} {obj} in namespace {ns} (check the name in the pod template and whether the tool"
                f" that creates it - Helm, Argo CD, External Secrets - failed); the kubelet retries on its own."
            )
        findings.append(
            finding(
                f"{kind}/{obj}",
                mode,
                SCORE,
                f"{plural(len(pods), 'pod')} cannot start their containers: {what} does not exist.",
                fix,
                evidence,
            )
        )
    return findings
