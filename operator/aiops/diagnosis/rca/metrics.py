"""Each pod's metric series against its own baseline -> per-service scores.

Per series, the incident's second-largest deviation from the baseline median (one odd minute is not a
change) is turned into its empirical tail probability among the baseline's own deviations:
score = -log((1 + #baseline deviations at least as large) / (1 + #baseline points)). Bounded, and free
of units, so CPU, bytes and latency compare. A service scores the mean of its TOP_K largest series
scores (a real change moves several signals; one noisy series should not carry a service).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np

from aiops.diagnosis.evidence import POD_LABEL, Series
from aiops.diagnosis.rca.spans import Finding, Scores

TOP_K = 4
# A Deployment's pod is <name>-<pod-template-hash>-<5 characters>; a StatefulSet's <name>-<ordinal>.
_WORKLOAD = re.compile(r"^(?P<name>[a-z0-9-]+?)(?:-[a-z0-9]{6,10}-[a-z0-9]{5}|-\d+)$")


def workload_of(pod: str) -> str:
    m = _WORKLOAD.match(pod)
    return m.group("name") if m else pod


def series_score(points: Series, split: float, start: float = -math.inf, end: float = math.inf) -> float | None:
    data = np.asarray(points, dtype=float).reshape(-1, 2)
    data = data[np.isfinite(data).all(axis=1) & (data[:, 0] >= start) & (data[:, 0] < end)]
    base, now = data[data[:, 0] < split, 1], data[data[:, 0] >= split, 1]
    if len(base) < 3 or len(now) < 1:
        return None
    median = np.median(base)
    deviations = np.abs(base - median)
    incident = np.sort(np.abs(now - median))
    d = incident[-2] if len(incident) > 1 else incident[-1]
    if d <= 1e-12:
        return 0.0
    return -math.log((1 + np.count_nonzero(deviations >= d)) / (1 + len(base)))


def scores(
    metrics: dict[str, dict[str, Series]],
    templates: tuple[str, ...],
    split: float,
    start: float = -math.inf,
    end: float = math.inf,
) -> Scores:
    by_service: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for template in templates:
        for label, points in metrics.get(template, {}).items():
            pod = POD_LABEL.search(label)
            if pod is None:
                continue
            score = series_score(points, split, start, end)
            if score is not None:
                by_service[workload_of(pod.group(1))].append((score, f"{template} of {pod.group(1)}"))
    result: Scores = {"metrics": {}}
    for service, found in by_service.items():
        found.sort(reverse=True)
        top = found[:TOP_K]
        words = "moved most: " + ", ".join(f"{what} ({s:.1f})" for s, what in top)
        result["metrics"][service] = Finding(sum(s for s, _ in top) / len(top), words)
    return result
