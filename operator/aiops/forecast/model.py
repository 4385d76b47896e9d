"""Forecast one metric: its samples -> a point forecast with a prediction interval over the horizon.

    result = forecast(times, values, horizon_s=7 * 86400)          # Forecast, or TooShort (never raises)
    result.at(86400)  # (mean, lower, upper) one day after the last sample

Seasons: daily and weekly, each a candidate when the history covers two of it. Each candidate (and no season)
is fitted on the history less its last stretch (the horizon, at most a quarter of the history), scored on that
stretch, and the best is refitted on all of it. A season is tried only when two of it precede that stretch, so a
weekly season needs about 19 days of history (two weeks are three quarters of it) and a daily one 2.7 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiops.forecast import ets, intervals
from aiops.forecast.series import Grid, regular

DAY_S = 86400
SEASONS = {"daily": DAY_S, "weekly": 7 * DAY_S}
MIN_POINTS = 24  # below this neither a trend nor a spread can be estimated
MAX_SEASON_POINTS = 2016  # a season of more points (a week at a finer step than 5 min) is not tried
LEVEL = 0.8


@dataclass(frozen=True)
class TooShort:
    points: int
    needed: int

    @property
    def message(self) -> str:
        return f"too short: {self.points} points, need {self.needed}"


@dataclass(frozen=True)
class Forecast:
    method: str  # e.g. "holt-winters (season daily)"
    season: str | None  # "daily", "weekly", or None
    points: int  # history points on the grid
    start: float  # unix seconds of the first history point
    last: float  # unix seconds of the last history point
    step: float  # seconds between forecast points
    current: float  # the last observed value
    mean: np.ndarray  # steps 1..H after `last`
    lower: np.ndarray
    upper: np.ndarray
    level: float

    @property
    def times(self) -> np.ndarray:
        return self.last + self.step * np.arange(1, len(self.mean) + 1)

    def at(self, seconds: float) -> tuple[float, float, float]:
        """(mean, lower, upper) `seconds` after the last sample (the nearest forecast step at or before it)."""
        i = min(max(int(seconds // self.step) - 1, 0), len(self.mean) - 1)
        return float(self.mean[i]), float(self.lower[i]), float(self.upper[i])


def forecast(times, values, horizon_s: float, *, level: float = LEVEL) -> Forecast | TooShort:
    """Samples (unix seconds, values) -> the forecast `horizon_s` past the last sample, at `level` (0..1)."""
    grid = regular(times, values)
    n = len(grid.values)
    if n < MIN_POINTS:
        return TooShort(n, MIN_POINTS)
    horizon = max(1, int(np.ceil(horizon_s / grid.step)))
    season, fit = choose(grid, horizon)
    y = grid.values
    mean = fit.ahead(np.arange(1, horizon + 1))
    low, high = intervals.bounds(fit, y, horizon, level)
    method = "holt-winters" + (f" (season {season})" if season else " (damped trend, no season)")
    return Forecast(
        method, season, n, grid.start, grid.end, grid.step, float(y[-1]), mean, mean + low, mean + high, level
    )


def seasons_covered(grid: Grid) -> dict[str, int]:
    """The seasons (name -> points) the history covers twice."""
    n = len(grid.values)
    out = {}
    for name, seconds in SEASONS.items():
        m = grid.points_per(seconds)
        if 2 <= m <= MAX_SEASON_POINTS and n >= 2 * m:
            out[name] = m
    return out


def choose(grid: Grid, horizon: int) -> tuple[str | None, ets.Fit]:
    """The season (or none) that forecast a held-out last stretch best, refitted on the whole history."""
    y = grid.values
    candidates: dict[str | None, int] = {None: 1, **seasons_covered(grid)}
    if len(candidates) == 1:
        return None, ets.fit(y, 1, horizon)
    held = min(horizon, len(y) // 4)
    train = y[: len(y) - held]
    scores = {}
    for name, m in candidates.items():
        if m > 1 and len(train) < 2 * m:
            continue  # two seasons are needed before the held-out stretch too
        f = ets.fit(train, m, held)
        scores[name] = float(np.mean(np.abs(y[len(train) :] - f.ahead(np.arange(1, held + 1)))))
    best = min(scores, key=scores.get)
    return best, ets.fit(y, candidates[best], horizon)


def seasonal_naive(y: np.ndarray, m: int, horizon: int) -> np.ndarray:
    """The baseline: each step repeats the value one season earlier (m = 1: the last value)."""
    h = np.arange(1, horizon + 1)
    return y[len(y) - 1 + h - m * np.ceil(h / m).astype(int)]
