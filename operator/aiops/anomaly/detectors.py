"""Statistical per-point detectors over one time series: robust z-score, seasonal baseline, and multi-metric
correlation. The default detector is `pipeline.combined` (contextual novelty, anomaly
likelihood, rest period): these remain for callers that want a named statistic, and `detect` adds the
seasonal one on series long enough to hold two calendar periods.

Every detector is vectorised (numpy) and causal: the score of point i uses points 0..i only, so scoring
a prefix gives the same scores as scoring the whole series and cutting them. Scores lie in [0, 1]; a
point is flagged at FLAG (0.5), which every detector maps to its own statistic reaching Z_THRESHOLD
(3.5, Iglewicz and Hoaglin's cut-off for modified z-scores): score = 1 - 0.5 ** ((z / 3.5) ** 2), so
z 3.5 -> 0.5, z 7 -> 0.94. Non-finite values (NaN, inf) are dropped before scoring and score 0: a
trailing window then counts points, not seconds.

Defaults, chosen up front (not fitted to any labels):
- WINDOW 288 points of trailing history: one day at the 5-minute step of most Prometheus range queries
  over a day, enough for a stable median and MAD. Before MIN_HISTORY (12) points a point scores 0.
- Scale = max(1.4826 x MAD, 1.2533 x mean absolute deviation, 1e-6 x max(1, |median|)): the MAD of a
  normal distribution scaled to its sigma, the mean absolute deviation when more than half the window
  repeats one value (quantised CPU, counters), and a floor so that a flat series that moves is scored 1
  instead of dividing by zero.
- Seasonal baseline: the median of the values one, two, ... SEASON_CYCLES (4) periods earlier (nearest
  point within one sampling step), needing at least two of them; the residual is scored with the robust
  z-score above. The period is the caller's, or the calendar candidates (a day, a week) that the
  sampling interval resolves (>= 24 points per period); per point, the candidate whose trailing residual
  scale is smallest is used. `detect` uses it only where that scale is below SEASON_GAIN (0.8) x the
  plain trailing scale (the season explains a real share of the variance): a causal choice.
- Correlation: for several series, a point's score s rises to s + (1 - s) x s x c, where c is the mean
  over the other series of their highest score within `tolerance` seconds up to the same time (default
  three sampling steps): an anomaly several series share scores higher, a lone one keeps its score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Z_THRESHOLD = 3.5
FLAG = 0.5
WINDOW = 288
MIN_HISTORY = 12
MAD_TO_SIGMA = 1.4826
MEANAD_TO_SIGMA = 1.2533
EPS_RELATIVE = 1e-6
SEASON_CYCLES = 4
SEASON_MIN_CYCLES = 2
SEASON_GAIN = 0.8
MIN_POINTS_PER_PERIOD = 24
DAY, WEEK = 86400.0, 604800.0
CORRELATION_STEPS = 3
_CHUNK = 2048

# A series: (times, values) as two 1-D sequences (unix seconds or datetime64), or [(t, v), ...] pairs as
# Prometheus range results give them (values may be strings such as "0.25" or "NaN").
Series = Any


def as_arrays(series: Series) -> tuple[np.ndarray, np.ndarray]:
    """(times in unix seconds, values) as float arrays sorted by time."""
    if isinstance(series, tuple) and len(series) == 2 and np.ndim(series[0]) == 1 and np.ndim(series[1]) == 1:
        times, values = np.asarray(series[0]), np.asarray(series[1], dtype=float)
    else:
        data = np.asarray(series, dtype=object).reshape(-1, 2) if len(series) else np.empty((0, 2))
        times, values = data[:, 0], np.asarray(data[:, 1], dtype=float)
    if np.issubdtype(times.dtype, np.datetime64):
        times = times.astype("datetime64[ns]").astype(np.int64) / 1e9
    times = np.asarray(times, dtype=float)
    if len(times) != len(values):
        raise ValueError(f"{len(times)} times but {len(values)} values")
    if np.any(np.diff(times) < 0):
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    return times, values


def z_to_score(z: np.ndarray) -> np.ndarray:
    """|z| -> [0, 1]: 0.5 at Z_THRESHOLD; NaN -> 0."""
    z = np.nan_to_num(np.abs(np.asarray(z, dtype=float)), nan=0.0, posinf=1e6)
    return 1.0 - np.power(0.5, np.square(np.minimum(z, 1e6) / Z_THRESHOLD))


@dataclass(frozen=True)
class Component:
    """One detector's output over a series: score in [0, 1], signed statistic z, expected value per point."""

    score: np.ndarray
    z: np.ndarray
    expected: np.ndarray


