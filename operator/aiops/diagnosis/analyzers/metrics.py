"""Metric anomalies: per series, how far the recent part of the window sits above its own earlier
baseline, as a robust z-score (median and MAD, so a spike in the baseline does not hide a shift).

For a series of n points the last max(MIN_RECENT, n // 4) are "recent", the rest the baseline.
z = (median(recent) - median(baseline)) / scale, with scale = 1.4826 x MAD(baseline) (the MAD of a
normal distribution scaled to its standard deviation), floored at FLOOR_RELATIVE x |median| and at the
template's smallest meaningful change so that a flat baseline does not turn noise into infinity.
A series is reported when z >= Z_THRESHOLD (3.5, Iglewicz and Hoaglin's cut-off for modified
z-scores); the score rises from SCORE_MIN at the threshold towards SCORE_MAX: metrics correlate,
they do not prove. Series with fewer than MIN_POINTS points, and flat ones, are not scored.
Every template here is "higher is worse". `restarts` is a counter: it is turned into restarts per
minute (a reset to 0, a new pod, counts as no restart), and its recent part is summarised by the mean,
not the median, because restarts are sparse: a pod crash-looping every five minutes has a median
increase of 0 per step.

When the bundle knows when the symptoms began (`detected_at`) and the window holds at least
MIN_BASELINE points before and MIN_RECENT points from then on, the split is there instead: the
baseline is what the pods did before anyone noticed.

The NEIGHBOURHOOD templates cover every pod of the target's namespace, because the cause of a symptom
is often a dependency. There a change in either direction counts (a starved pod uses less CPU, a
delayed one moves fewer bytes), each pod gets one MetricAnomaly suspect named after its strongest
signal and citing the others, and only the MAX_NEIGHBOURS most deviant pods are kept. A pod that the
target's own templates already named gets none: the same movement would be counted twice.
"""

from __future__ import annotations

import numpy as np

from aiops.diagnosis.analyzers.common import finding, item, traced_after_split
from aiops.diagnosis.evidence import POD_LABEL, EvidenceBundle, Finding, Series

Z_THRESHOLD = 3.5
SCORE_MIN, SCORE_MAX = 0.3, 0.7
MIN_POINTS = 8
MIN_RECENT = 3
MIN_BASELINE = 8
MAX_NEIGHBOURS = 8
MAD_TO_SIGMA = 1.4826
FLOOR_RELATIVE = 0.05

# template -> (failure mode, smallest change worth a look, unit, what to do)
TEMPLATES: dict[str, tuple[str, float, str, str]] = {
    "restarts": (
        "RestartSpike",
        0.05,  # one restart in 20 minutes
        "restarts/min",
        "Containers started restarting: see the CrashLoopBackOff / OOMKilled suspects and the previous logs.",
    ),
    "memory_working_set_ratio": (
        "MemoryGrowth",
        0.02,
        "of limit",
        "Memory grows towards the limit: look for a leak (heap profile) or a bigger working set since the last"
        " change; raise the limit only with the growth explained.",
    ),
    "cpu_throttling_ratio": (
        "CPUThrottling",
        0.02,
        "of periods throttled",
        "CPU is throttled by the limit: raise or remove the CPU limit, or cut the work per pod (scale out).",
    ),
    "error_rate": (
        "ErrorRateSpike",
        0.005,
        "of requests",
        "5xx rose: correlate with the rollout and dependency suspects, and roll back if it began with a release.",
    ),
    "latency_p99": (
        "LatencySpike",
        0.01,
        "s",
        "p99 latency rose: check CPU throttling, dependency latency and saturation (HPA at max, queueing).",
    ),
}
# neighbourhood template -> (signal, smallest change worth a look, unit)
NEIGHBOURHOOD: dict[str, tuple[str, float, str]] = {
    "pod_cpu_usage": ("CPU usage", 0.005, "cores"),
    "pod_memory_working_set": ("memory working set", 2**20, "bytes"),
    "pod_network_receive": ("network receive", 100.0, "B/s"),
    "pod_network_transmit": ("network transmit", 100.0, "B/s"),
    "pod_latency_p99": ("p99 request latency", 0.001, "s"),
    "pod_error_ratio": ("request error ratio", 0.001, "of requests"),
}
NEIGHBOUR_MODE = "MetricAnomaly"
NEIGHBOUR_FIX = (
    "This pod's own signals moved when the symptoms began: look at its logs, recent changes and saturation"
    " before the target's; a dependency that slows down or fails shows up as the target's symptom."
)
FAILURE_MODES = tuple(mode for mode, _, _, _ in TEMPLATES.values()) + (NEIGHBOUR_MODE,)


