"""Anomaly detection over metric time series (vectorised, streaming, causal): `pipeline` is the default
detector (contextual novelty in `novelty`, anomaly likelihood in `likelihood`, rest period in `rest`),
`detectors` the statistical ones (robust z, seasonal, correlation), `detect` turns PromQL
range results into anomalies.

    from aiops.anomaly import detect
    anomalies = detect({"cpu{pod=a}": [[t0, "0.1"], [t1, "0.2"], ...], "latency{pod=a}": (times, values)})
"""

from aiops.anomaly.detect import Anomaly, detect
from aiops.anomaly.detectors import FLAG, Component, as_arrays, correlate, robust_zscore, seasonal
from aiops.anomaly.pipeline import Combined, Pipeline, StreamScorer, combined, learning_period
from aiops.anomaly.rest import suppress_repeats

__all__ = [
    "FLAG",
    "Anomaly",
    "Combined",
    "Component",
    "Pipeline",
    "StreamScorer",
    "as_arrays",
    "combined",
    "correlate",
    "detect",
    "learning_period",
    "robust_zscore",
    "seasonal",
    "suppress_repeats",
]
