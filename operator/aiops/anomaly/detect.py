"""Anomalies out of PromQL range results: `detect({name: series}) -> [Anomaly]`.

Each series is scored with the combined detector (`detectors.combined`, unsuppressed: the extent of an
anomaly matters here, not one alert per onset); with several series the scores are boosted where the
series move together (`detectors.correlate`). Consecutive points at or above `threshold` (gaps of up to
`max_gap` points bridged) form one Anomaly, named after the detector that scored its peak highest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from aiops.anomaly.detectors import FLAG, MIN_HISTORY, WINDOW, Series, as_arrays, combined, correlate

MAX_GAP = 3
SHARED_AT = FLAG  # another series counts as sharing an anomaly when its score within the tolerance reaches this


@dataclass(frozen=True)
class Anomaly:
    series: str
    start: float  # unix seconds of the first flagged point
    end: float  # unix seconds of the last flagged point
    peak: float  # unix seconds of the highest score
    score: float  # the highest score, in [0, 1]
    detector: str  # robust_z | seasonal | change_point (+correlated when the boost lifted it over the threshold)
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


def detect(
    series: Mapping[str, Series],
    *,
    threshold: float = FLAG,
    period: float | None = None,
    window: int = WINDOW,
    max_gap: int = MAX_GAP,
    correlated: bool = True,
    tolerance: float | None = None,
) -> list[Anomaly]:
    """Anomalies over every series (highest score first). Series with fewer than MIN_HISTORY + 1 finite points
    are skipped (nothing to compare with); `period` (seconds) forces the seasonal period."""
    scored = {}
    for name, raw in series.items():
        times, values = as_arrays(raw)
        if np.count_nonzero(np.isfinite(values)) <= MIN_HISTORY:
            continue
        scored[name] = (times, values, combined((times, values), period, window))
    boosted = correlate({n: (t, c.score) for n, (t, _, c) in scored.items()}, tolerance) if correlated else {}
    anomalies = []
    for name, (times, values, result) in scored.items():
        score, shared = boosted.get(name, (result.score, np.zeros(len(times))))
        for first, last in _runs(score >= threshold, max_gap):
            peak = first + int(np.argmax(score[first : last + 1]))
            detector = str(result.detector[peak])
            if result.score[peak] < threshold:
                detector += "+correlated"
            expected, z = result.expected(peak), result.z(peak)
            others = [
                o
                for o, (o_times, _, o_result) in scored.items()
                if o != name and _shares(o_times, o_result.score, times[peak], times[min(last + 1, len(times) - 1)])
            ]
            summary = (
                f"{name}: {values[peak]:.4g} at {_iso(times[peak])} where {expected:.4g} was expected"
                f" ({detector.replace('_', ' ')}, z {z:+.1f}, score {score[peak]:.2f});"
                f" {last - first + 1} points from {_iso(times[first])} to {_iso(times[last])}"
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
