"""How surprising a change is, given how much data it rests on: -log p of one-sided tests.

A raw ratio blows up on a service that served 2 requests a minute and then 0; a test does not, because it
knows 2 against 0 happens by chance. Every evidence turns its comparison into a surprise in nats, so that
the fusion in rank.py compares like with like:

- counts (requests, errors, log lines, calls) in the baseline and the incident, each over its own length of
  time: under "nothing changed" the incident's share of the b + i events is Binomial(b + i, t_i / (t_b + t_i)),
  and the surprise is -log P(X >= i) for a rise, -log P(X <= i) for a fall (an exact conditional test);
- samples (own times, gaps): the Mann-Whitney U test that the incident's are larger, by the normal
  approximation with a tie correction;
- a typical baseline (`typical_counts`): counts per stretch of the baseline as long as the incident, their
  median, so that an earlier incident inside the baseline does not pass for normal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable

import numpy as np


def _log_tail(n: int, p: float, lo: int, hi: int) -> float:
    """log P(lo <= X <= hi) for X ~ Binomial(n, p)."""
    if lo > hi:
        return -math.inf
    if p <= 0.0:
        return 0.0 if lo == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if hi == n else -math.inf
    # log pmf(lo), then each next term by the ratio pmf(k + 1) / pmf(k), all at once
    first = math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
    first += lo * math.log(p) + (n - lo) * math.log1p(-p)
    k = np.arange(lo, hi, dtype=float)
    steps = np.log(n - k) - np.log(k + 1) + math.log(p) - math.log1p(-p)
    logpmf = first + np.concatenate([[0.0], np.cumsum(steps)])
    top = float(np.max(logpmf))
    return min(0.0, top + math.log(float(np.sum(np.exp(logpmf - top)))))


def rise(base: int, now: int, base_time: float, now_time: float) -> float:
    """Surprise of `now` events in `now_time` after `base` in `base_time`, if they rose; 0 otherwise."""
    n, share = base + now, now_time / max(base_time + now_time, 1e-12)
    if n == 0 or now <= n * share:
        return 0.0
    return -_log_tail(n, share, now, n)


def fall(base: int, now: int, base_time: float, now_time: float) -> float:
    """Surprise of `now` events in `now_time` after `base` in `base_time`, if they fell; 0 otherwise."""
    n, share = base + now, now_time / max(base_time + now_time, 1e-12)
    if n == 0 or now >= n * share:
        return 0.0
    return -_log_tail(n, share, 0, now)


def larger(base: list[float] | np.ndarray, now: list[float] | np.ndarray) -> float:
    """Surprise that the `now` samples sit above the `base` ones (one-sided Mann-Whitney U); 0 if they do not."""
    b, x = np.asarray(base, dtype=float), np.asarray(now, dtype=float)
    n1, n2 = len(x), len(b)
    if n1 == 0 or n2 == 0:
        return 0.0
    both = np.concatenate([x, b])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    ranks[order] = np.arange(1, len(both) + 1)
    values, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    if len(values) < len(both):  # ties share their mean rank
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    u = float(np.sum(ranks[:n1])) - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - float(np.sum(counts**3 - counts)) / (n * (n - 1)))
    if var <= 0 or u <= mean:
        return 0.0
    z = (u - mean - 0.5) / math.sqrt(var)
    return -_log_normal_sf(z)


def typical_counts(keyed_times: Iterable[tuple[Hashable, float]], split: float, blocks: int, block_s: float) -> Counter:
    """Per key, the median of its counts over the baseline's `blocks` stretches of `block_s` seconds back from
    `split` (events outside them are left out). A baseline may hold earlier incidents: their minutes raise a
    mean, not the median stretch."""
    per: dict[Hashable, list[int]] = {}
    for key, t in keyed_times:
        j = int((split - t) // block_s)
        if 0 <= j < blocks and t < split:
            per.setdefault(key, [0] * blocks)[j] += 1
    return Counter({key: float(np.median(counts)) for key, counts in per.items()})


def _log_normal_sf(z: float) -> float:
    """log P(Z > z) for a standard normal, accurate far in the tail."""
    if z < 5:
        return math.log(max(0.5 * math.erfc(z / math.sqrt(2)), 1e-300))
    return -z * z / 2 - math.log(z * math.sqrt(2 * math.pi)) + math.log1p(-1 / (z * z))