def robust_z(
    values: np.ndarray, min_change: float, sparse: bool = False, recent_n: int | None = None
) -> tuple[float, float, float, int]:
    """(z, baseline median, recent level, recent length) of one series (see the module doc); the last
    `recent_n` points (default: the last quarter) are recent; the recent level is the median, or the mean
    for `sparse` event counts."""
    recent_n = recent_n or max(MIN_RECENT, len(values) // 4)
    baseline, recent = values[:-recent_n], values[-recent_n:]
    base_median = float(np.median(baseline))
    mad = float(np.median(np.abs(baseline - base_median)))
    scale = max(MAD_TO_SIGMA * mad, FLOOR_RELATIVE * abs(base_median), min_change)
    level = float(np.mean(recent) if sparse else np.median(recent))
    return (level - base_median) / scale, base_median, level, recent_n


def recent_since(bundle: EvidenceBundle, times: np.ndarray) -> int | None:
    """How many points lie at or after the symptoms' start, when that split leaves enough on both sides."""
    if bundle.detected_at is None:
        return None
    n = int(np.count_nonzero(times >= bundle.detected_at.timestamp()))
    return n if n >= MIN_RECENT and len(times) - n >= MIN_BASELINE else None


def _points(points: Series) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(points, dtype=float).reshape(-1, 2)
    data = data[np.isfinite(data).all(axis=1)]
    return data[:, 0], data[:, 1]


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    findings = []
    for template, series in sorted(bundle.metrics.items()):
        if template in TEMPLATES:
            findings += [
                f for label, points in sorted(series.items()) if (f := _series(bundle, template, label, points))
            ]
    if traced_after_split(bundle):  # the service ranking fuses these signals along the call graph (services.py)
        return findings
    return findings + _neighbourhood(bundle, {f.suspect.resource for f in findings})


def _series(bundle: EvidenceBundle, template: str, label: str, points: Series) -> Finding | None:
    mode, min_change, unit, fix = TEMPLATES[template]
    times, values = _points(points)
    counter = template == "restarts"
    if counter:
        minutes = np.diff(times) / 60
        values, times = np.clip(np.diff(values), 0, None) / np.where(minutes > 0, minutes, np.inf), times[1:]
    if len(values) < MIN_POINTS:
        return None
    z, base, recent, recent_n = robust_z(values, min_change, counter, recent_since(bundle, times))
    if z < Z_THRESHOLD:
        return None
    score = SCORE_MIN + (SCORE_MAX - SCORE_MIN) * (1 - Z_THRESHOLD / z)
    pod = POD_LABEL.search(label)
    resource = f"Pod/{pod.group(1)}" if pod else f"{bundle.target.kind}/{bundle.target.name}"
    since = int(times[-recent_n])
    stat = "mean" if counter else "median"
    summary = (
        f"{template} {{{label}}}: recent {stat} {recent:.4g} {unit} over the last {recent_n} points"
        f" (since {since} unix s) vs baseline median {base:.4g} over {len(values) - recent_n}; robust z {z:.1f}"
    )
    return finding(
        resource,
        mode,
        score,
        f"{template} rose from {base:.4g} to {recent:.4g} {unit} (robust z {z:.1f}) for {label}.",
        fix,
        [item("prometheus", summary, "metric", template, pod.group(1) if pod else label)],
    )


def _neighbourhood(bundle: EvidenceBundle, explained: set[str]) -> list[Finding]:
    """MetricAnomaly suspects for pods that the target's own templates (in `explained`) did not already name."""
    by_pod: dict[str, list[tuple[float, str, str]]] = {}  # pod -> [(|z|, template, summary)]
    for template, (signal, min_change, unit) in NEIGHBOURHOOD.items():
        for label, points in sorted(bundle.metrics.get(template, {}).items()):
            pod = POD_LABEL.search(label)
            times, values = _points(points)
            if pod is None or f"Pod/{pod.group(1)}" in explained or len(values) < MIN_POINTS or np.ptp(values) == 0:
                continue
            z, base, level, recent_n = robust_z(values, min_change, recent_n=recent_since(bundle, times))
            if abs(z) >= Z_THRESHOLD:
                summary = (
                    f"{signal} of {pod.group(1)}: median {level:.4g} {unit} over the last {recent_n} points"
                    f" (since {int(times[-recent_n])} unix s) vs baseline median {base:.4g}; robust z {z:+.1f}"
                )
                by_pod.setdefault(pod.group(1), []).append((abs(z), template, summary))
    ranked = sorted(by_pod.items(), key=lambda kv: (-max(kv[1])[0], kv[0]))[:MAX_NEIGHBOURS]
    findings = []
    for pod, signals in ranked:
        signals.sort(reverse=True)
        z = signals[0][0]
        score = SCORE_MIN + (SCORE_MAX - SCORE_MIN) * (1 - Z_THRESHOLD / z)
        moved = ", ".join(f"{NEIGHBOURHOOD[t][0]} (|z| {sz:.1f})" for sz, t, _ in signals)
        findings.append(
            finding(
                f"Pod/{pod}",
                NEIGHBOUR_MODE,
                score,
                f"{pod} deviates from its own baseline since the symptoms began: {moved}.",
                NEIGHBOUR_FIX,
                [item("prometheus", summary, "metric", t, pod) for _, t, summary in signals],
            )
        )
    return findings
