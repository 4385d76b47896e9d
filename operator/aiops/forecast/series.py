"""A metric's samples on a regular grid: what the smoothing recursion and the seasons (in points) need.

Prometheus range queries are regular already; recorded data and scrape gaps are not. The grid step is the
median spacing, and each grid point takes the value interpolated between its neighbouring samples, so a gap
of a few scrapes bridges linearly instead of shifting every later season.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_POINTS = 20_000  # the grid is coarsened past this: the fit is linear in points


@dataclass(frozen=True)
class Grid:
    start: float  # unix seconds of the first point
    step: float  # seconds
    values: np.ndarray

    @property
    def end(self) -> float:
        return self.start + self.step * (len(self.values) - 1)

    def points_per(self, seconds: float) -> int:
        return max(1, round(seconds / self.step))


def regular(times, values) -> Grid:
    """Finite samples, sorted by time, repeated timestamps dropped, on a grid of the median spacing."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if len(t) > 1:
        first = np.concatenate(([True], np.diff(t) > 0))
        t, v = t[first], v[first]
    if len(t) < 2:
        return Grid(float(t[0]) if len(t) else 0.0, 1.0, v)
    step = float(np.median(np.diff(t)))
    step = max(step, (t[-1] - t[0]) / (MAX_POINTS - 1))
    n = int(np.floor((t[-1] - t[0]) / step + 1e-9)) + 1
    grid = t[0] + step * np.arange(n)
    return Grid(float(t[0]), step, np.interp(grid, t, v))
