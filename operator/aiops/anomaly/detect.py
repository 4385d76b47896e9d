"""Anomalies out of PromQL range results: `detect({name: series}) -> [Anomaly]`.

Each series is scored with the default detector (`pipeline.combined`: contextual novelty, anomaly
likelihood, a rest period after each alarm so that one anomaly is reported once), with the learning
period `pipeline.learning_period` gives a series of its length (a range result is a batch whose length
is known: NAB's rule, but at least 120 points or half the series). A series long enough to hold two
calendar periods is also scored by the seasonal detector (`detectors.seasonal`: a value out of its
phase of the day or week, which novelty cannot see) where the season explains the variance, and a
point keeps the higher of the two scores. With several series the scores are boosted where the series
move together (`detectors.correlate`). Consecutive points at or above `threshold` (gaps of up to
`max_gap` points bridged) form one Anomaly, named after the detector that scored its peak highest;
`expected` is the seasonal baseline there, or else the median of the WINDOW finite values before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from aiops.anomaly.detectors import (
    FLAG,
    SEASON_GAIN,
    WINDOW,
    Series,
    as_arrays,
    candidate_periods,
    correlate,
    seasonal,
)
from aiops.anomaly.pipeline import Combined, combined, learning_period

MAX_GAP = 3
MIN_POINTS = 24  # a shorter series is skipped: 12 points to learn from, 12 to score, is the least that says anything
# The seasonal detector's trailing windows cost O(n x WINDOW): past this many points (a range result holds at most
# 11,000) only the streaming detector runs, so that a batch of millions of points stays linear in time and memory.
SEASONAL_MAX_POINTS = 100_000
SHARED_AT = FLAG  # another series counts as sharing an anomaly when its score within the tolerance reaches this


@dataclass(frozen=True)
class Anomaly:
    series: str
    start: float  # unix seconds of the first flagged point
    end: float  # unix seconds of the last flagged point
    peak: float  # unix seconds of the highest score
    score: float  # the highest score, in [0, 1]
    detector: str  # novel_level | novel_transition | seasonal (+correlated when the boost lifted it over the threshold)
    summary: str
    points: int = 0
    value: float = float("nan")  # the value at the peak
    expected: float = float("nan")  # what the detector expected there

    def to_dict(self) -> dict:
        return {
            "series": self.series,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "peak": _iso(self.peak),
            "score": round(self.score, 3),
            "detector": self.detector,
            "summary": self.summary,
            "points": self.points,
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _runs(flags: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(flags)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


@dataclass(frozen=True)
class _Scored:
    times: np.ndarray
    values: np.ndarray
    score: np.ndarray
    result: Combined
    seasonal: np.ndarray | None  # where the seasonal detector wins, its expected value (NaN elsewhere)


def _score(times: np.ndarray, values: np.ndarray, period: float | None, window: int, learning: int | None) -> _Scored:
    finite = int(np.count_nonzero(np.isfinite(values)))
    result = combined((times, values), learning or learning_period(finite))
    score, season = result.score, None
    if len(values) <= SEASONAL_MAX_POINTS and (period or candidate_periods(times[np.isfinite(values)])):
        found = seasonal((times, values), period, window, gain=SEASON_GAIN)
        wins = found.score > score
        score = np.where(wins, found.score, score)
        season = np.where(wins, found.expected, np.nan)
    return _Scored(times, values, score, result, season)


def _detector(s: _Scored, i: int) -> str:
    return "seasonal" if s.seasonal is not None and np.isfinite(s.seasonal[i]) else s.result.detector(i)


def _expected(s: _Scored, i: int) -> float:
    return float(s.seasonal[i]) if _detector(s, i) == "seasonal" else s.result.expected(i)


def detect(
    series: Mapping[str, Series],
    *,
    threshold: float = FLAG,
    period: float | None = None,
    window: int = WINDOW,
    max_gap: int = MAX_GAP,
    correlated: bool = True,
    tolerance: float | None = None,
    learning: int | None = None,
) -> list[Anomaly]:
    """Anomalies over every series (highest score first). Series with fewer than MIN_POINTS finite points are
    skipped; `period` (seconds) forces the seasonal period, `learning` the learning period (points; default
    `pipeline.learning_period` of the series' length)."""
    scored: dict[str, _Scored] = {}
    for name, raw in series.items():
        times, values = as_arrays(raw)
        if np.count_nonzero(np.isfinite(values)) < MIN_POINTS:
            continue
        scored[name] = _score(times, values, period, window, learning)
    boosted = correlate({n: (s.times, s.score) for n, s in scored.items()}, tolerance) if correlated else {}
    anomalies = []
    for name, s in scored.items():
        times, values = s.times, s.values
        score, _ = boosted.get(name, (s.score, None))
        for first, last in _runs(score >= threshold, max_gap):
            peak = first + int(np.argmax(score[first : last + 1]))
            detector = _detector(s, peak)
            if s.score[peak] < threshold:
                detector += "+correlated"
            expected = _expected(s, peak)
            others = [
                o
                for o, other in scored.items()
                if o != name and _shares(other.times, other.score, times[peak], times[min(last + 1, len(times) - 1)])
            ]
            summary = (
                f"{name}: {values[peak]:.4g} at {_iso(times[peak])} where {expected:.4g} was expected"
                f" ({detector.replace('_', ' ')}, novelty {s.result.novelty[peak]:.2f},"
                f" likelihood {s.result.likelihood[peak]:.3f},"
                f" score {score[peak]:.2f}); {last - first + 1} points from {_iso(times[first])} to {_iso(times[last])}"
            )
            if others:
                summary += f"; also anomalous then: {', '.join(sorted(others))}"
            anomalies.append(
                Anomaly(
                    series=name,
                    start=float(times[first]),
                    end=float(times[last]),
                    peak=float(times[peak]),
                    score=float(score[peak]),
                    detector=detector,
                    summary=summary,
                    points=int(last - first + 1),
                    value=float(values[peak]),
                    expected=expected,
                )
            )
    return sorted(anomalies, key=lambda a: (-a.score, a.series, a.start))


def _shares(times: np.ndarray, score: np.ndarray, start: float, end: float) -> bool:
    sel = (times >= start - (end - start) - 1) & (times <= end)
    return bool(np.any(score[sel] >= SHARED_AT))
