"""When a forecast reaches a limit (requests, limits, node or PVC capacity, a ResourceQuota).

Two times: when the point forecast crosses the limit (the expected exhaustion) and when the interval's upper
bound does (the earliest plausible one); None when neither happens inside the horizon. A series already at
or over its limit is exhausted now (0 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiops.forecast.model import Forecast


@dataclass(frozen=True)
class Exhaustion:
    limit: float
    expected_s: float | None  # seconds after the last sample when the mean reaches the limit
    earliest_s: float | None  # ... when the upper bound does

    def within(self, seconds: float) -> bool:
        return self.earliest_s is not None and self.earliest_s <= seconds


def first_crossing(path: np.ndarray, limit: float, step: float) -> float | None:
    over = np.flatnonzero(path >= limit)
    return float((over[0] + 1) * step) if len(over) else None


def exhaustion(f: Forecast, limit: float) -> Exhaustion:
    if f.current >= limit:
        return Exhaustion(limit, 0.0, 0.0)
    return Exhaustion(limit, first_crossing(f.mean, limit, f.step), first_crossing(f.upper, limit, f.step))
