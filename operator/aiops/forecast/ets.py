"""Additive Holt-Winters (ETS(A,Ad,A)): level, damped trend and one season, smoothed in error-correction form.

    yhat_t = l + phi b + s[t-m];  e = y_t - yhat_t
    l <- l + phi b + alpha e;  b <- phi b + beta e;  s[t] <- s[t-m] + gamma e

The smoothing parameters are chosen on a grid by the absolute error of the forecasts the fit is for (1..H
steps ahead, from every origin), every candidate run at once (numpy across candidates, one Python step per
point), which keeps a fit of 4000 points near 0.1 s without a compiled dependency. Without a season (m = 1)
it is Holt's damped trend.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 0.95)
TRENDS = ((0.0, 1.0), (0.002, 0.9), (0.002, 0.98), (0.002, 1.0), (0.02, 0.9), (0.02, 0.98), (0.02, 1.0))  # beta, phi
GAMMAS = (0.0, 0.05, 0.2)
CLIPS = (np.inf, 3.0, 1.0)  # errors beyond this many robust deviations update the states as if they were this large
# alpha, beta, phi, gamma, clip per row; beta 0 is "no trend" (the initial slope is 0 too)
GRID = np.array([(a, b, p, g, c) for a, (b, p), g, c in itertools.product(ALPHAS, TRENDS, GAMMAS, CLIPS)])
SCORED_HORIZONS = 6  # horizons, log-spaced up to the one asked for, whose errors choose the parameters


@dataclass(frozen=True)
class Fit:
    """The chosen parameters and the states after every point (what in-sample forecasts start from)."""

    m: int
    alpha: float
    beta: float
    phi: float
    gamma: float
    level: np.ndarray  # l after point t
    trend: np.ndarray  # b after point t
    season: np.ndarray  # s after point t, for point t's phase (t mod m)
    warmup: int  # points used to initialise; errors before it are not scored

    def from_origin(self, t: np.ndarray, h: int) -> np.ndarray:
        """Forecasts h steps ahead from the states after points t (vectorised over t)."""
        base = self.level[t] + float(_damped(np.array(self.phi), h)) * self.trend[t]
        if self.m == 1:
            return base
        back = t + h - self.m * int(np.ceil(h / self.m))  # the latest point of the target's phase, <= t
        return base + self.season[back]

    def ahead(self, h: np.ndarray) -> np.ndarray:
        """Forecasts 1..H steps after the last point."""
        last = len(self.level) - 1
        return np.array([self.from_origin(np.array([last]), int(k))[0] for k in h])


def _initial(y: np.ndarray, m: int) -> tuple[float, float, np.ndarray, int]:
    if m == 1:
        k = min(10, len(y) // 2)
        slope = (y[k : 2 * k].mean() - y[:k].mean()) / k if k else 0.0
        return float(y[0]), float(slope), np.zeros(1), k
    seasons = min(len(y) // m, 4)
    blocks = y[: seasons * m].reshape(seasons, m)
    means = blocks.mean(axis=1)
    slope = (means[-1] - means[0]) / (m * (seasons - 1)) if seasons > 1 else 0.0
    season = (blocks - means[:, None]).mean(axis=0)
    return float(means[0]), float(slope), season - season.mean(), m


def fit(y: np.ndarray, m: int, horizon: int) -> Fit:
    """The grid's parameters with the least absolute error over horizons 1..`horizon` (sampled) from every
    origin after the warm-up: fitted for the forecasts it will make, not only the next step. m > 1 needs 2m
    points."""
    level0, slope0, season0, warmup = _initial(y, m)
    alpha, beta, phi, gamma, clip = GRID.T if m > 1 else GRID[GRID[:, 3] == 0].T
    slope = np.where(beta > 0, slope0, 0.0)
    bound = clip * _scale(y, m)
    level, trend, season = _states(y, m, level0, slope, season0, alpha, beta, phi, gamma, bound)
    n = len(y)
    longest = min(horizon, n - warmup - 1)
    score = np.zeros(len(alpha))
    for h in np.unique(np.geomspace(1, max(longest, 1), SCORED_HORIZONS).round().astype(int)):
        t = np.arange(warmup, n - h)
        if len(t) == 0:
            continue
        ahead = level[t] + _damped(phi, h) * trend[t]
        if m > 1:
            ahead = ahead + season[t + h - m * int(np.ceil(h / m))]
        score += np.mean(np.abs(y[t + h][:, None] - ahead), axis=0)
    # ties (a flat series) go to the first row: the smallest alpha, no trend, no season change
    pick = int(np.argmin(np.where(np.isfinite(score), score, np.inf)))
    return Fit(
        m, float(alpha[pick]), float(beta[pick]), float(phi[pick]), float(gamma[pick]),
        level[:, pick].copy(), trend[:, pick].copy(), season[:, pick].copy(), warmup,
    )  # fmt: skip


def _damped(phi: np.ndarray, h: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(phi == 1.0, float(h), phi * (1 - phi**h) / (1 - phi))


def _scale(y: np.ndarray, m: int) -> float:
    """A robust standard deviation of the series' changes (seasonal changes with a season): with a clip, errors
    beyond `clip` of these move the states only as much as one that size, so a spike does not drag the level
    (Huber-type smoothing); whether to clip is chosen like the other parameters, so level shifts that
    persist are still followed where that forecasts better."""
    lag = m if m > 1 and len(y) > 2 * m else 1
    changes = np.abs(y[lag:] - y[:-lag])
    scale = 1.4826 * float(np.median(changes)) or float(np.mean(changes))
    return scale if scale > 0 else np.inf


def _states(y, m, level0, slope, season0, alpha, beta, phi, gamma, bound):
    """Every candidate's states after every point: (n, candidates) arrays."""
    n, k = len(y), len(alpha)
    level, trend, season = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    lv, tr = np.full(k, level0), slope.astype(float).copy()
    ring = np.tile(season0, (k, 1))
    for t, value in enumerate(y):
        phase = t % m
        error = np.clip(value - (lv + phi * tr + ring[:, phase]), -bound, bound)
        lv = lv + phi * tr + alpha * error
        tr = phi * tr + beta * error
        ring[:, phase] += gamma * error
        level[t], trend[t], season[t] = lv, tr, ring[:, phase]
    return level, trend, season
