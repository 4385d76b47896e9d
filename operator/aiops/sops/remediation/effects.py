"""Whether runbooks and diagnoses work: SOP statistics and feedback accuracy, recomputed from Incidents.

Recomputing from the Incidents of the namespace (rather than counting up) keeps the numbers right
however often it runs: an Incident counts once whatever happened to the operator in between.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

from kubernetes.client.exceptions import ApiException

from aiops.api import INCIDENT, SOP
from aiops.api.incident import IncidentPhase
from aiops.api.sop import SOPStats
from aiops.core import kube
from aiops.core.status import parse_time


def sop_stats(incidents: list[dict[str, Any]], sop_name: str) -> SOPStats:
    used = [i for i in incidents if ((i.get("status") or {}).get("sop") or {}).get("name") == sop_name]
    resolved = [i for i in used if i["status"].get("phase") == IncidentPhase.RESOLVED.value]
    escalated = [i for i in used if i["status"].get("phase") == IncidentPhase.ESCALATED.value]
    durations = [
        (parse_time(i["status"]["resolvedAt"]) - parse_time(i["status"]["detectedAt"])).total_seconds()
        for i in resolved
        if i["status"].get("resolvedAt") and i["status"].get("detectedAt")
    ]
    verdicts = [i["spec"]["feedback"]["correct"] for i in used if (i.get("spec") or {}).get("feedback")]
    finished = len(resolved) + len(escalated)
    return SOPStats(
        times_used=len(used),
        resolved=len(resolved),
        escalated=len(escalated),
        success_rate=round(len(resolved) / finished, 4) if finished else None,
        mean_time_to_resolve_seconds=round(mean(durations), 1) if durations else None,
        feedback_count=len(verdicts),
        diagnosis_accuracy=round(sum(verdicts) / len(verdicts), 4) if verdicts else None,
    )


def model_accuracy(incidents: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Per model that wrote a diagnosis (or "deterministic-analyzers"): (feedback count, share correct)."""
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for i in incidents:
        feedback = (i.get("spec") or {}).get("feedback")
        model = ((i.get("status") or {}).get("diagnosis") or {}).get("model")
        if feedback and model:
            verdicts[model].append(bool(feedback["correct"]))
    return {m: (len(v), sum(v) / len(v)) for m, v in verdicts.items()}


def refresh(client: kube.Client, namespace: str, sop_name: str, current: dict[str, Any] | None = None) -> None:
    """Rewrites the SOP's status.stats; `current` stands in for its stored self (a status not yet written)."""
    items = client.list(INCIDENT, namespace)
    if current is not None:
        name = current["metadata"]["name"]
        items = [i for i in items if i["metadata"]["name"] != name] + [current]
    try:
        client.patch_status(SOP, sop_name, namespace, {"stats": sop_stats(items, sop_name).wire()})
    except ApiException as exc:
        if exc.status != 404:  # the SOP was deleted since: nothing to keep the score on
            raise
