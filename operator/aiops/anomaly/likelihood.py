"""Anomaly likelihood: how unusual a raw score is for this series (Numenta's idea: per-series calibration).

Why: a raw novelty of 0.6 is striking on a series that has never scored above 0.1 and ordinary on one
whose noise keeps producing half-new states. NAB picks one threshold for all series, so the score it
thresholds must mean the same on each. The likelihood is the normal probability Phi((r - mean) / sd) of
the raw score r against the mean and standard deviation of all the raw scores before it (the learning
period's included), with Numenta's floors (mean at least MIN_MEAN 0.03, variance at least 0.0003, i.e.
sd at least MIN_SD 0.0173: a series that has only ever scored 0 does not turn a hair into certainty).
The final score is r x likelihood (see `pipeline`): novel, and unusual for this series.

Numenta compares a 10-point moving average of the raw scores. Here the "short-term mean" is the current
raw score itself, by choice: the raw score already spans two points (a transition), and with the score
r x likelihood an average lets a single clear novelty in a short, busy series fall under the flag (a
0.4 level shift in an hour of 15-second samples, averaged over 10 points, scored 0.56 on one series and
under 0.5 on another). A 10-point mean does cut alarms on white noise (0.4 instead of 6 per 1000 points
after a 150-point learning period), but costs 1.9 NAB points on the development data (73.3, not 75.2).

The history is the whole past (running sums: O(1) memory and time per point), vectorised over a chunk.
"""

from __future__ import annotations

import numpy as np

MIN_MEAN = 0.03
MIN_SD = 0.0003**0.5

# Abramowitz and Stegun 7.1.26: erf to 1.5e-7, vectorised without scipy.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z), the standard normal distribution function (absolute error below 1e-7)."""
    z = np.asarray(z, dtype=float)
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + _P * x)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    upper = 0.5 * poly * np.exp(-x * x)  # P(Z > |z|)
    return np.where(z >= 0, 1.0 - upper, upper)


class Likelihood:
    """Running mean and variance of the raw scores; `update` gives each new raw score's likelihood."""

    def __init__(self) -> None:
        self.count, self.total, self.squares = 0, 0.0, 0.0

    def update(self, raw: np.ndarray) -> np.ndarray:
        """Likelihood in [0, 1] of each raw score against the scores before it, then remember them."""
        raw = np.asarray(raw, dtype=float)
        if len(raw) == 0:
            return np.zeros(0)
        count = self.count + np.arange(len(raw))
        total = self.total + np.cumsum(raw) - raw
        squares = self.squares + np.cumsum(raw * raw) - raw * raw
        safe = np.maximum(count, 1)
        mean = total / safe
        sd = np.maximum(np.sqrt(np.maximum(squares / safe - mean * mean, 0.0)), MIN_SD)
        mean = np.maximum(mean, MIN_MEAN)
        self.count += len(raw)
        self.total += float(raw.sum())
        self.squares += float(np.dot(raw, raw))
        return normal_cdf((raw - mean) / sd)
