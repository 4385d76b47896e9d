"""Fuse the per-service scores of every evidence into one ranking, and keep the blame off the callers.

Each evidence is first made comparable. Every evidence but the pods' metrics is already a surprise in
nats (-log p of a test that knows how much data it rests on, stats.py); scores under the evidence's
MEANINGFUL floor count as no change. With pseudo-incidents of the baseline at hand (`null`: the same
evidences computed on stretches of the baseline alone, each holding as much data as the incident), a
service above the median service scores its surprise under the null scores of that evidence
(`calibrate`): an evidence is trusted as far as it stays quiet when nothing happens, with no weight to
tune. Without them (too little baseline), the test's own surprise stands.
The comparable scores add up, each compressed beyond FLOOR nats (`compress`, a log): the evidences of one
service are not independent tests (error lines and new templates count the same lines, a shift and a changed
pattern the same events), so their raw sum, Fisher's method for independent tests, lets one extreme evidence
outvote several that agree (`aiops-dev eval nezha` on the dev data: top-1 0.500 -> 0.536 on Train Ticket,
0.768 -> 0.786 on Online Boutique; the scale is the existing floor, and 2 to 8 nats did as well).
Then, along the call graph: a service's total
is reduced by the largest total among its callees (DISCOUNT x), because a caller of a failing service
sees the failure too, and the origin is downstream; a callee's gap is left out of that total, since the
gap of their shared edge already counts for the caller too (a slow caller's client spans make it).
Evidences that already name the origin inside each trace (ORIGIN_ATTRIBUTED) are added after that discount.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aiops.diagnosis.rca.spans import Finding, Scores

DISCOUNT = 1.0
# The least raw score that means something changed, per evidence: below it a service counts as unchanged,
# so that many small changes on many services do not add up to a suspect.
KINDS = ("own", "gap", "fanout", "failed", "errors", "novel", "pattern", "shift")
FLOOR = 3.0  # nats: p < 0.05
MEANINGFUL = dict.fromkeys(KINDS, FLOOR)  # every evidence but metrics is a surprise (stats.py)
MEANINGFUL["metrics"] = 1.0  # -log of the tail probability: rarer than about 1 in 3 baseline points
# Evidences already attributed to the origin inside each trace: added after the callee discount.
ORIGIN_ATTRIBUTED = frozenset({"pattern"})
# Evidences scored on an edge and given to both its ends: a callee's share does not discount its caller.
EDGE_SHARED = frozenset({"gap"})


@dataclass
class Ranked:
    service: str
    score: float  # after the callee discount
    total: float  # before it
    evidence: list[tuple[str, float, Finding]] = field(default_factory=list)  # (evidence, calibrated, finding)


def calibrate(values: dict[str, float], null: list[dict[str, float]], services: list[str]) -> dict[str, float]:
    """Each service above the median service: its surprise among the scores the evidence gave every
    service when nothing happened (`null`, one dict per pseudo-incident of the baseline). The null's
    positive scores are taken as exponential (what -log p is when p is exact; dependent data stretches
    it), so P(null >= x) = share of positive null scores x exp(-x / their mean), the mean no less than 1:
    an evidence that blames some service now and then while nothing happens weighs less, and a score
    far beyond anything the null saw keeps counting for how far."""
    if not values:
        return {}
    ref = np.array([n.get(s, 0.0) for n in null for s in services], dtype=float)
    positive = ref[ref > 0]
    share = (1 + len(positive)) / (1 + len(ref))
    scale = max(1.0, float(np.mean(positive))) if len(positive) else 1.0
    x = np.array([values.get(s, 0.0) for s in services], dtype=float)
    z = np.where((x > np.median(x)) & (x > 0), -math.log(share) + x / scale, 0.0)
    return {s: float(v) for s, v in zip(services, z, strict=True) if v > 0}


def compress(z: float) -> float:
    """A surprise's share of the fused score: itself up to about FLOOR nats, then growing with its log."""
    return FLOOR * math.log1p(z / FLOOR)


def rank(
    evidence: Scores, graph: set[tuple[str, str]], services: set[str], null: list[Scores] | None = None
) -> list[Ranked]:
    """`null`: the evidences on pseudo-incidents of the baseline alone; without any, surprises stand as they are."""
    names = sorted(services | {s for found in evidence.values() for s in found})
    ranked = {s: Ranked(s, 0.0, 0.0) for s in names}
    attributed = dict.fromkeys(names, 0.0)
    for kind, found in evidence.items():
        floor = MEANINGFUL.get(kind, 0.0)
        raw = {s: f.score for s, f in found.items() if f.score >= floor}
        fused = calibrate(raw, [{s: f.score for s, f in n.get(kind, {}).items()} for n in null or []], names)
        for service, z in ((s, compress(z)) for s, z in fused.items()):
            if kind in ORIGIN_ATTRIBUTED:
                attributed[service] += z
            else:
                ranked[service].total += z
            ranked[service].evidence.append((kind, z, found[service]))
    callees: dict[str, set[str]] = {}
    for caller, callee in graph:
        callees.setdefault(caller, set()).add(callee)
    # What a callee's total says about the callee alone: an edge's gap already counts for both of its ends.
    alone = {s: r.total - sum(z for k, z, _ in r.evidence if k in EDGE_SHARED) for s, r in ranked.items()}
    for r in ranked.values():
        below = [alone[c] for c in callees.get(r.service, ()) if c in ranked]
        r.score = r.total - DISCOUNT * max(below) if below and r.total > 0 else r.total
        r.score += attributed[r.service]
        r.total += attributed[r.service]
        r.evidence.sort(key=lambda e: -e[1])
    return sorted(ranked.values(), key=lambda r: (-r.score, r.service))
