"""Counting an operator's work after a fault: which Incidents were lost (never diagnosed, or without their
AnalysisRun) and which were diagnosed more than once (a second run, timeline entry, Event or diagnosedAt)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from harness import checkout_incident, phase
from support.observe import DiagnosisLog

DIAGNOSED = "RootCauseIdentified"  # the reason of the Diagnosed condition's Event and timeline entry


@dataclass
class Count:
    lost: list[str] = field(default_factory=list)  # "name: why", one per lost Incident
    duplicated: list[str] = field(default_factory=list)  # "name: what", one per extra copy

    def __str__(self) -> str:
        return f"lost: {self.lost[:10]}; duplicated: {self.duplicated[:10]}"


def create(kubectl, names: list[str], namespace: str, **spec) -> None:
    """The checkout-oomkilled Incidents, created in one kubectl call (a create, not an apply: no GET each)."""
    docs = [yaml.safe_dump(checkout_incident(n, **spec)) for n in names]
    kubectl("create", "-n", namespace, "-f", "-", input="\n---\n".join(docs))


def phases(kubectl, namespace: str) -> dict[str, str | None]:
    return {i["metadata"]["name"]: phase(i) for i in kubectl.json("get", "incidents", "-n", namespace)["items"]}


def until(predicate: Callable[[], object], timeout: float) -> bool:
    """Polls until `predicate()` holds or the time is up; False then, not raised: what is not done is counted
    lost, so that the case still prints its row."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def reached(kubectl, namespace: str, phase_: str, n: int) -> Callable[[], bool]:
    """Whether at least `n` of the namespace's Incidents are in `phase_`."""
    return lambda: sum(p == phase_ for p in phases(kubectl, namespace).values()) >= n


def summary(kubectl, namespace: str) -> str:
    """How many Incidents and AnalysisRuns are in each phase, for a failure message."""
    runs = Counter(phase(r) for r in kubectl.json("get", "analysisruns", "-n", namespace)["items"])
    return f"Incidents: {dict(Counter(phases(kubectl, namespace).values()))}; AnalysisRuns: {dict(runs)}"


def diagnoses(kubectl, names: list[str], namespace: str, log: DiagnosisLog | None = None) -> Count:
    """Each Incident diagnosed exactly once: Diagnosed, with one AnalysisRun, one Diagnosed timeline entry and
    Event, and (with a watch log) one diagnosedAt."""
    incidents = {i["metadata"]["name"]: i for i in kubectl.json("get", "incidents", "-n", namespace)["items"]}
    runs = Counter(
        o["name"]
        for r in kubectl.json("get", "analysisruns", "-n", namespace)["items"]
        for o in r["metadata"].get("ownerReferences") or []
        if o["kind"] == "Incident"
    )
    events: Counter = Counter()
    for e in kubectl.json("get", "events", "-n", namespace)["items"]:
        if e["involvedObject"].get("kind") == "Incident" and e["reason"] == DIAGNOSED:
            events[e["involvedObject"]["name"]] += e.get("count") or 1
    count = Count()
    for name in names:
        obj = incidents.get(name)
        if obj is None or phase(obj) != "Diagnosed":
            count.lost.append(f"{name}: {phase(obj) if obj else 'missing'}")
            continue
        if runs[name] == 0:
            count.lost.append(f"{name}: no AnalysisRun")
        timeline = [e["reason"] for e in obj["status"].get("timeline") or []].count(DIAGNOSED)
        seen = len(log.diagnosed_at.get(name, ())) if log else 1
        for what, n in (("AnalysisRuns", runs[name]), ("timeline entries", timeline), ("Events", events[name]),
                        ("diagnosedAt values", seen)):  # fmt: skip
            count.duplicated += [f"{name}: {n} {what}"] * max(n - 1, 0)
    return count
