"""A rest period after each alarm: one alarm per anomaly, not one per point.

Why: NAB (and an on-call engineer) counts the earliest detection in an anomaly and charges every other
alarm outside it; a new level keeps producing new states for a few points (the next transition, the
next grid's bin). After a score reaches `level` (FLAG), the next `horizon` scores are zeroed unless one
is higher than the alarm's, which then becomes the alarm and restarts the rest (an anomaly that gets
worse is still reported). DASRS and CAD OSE rest the same way; the horizon is a share of the learning
period (see `pipeline`), the one time scale the detector is given.

The rest is sequential, but only alarms and escalations need a step of the loop: everything else in a
rest is zeroed by a vectorised mask. State carries over between chunks.
"""

from __future__ import annotations

import numpy as np


class Rest:
    def __init__(self, horizon: int, level: float):
        if horizon < 0:
            raise ValueError(f"rest horizon must be >= 0, not {horizon}")
        self.horizon, self.level = horizon, level
        self.position = 0  # points seen so far
        self.until = -1  # the last point of the current rest
        self.alarm = 0.0  # the score that started it

    def update(self, score: np.ndarray) -> np.ndarray:
        score = np.asarray(score, dtype=float)
        out = score.copy()
        n = len(score)
        start = self.position
        self.position += n
        if self.horizon == 0 or n == 0:
            return out
        rest = np.zeros(n + 1, dtype=np.int64)  # +1 / -1 at the bounds of each rest (chunk-relative)
        if self.until >= start:
            rest[0] += 1
            rest[min(n, self.until - start + 1)] -= 1
        until, alarm = self.until, self.alarm
        for i in np.flatnonzero(score >= self.level).tolist():
            at = start + i
            if at <= until and score[i] <= alarm:
                continue
            if at <= until:  # an escalation: the current rest ends here, a new one starts
                rest[i] -= 1
                rest[min(n, until - start + 1)] += 1
            until, alarm = at + self.horizon, float(score[i])
            rest[i + 1] += 1
            rest[min(n, until - start + 1)] -= 1
        out[np.cumsum(rest[:n]) > 0] = 0.0
        self.until, self.alarm = until, alarm
        return out


def suppress_repeats(score: np.ndarray, horizon: int, level: float = 0.5) -> np.ndarray:
    """The rest period over a whole score array (see the module doc)."""
    return Rest(horizon, level).update(score)
