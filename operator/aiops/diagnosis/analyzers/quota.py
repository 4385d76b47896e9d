"""ResourceQuota exhaustion: controllers cannot create pods (FailedCreate "exceeded quota"), or a
quota's used has reached its hard limit."""

from __future__ import annotations

import re

from kubernetes.utils import parse_quantity

from aiops.diagnosis.analyzers.common import event_item, events_for, finding, item, name, plural
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("QuotaExceeded", "QuotaRequiresLimits", "QuotaExhausted")
SCORE_BLOCKED = 0.9  # pods are refused: direct proof
SCORE_FULL = 0.45  # the quota is full; harmful only once something needs to create pods

# `Error creating: pods "web-7d9f-abcde" is forbidden: exceeded quota: compute-resources,
#  requested: limits.memory=512Mi, used: limits.memory=3840Mi, limited: limits.memory=4Gi`
EXCEEDED = re.compile(r"exceeded quota: ([^,\s]+), requested: (.*?), used: (.*?), limited: (.*)$")
# `Error creating: pods "x" is forbidden: failed quota: compute-resources: must specify limits.cpu,limits.memory`
MUST_SPECIFY = re.compile(r"failed quota: ([^:\s]+): must specify (\S+)")


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    blocked: dict[tuple[str, str], list] = {}  # (quota, failure mode) -> evidence
    details: dict[tuple[str, str], str] = {}
    for event in events_for(bundle, {"FailedCreate"}):
        message = event.get("message") or ""
        if m := EXCEEDED.search(message):
            key = (m.group(1), "QuotaExceeded")
            details[key] = f"requested {m.group(2)}, used {m.group(3)}, limited {m.group(4)}"
        elif m := MUST_SPECIFY.search(message):
            key = (m.group(1), "QuotaRequiresLimits")
            details[key] = f"pods must specify {m.group(2)}"
        else:
            continue
        blocked.setdefault(key, []).append(event_item("quota-event", event))
    # quota -> evidence of its used-up resources, for the quotas that have any
    status_evidence = {
        name(q): item("kubernetes", f"ResourceQuota/{name(q)} used/hard: {', '.join(used_up)}", "quota", name(q))
        for q in bundle.quotas
        if (used_up := _used_up(q))
    }
    findings = []
    for (quota, mode), evidence in sorted(blocked.items()):
        full = status_evidence.get(quota)
        if mode == "QuotaExceeded":
            fix = (
                f"Raise the hard limits of ResourceQuota {quota} (or free room: scale down idle workloads, lower"
                " requests/limits in the pod template); the controller retries on its own."
            )
        else:
            fix = (
                f"ResourceQuota {quota} requires every pod to set {details[(quota, mode)].split()[-1]}: add them to"
                " the pod template, or a LimitRange that defaults them."
            )
        findings.append(
            finding(
                f"ResourceQuota/{quota}",
                mode,
                SCORE_BLOCKED,
                f"Pods cannot be created, quota {quota}: {details[(quota, mode)]} ({plural(len(evidence), 'event')}).",
                fix,
                evidence + ([full] if full else []),
            )
        )
    cited = {quota for quota, _ in blocked}
    for quota, full in sorted(status_evidence.items()):
        if quota not in cited:
            findings.append(
                finding(
                    f"ResourceQuota/{quota}",
                    "QuotaExhausted",
                    SCORE_FULL,
                    f"ResourceQuota {quota} is used up ({full.summary}).",
                    f"New pods (a rollout, a scale-up, a restart on another node) will be refused: raise the limits"
                    f" of ResourceQuota {quota} or free room before they are needed.",
                    [full],
                )
            )
    return findings


def _used_up(quota: Obj) -> list[str]:
    """`limits.memory 4Gi/4Gi` for each resource whose used has reached hard (a hard 0 is a deliberate ban)."""
    status = quota.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    return [
        f"{res} {used[res]}/{hard[res]}"
        for res in sorted(hard)
        if res in used and 0 < parse_quantity(hard[res]) <= parse_quantity(used[res])
    ]