def _scale(windows: np.ndarray, median: np.ndarray) -> np.ndarray:
    dev = np.abs(windows - median[:, None])
    mad = np.median(dev, axis=1)
    mean_ad = np.mean(dev, axis=1)
    return np.maximum.reduce(
        [MAD_TO_SIGMA * mad, MEANAD_TO_SIGMA * mean_ad, EPS_RELATIVE * np.maximum(1, np.abs(median))]
    )


def trailing_stats(values: np.ndarray, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, scale, count) of values[max(0, i - window):i] for each i: the history before point i."""
    n = len(values)
    median, scale, count = np.full(n, np.nan), np.full(n, np.nan), np.minimum(np.arange(n), window)
    for i in range(1, min(window, n)):  # expanding start
        history = values[:i][None, :]
        median[i] = np.median(history)
        scale[i] = _scale(history, median[i : i + 1])[0]
    if n > window:
        views = sliding_window_view(values, window)[: n - window]  # views[k] = history of point k + window
        for lo in range(0, len(views), _CHUNK):
            chunk = views[lo : lo + _CHUNK]
            med = np.median(chunk, axis=1)
            median[window + lo : window + lo + len(chunk)] = med
            scale[window + lo : window + lo + len(chunk)] = _scale(chunk, med)
    return median, scale, count


def _on_finite(values: np.ndarray, fn) -> Component:
    """Run fn on the finite values only and scatter back (score 0, z and expected NaN elsewhere)."""
    ok = np.isfinite(values)
    n = len(values)
    score, z, expected = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        inner = fn(ok)
        score[ok], z[ok], expected[ok] = inner.score, inner.z, inner.expected
    return Component(score, z, expected)


def _robust_scaled(values: np.ndarray, window: int, min_history: int) -> tuple[Component, np.ndarray]:
    """The robust z Component and the trailing scale (inf before min_history points)."""
    median, scale, count = trailing_stats(values, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(count >= min_history, (values - median) / scale, np.nan)
    return Component(z_to_score(z), z, median), np.where(count >= min_history, scale, np.inf)


def _robust(values: np.ndarray, window: int, min_history: int) -> Component:
    return _robust_scaled(values, window, min_history)[0]


def robust_zscore(series: Series, window: int = WINDOW, min_history: int = MIN_HISTORY) -> Component:
    """Each point against the median and MAD of the `window` points before it."""
    _, values = as_arrays(series)
    return _on_finite(values, lambda ok: _robust(values[ok], window, min_history))


def candidate_periods(times: np.ndarray) -> list[float]:
    """Calendar periods (a day, a week) that the sampling interval resolves and the series could repeat."""
    if len(times) < 2:
        return []
    step = float(np.median(np.diff(times)))
    span = float(times[-1] - times[0])
    return [p for p in (DAY, WEEK) if step > 0 and p / step >= MIN_POINTS_PER_PERIOD and span > SEASON_MIN_CYCLES * p]


def _seasonal(times: np.ndarray, values: np.ndarray, periods: Sequence[float], window: int, min_history: int):
    """(the seasonal Component, its trailing residual scale) over finite points; None without a period. With
    several periods each point takes the one whose trailing residual scale is smallest."""
    if not periods or len(times) < 2:
        return None
    step = float(np.median(np.diff(times))) or 1.0
    best, best_scale = None, None
    for period in periods:
        lagged = np.full((SEASON_CYCLES, len(times)), np.nan)
        for k in range(1, SEASON_CYCLES + 1):
            target = times - k * period
            idx = np.clip(np.searchsorted(times, target), 1, len(times) - 1)
            nearest = np.where(np.abs(times[idx - 1] - target) <= np.abs(times[idx] - target), idx - 1, idx)
            hit = (np.abs(times[nearest] - target) <= step) & (times[nearest] <= times - 0.5 * period)
            lagged[k - 1] = np.where(hit, values[nearest], np.nan)
        enough = np.sum(np.isfinite(lagged), axis=0) >= SEASON_MIN_CYCLES
        baseline = np.full(len(times), np.nan)
        if enough.any():
            baseline[enough] = np.nanmedian(lagged[:, enough], axis=0)
        residual = values - baseline
        ok = np.isfinite(residual)
        score, z, expected = np.zeros(len(times)), np.full(len(times), np.nan), np.full(len(times), np.nan)
        res_scale = np.full(len(times), np.inf)
        if ok.sum() > min_history:
            inner, res_scale[ok] = _robust_scaled(residual[ok], window, min_history)
            score[ok], z[ok] = inner.score, inner.z
            expected[ok] = baseline[ok] + np.nan_to_num(inner.expected)
        if best is None:
            best, best_scale = Component(score, z, expected), res_scale
        else:
            better = res_scale < best_scale
            best = Component(
                *(
                    np.where(better, new, old)
                    for new, old in zip((score, z, expected), (best.score, best.z, best.expected), strict=True)
                )
            )
            best_scale = np.minimum(res_scale, best_scale)
    return best, best_scale


def seasonal(
    series: Series,
    period: float | None = None,
    window: int = WINDOW,
    min_history: int = MIN_HISTORY,
    gain: float | None = None,
) -> Component:
    """Each point against the same phase of earlier periods (score 0 until two earlier periods exist). With
    `gain`, a point also scores 0 unless the season explains the variance there: its residual's trailing
    scale is below gain x the plain trailing scale (SEASON_GAIN, 0.8, is the operator's choice)."""
    times, values = as_arrays(series)

    def run(ok: np.ndarray) -> Component:
        t, v = times[ok], values[ok]
        found = _seasonal(t, v, [period] if period else candidate_periods(t), window, min_history)
        if found is None:
            return Component(np.zeros(len(t)), np.full(len(t), np.nan), np.full(len(t), np.nan))
        season, scale = found
        if gain is None:
            return season
        explained = scale < gain * _robust_scaled(v, window, min_history)[1]
        return Component(np.where(explained, season.score, 0.0), season.z, season.expected)

    return _on_finite(values, run)


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) per query (0 for an empty range), with a sparse table."""
    out = np.zeros(len(lo))
    if len(values) == 0:
        return out
    table = [values]
    while 2 ** len(table) <= len(values):
        prev, half = table[-1], 2 ** (len(table) - 1)
        table.append(np.maximum(prev[:-half], prev[half:]))
    length = hi - lo
    ok = length > 0
    level = np.zeros(len(lo), dtype=int)
    level[ok] = np.floor(np.log2(length[ok])).astype(int)
    for k in np.unique(level[ok]):
        sel = ok & (level == k)
        row = table[k]
        out[sel] = np.maximum(row[lo[sel]], row[hi[sel] - 2**k])
    return out


def correlate(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]], tolerance: float | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Boost each series' scores by the others' scores at the same time: {name: (boosted, others' mean max)}.

    `scores` maps a name to (times, scores). For a point at t, another series contributes its highest score
    over (t - tolerance, t]; only points at or before t are used, so the boost is causal too.
    """
    names = list(scores)
    out = {}
    for name in names:
        times, own = (np.asarray(a, dtype=float) for a in scores[name])
        if len(names) < 2 or len(times) == 0:
            out[name] = (own.copy(), np.zeros(len(own)))
            continue
        shared = np.zeros(len(own))
        for other in names:
            if other == name:
                continue
            o_times, o_scores = (np.asarray(a, dtype=float) for a in scores[other])
            tol = tolerance
            if tol is None:
                steps = np.diff(o_times)
                tol = CORRELATION_STEPS * float(np.median(steps)) if len(steps) else 0.0
            lo = np.searchsorted(o_times, times - tol, side="right")
            hi = np.searchsorted(o_times, times, side="right")
            shared += _range_max(np.nan_to_num(o_scores), lo, hi)
        shared /= len(names) - 1
        out[name] = (own + (1 - own) * own * shared, shared)
    return out
