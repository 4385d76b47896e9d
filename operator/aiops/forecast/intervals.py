"""Prediction intervals from the fit's own h-step errors (empirical intervals), not from a normal formula.

From every origin after the warm-up the fitted states forecast h steps ahead and the error against what came
is kept; the interval at h spans the errors' (1 - level)/2 and (1 + level)/2 quantiles, so skewed, heavy-tailed
or drifting series get the width they showed. h is sampled on a log grid and interpolated between; past the
longest h with enough origins the spread grows as sqrt(h), as a random walk's does. In-sample errors are a
little smaller than out-of-sample ones (the parameters saw the data): WIDEN corrects that, a single factor
set on the backtest (docs/forecast.md says how).
"""

from __future__ import annotations

import numpy as np

from aiops.forecast.ets import Fit

MIN_ORIGINS = 30  # fewer errors than this at a horizon: extrapolated from a shorter one
RECENT = 500  # origins kept per horizon: the most recent behaviour
SAMPLED = 24  # horizons sampled on the log grid
WIDEN = 1.0


def bounds(fit: Fit, y: np.ndarray, horizon: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) offsets from the point forecast for steps 1..horizon."""
    n = len(y)
    longest = n - fit.warmup - MIN_ORIGINS
    if longest < 1:
        spread = float(np.std(np.diff(y))) if n > 2 else 0.0
        z = _normal_quantile((1 + level) / 2)
        steps = np.sqrt(np.arange(1, horizon + 1))
        return -z * spread * steps * WIDEN, z * spread * steps * WIDEN
    sampled = np.unique(np.geomspace(1, min(horizon, longest), SAMPLED).round().astype(int))
    low, high = [], []
    for h in sampled:
        origins = np.arange(max(fit.warmup, n - h - RECENT), n - h)
        errors = y[origins + h] - fit.from_origin(origins, int(h))
        lo, hi = np.quantile(errors, [(1 - level) / 2, (1 + level) / 2])
        low.append(min(lo, 0.0))
        high.append(max(hi, 0.0))
    steps = np.arange(1, horizon + 1)
    lower = np.interp(steps, sampled, low)
    upper = np.interp(steps, sampled, high)
    beyond = steps > sampled[-1]
    grow = np.sqrt(steps[beyond] / sampled[-1])
    lower[beyond] = low[-1] * grow
    upper[beyond] = high[-1] * grow
    return lower * WIDEN, upper * WIDEN


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)
