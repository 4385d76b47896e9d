"""Anomaly detection over metric time series (vectorised, causal): see `detectors` for the per-point
scores and their defaults, `detect` for turning PromQL range results into anomalies.

    from aiops.anomaly import detect
    anomalies = detect({"cpu{pod=a}": [[t0, "0.1"], [t1, "0.2"], ...], "latency{pod=a}": (times, values)})
"""

from aiops.anomaly.detect import Anomaly, detect
from aiops.anomaly.detectors import (
    FLAG,
    Combined,
    Component,
    StreamScorer,
    as_arrays,
    change_points,
    combined,
    correlate,
    robust_zscore,
    seasonal,
    suppress_repeats,
)

__all__ = [
    "FLAG",
    "Anomaly",
    "Combined",
    "Component",
    "StreamScorer",
    "as_arrays",
    "change_points",
    "combined",
    "correlate",
    "detect",
    "robust_zscore",
    "seasonal",
    "suppress_repeats",
]
