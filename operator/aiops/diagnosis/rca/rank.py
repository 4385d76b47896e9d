"""Fuse the per-service scores of every evidence into one ranking, and keep the blame off the callers.

Each evidence is first made comparable: a service's score becomes its excess over the median service,
divided by the mean absolute deviation across services, clipped to [0, CAP]. An evidence on which many
services move says little and weighs little; one on which a single service stands out weighs much.
Scores under the evidence's MEANINGFUL floor count as no change. The standardised scores add up (equal
weights). Then, along the call graph: a service's total is
reduced by the largest total among its callees (DISCOUNT x), because a caller of a failing service
sees the failure too, and the origin is downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aiops.diagnosis.rca.spans import Finding, Scores

CAP = 8.0
DISCOUNT = 1.0
# The least raw score that means something changed, per evidence: below it a service counts as unchanged,
# so that noise is not blown up by the standardisation when nothing moved at all.
MEANINGFUL = {
    "own": 0.2,  # log-ratio: about +22% own time
    "gap": 0.2,
    "lost": 0.2,
    "fanout": 0.4,
    "failed": 0.2,
    "errors": 0.1,  # log1p of lines per minute
    "novel": 0.1,
    "metrics": 1.0,  # -log of the tail probability: rarer than about 1 in 3 baseline points
}


@dataclass
class Ranked:
    service: str
    score: float  # after the callee discount
    total: float  # before it
    evidence: list[tuple[str, float, Finding]] = field(default_factory=list)  # (evidence, standardised, finding)


def standardise(values: dict[str, float], services: list[str]) -> dict[str, float]:
    if not values:
        return {}
    x = np.array([values.get(s, 0.0) for s in services], dtype=float)
    centre = np.median(x)
    spread = np.mean(np.abs(x - centre))
    if spread <= 1e-12:
        return {}
    z = np.clip((x - centre) / spread, 0.0, CAP)
    return {s: float(v) for s, v in zip(services, z, strict=True) if v > 0}


def rank(evidence: Scores, graph: set[tuple[str, str]], services: set[str]) -> list[Ranked]:
    names = sorted(services | {s for found in evidence.values() for s in found})
    ranked = {s: Ranked(s, 0.0, 0.0) for s in names}
    for kind, found in evidence.items():
        floor = MEANINGFUL.get(kind, 0.0)
        raw = {s: f.score for s, f in found.items() if f.score >= floor}
        for service, z in standardise(raw, names).items():
            ranked[service].total += z
            ranked[service].evidence.append((kind, z, found[service]))
    callees: dict[str, set[str]] = {}
    for caller, callee in graph:
        callees.setdefault(caller, set()).add(callee)
    for r in ranked.values():
        below = [ranked[c].total for c in callees.get(r.service, ()) if c in ranked]
        r.score = r.total - DISCOUNT * max(below) if below and r.total > 0 else r.total
        r.evidence.sort(key=lambda e: -e[1])
    return sorted(ranked.values(), key=lambda r: (-r.score, r.service))
