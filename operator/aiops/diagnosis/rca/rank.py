"""Fuse the per-service scores of every evidence into one ranking, and keep the blame off the callers.

Each evidence is first made comparable. Scores under the evidence's MEANINGFUL floor count as no
change. With pseudo-incidents of the baseline at hand (`null`: the same evidences computed on stretches
of the baseline alone, each holding as much data as the incident), a service above the median service
scores its surprise among the null scores of that evidence (`calibrate`): an evidence is trusted as far
as it stays quiet when nothing happens, with no weight to tune. Without them, a service's score becomes
its excess over the median service divided by the mean absolute deviation across services, clipped to
[0, CAP] (`standardise`). The comparable scores add up. Then, along the call graph: a service's total
is reduced by the largest total among its callees (DISCOUNT x), because a caller of a failing service
sees the failure too, and the origin is downstream. Evidences that already name the origin inside each
trace (ORIGIN_ATTRIBUTED) are added after that discount.
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
    "pattern": 0.1,  # log1p of requests per minute
}
# Evidences already attributed to the origin inside each trace: added after the callee discount.
ORIGIN_ATTRIBUTED = frozenset({"pattern"})


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


def calibrate(values: dict[str, float], null: list[dict[str, float]], services: list[str]) -> dict[str, float]:
    """Each service above the median service: its surprise among the scores the evidence gave every
    service when nothing happened (`null`, one dict per pseudo-incident of the baseline),
    -log((1 + #null scores >= it) / (1 + #null scores)). An evidence that blames some service now and
    then while nothing happens weighs little; one that never does weighs up to log(1 + #null scores)."""
    if not values:
        return {}
    ref = np.sort(np.array([n.get(s, 0.0) for n in null for s in services], dtype=float))
    x = np.array([values.get(s, 0.0) for s in services], dtype=float)
    above = len(ref) - np.searchsorted(ref, x, side="left")
    z = np.where(x > np.median(x), -np.log((1 + above) / (1 + len(ref))), 0.0)
    return {s: float(v) for s, v in zip(services, z, strict=True) if v > 0}


def rank(
    evidence: Scores, graph: set[tuple[str, str]], services: set[str], null: list[Scores] | None = None
) -> list[Ranked]:
    """`null`: the evidences on pseudo-incidents of the baseline alone; without any, evidences are standardised."""
    names = sorted(services | {s for found in evidence.values() for s in found})
    ranked = {s: Ranked(s, 0.0, 0.0) for s in names}
    attributed = dict.fromkeys(names, 0.0)
    for kind, found in evidence.items():
        floor = MEANINGFUL.get(kind, 0.0)
        raw = {s: f.score for s, f in found.items() if f.score >= floor}
        if null:
            fused = calibrate(raw, [{s: f.score for s, f in n.get(kind, {}).items()} for n in null], names)
        else:
            fused = standardise(raw, names)
        for service, z in fused.items():
            if kind in ORIGIN_ATTRIBUTED:
                attributed[service] += z
            else:
                ranked[service].total += z
            ranked[service].evidence.append((kind, z, found[service]))
    callees: dict[str, set[str]] = {}
    for caller, callee in graph:
        callees.setdefault(caller, set()).add(callee)
    for r in ranked.values():
        below = [ranked[c].total for c in callees.get(r.service, ()) if c in ranked]
        r.score = r.total - DISCOUNT * max(below) if below and r.total > 0 else r.total
        r.score += attributed[r.service]
        r.total += attributed[r.service]
        r.evidence.sort(key=lambda e: -e[1])
    return sorted(ranked.values(), key=lambda r: (-r.score, r.service))
