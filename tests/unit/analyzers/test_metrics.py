import dataclasses
from datetime import UTC, datetime

import numpy as np
import pytest

from aiops.clusters.telemetry import Span
from aiops.diagnosis.analyzers import metrics, services

from .objects import bundle, unix

POD = "namespace=shop,pod=checkout-7d9f8b6c5-x2kqz"


def series(values):
    return [(unix(i), float(v)) for i, v in enumerate(values)]


def noisy(base: float, spread: float, n: int, seed: int = 7):
    return base + np.random.default_rng(seed).uniform(-spread, spread, n)


def test_error_rate_spike_on_an_aggregate_series_blames_the_target():
    values = np.concatenate([noisy(0.01, 0.002, 45), noisy(0.2, 0.02, 15)])
    [f] = metrics.analyze(bundle(metrics={"error_rate": {"error_rate": series(values)}}))
    s = f.suspect
    assert (s.resource, s.failure_mode) == ("Deployment/checkout", "ErrorRateSpike")
    assert 0.6 < s.score <= 0.7  # far beyond the threshold
    assert s.evidence == ["metric-error-rate-error-rate"]
    assert "last 15 points" in f.evidence[0].summary


def test_memory_growth_per_pod():
    values = np.concatenate([noisy(0.5, 0.01, 30), np.linspace(0.6, 0.95, 10)])
    [f] = metrics.analyze(bundle(metrics={"memory_working_set_ratio": {POD: series(values)}}))
    assert (f.suspect.resource, f.suspect.failure_mode) == ("Pod/checkout-7d9f8b6c5-x2kqz", "MemoryGrowth")


def test_restarts_counter_is_scored_on_its_rate():
    steady_climb = series(range(40))  # one restart a minute all along: no change in rate
    new_crashes = series([3] * 30 + [3, 5, 7, 9, 11, 13, 15, 17, 19, 21])
    reset = series([5] * 20 + [0] * 20)  # a new pod: the counter restarts at 0
    found = metrics.analyze(bundle(metrics={"restarts": {"pod=a": steady_climb, "pod=b": new_crashes, "pod=c": reset}}))
    assert [f.suspect.resource for f in found] == ["Pod/b"]
    assert found[0].suspect.failure_mode == "RestartSpike"


def test_a_sparse_crash_loop_is_seen_although_most_steps_have_no_restart():
    counts = [0] * 46 + [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]  # 3 restarts in the last 15 minutes
    [f] = metrics.analyze(bundle(metrics={"restarts": {POD: series(counts)}}))
    assert f.suspect.score == pytest.approx(0.3 + 0.4 * (1 - 3.5 / 4), abs=1e-3)  # 0.2/min, 0.05/min floor: z 4


def test_score_rises_from_the_threshold():
    def score(recent):
        values = [0.1] * 30 + [recent] * 10  # flat baseline: the scale is the 0.02 floor
        [f] = metrics.analyze(bundle(metrics={"cpu_throttling_ratio": {POD: series(values)}}))
        return f.suspect.score

    assert score(0.1 + 0.02 * 3.5 + 1e-9) == pytest.approx(0.3, abs=1e-3)
    assert score(0.1 + 0.02 * 7) == pytest.approx(0.5, abs=1e-3)
    assert score(1.0) < 0.7


def test_robust_z_uses_the_relative_floor_when_mad_is_tiny():
    z, base, recent, n = metrics.robust_z(np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 2.0, 2.1, 1.9]), 0.01)
    assert (base, recent, n) == (1.0, 2.0, 3)
    assert z == pytest.approx(1.0 / 0.05)  # 1.4826 x MAD 0.025 < 5% of the median


@pytest.mark.parametrize(
    "values",
    [
        [0.3] * 40,  # flat
        [0.0] * 40,  # flat at zero
        list(noisy(0.4, 0.05, 40)),  # noise
        [0.9] * 30 + [0.2] * 10,  # it got better
        [0.1, 5.0],  # too few points
        [],
    ],
)
def test_no_finding_for_flat_noisy_improving_or_short_series(values):
    assert metrics.analyze(bundle(metrics={"cpu_throttling_ratio": {POD: series(values)}})) == []


def test_small_wobble_on_a_flat_baseline_is_below_the_meaningful_change():
    values = [0.1] * 30 + [0.11] * 10  # +1 point of throttling: below the 2-point floor x 3.5
    assert metrics.analyze(bundle(metrics={"cpu_throttling_ratio": {POD: series(values)}})) == []


def test_nan_points_are_dropped_and_unknown_templates_ignored():
    values = [0.1] * 30 + [float("nan")] * 5 + [0.5] * 10
    [f] = metrics.analyze(
        bundle(metrics={"latency_p99": {"latency_p99": series(values)}, "custom": {"x": series(values)}})
    )
    assert f.suspect.failure_mode == "LatencySpike"


def test_baseline_ends_where_the_symptoms_began():
    # 40 quiet points, then a shift: with the split at the detection time, what was normal before it counts.
    values = [0.1] * 40 + [0.5] * 10
    detected = unix(20)
    b = bundle(metrics={"cpu_throttling_ratio": {POD: series(values)}})
    [f] = metrics.analyze(b)
    assert "over the last 12 points" in f.evidence[0].summary  # no detection time: the last quarter
    b.detected_at = datetime.fromtimestamp(detected, UTC)
    assert (
        metrics.analyze(b) == []
    )  # the median since detection (20 points, 10 quiet) (30 points, 20 quiet) has not moved
    b.detected_at = datetime.fromtimestamp(unix(45), UTC)  # fewer than MIN_BASELINE after: still split there
    [f] = metrics.analyze(b)
    assert "over the last 5 points" in f.evidence[0].summary


def test_neighbourhood_names_the_dependency_that_moved_in_either_direction():
    quiet = noisy(0.2, 0.01, 60)
    starved = np.concatenate([noisy(0.2, 0.01, 45), noisy(0.05, 0.005, 15)])  # CPU falls: starved
    slow = np.concatenate([noisy(0.02, 0.001, 45), noisy(0.3, 0.01, 15)])
    b = bundle(
        metrics={
            "pod_cpu_usage": {"pod=frontend-a": series(quiet), "pod=cart-b": series(starved)},
            "pod_latency_p99": {"pod=cart-b": series(slow), "pod=frontend-a": series(noisy(0.1, 0.01, 60))},
        }
    )
    b.detected_at = datetime.fromtimestamp(unix(45), UTC)
    [f] = metrics.analyze(b)
    assert (f.suspect.resource, f.suspect.failure_mode) == ("Pod/cart-b", "MetricAnomaly")
    # One suspect per pod, strongest signal first, each signal cited.
    assert f.suspect.evidence == ["metric-pod-latency-p99-cart-b", "metric-pod-cpu-usage-cart-b"]
    assert "robust z -" in f.evidence[1].summary and "p99 request latency" in f.suspect.reason


def test_the_service_ranking_takes_the_neighbourhood_over_only_when_traces_reach_the_incident():
    """With spans from detectedAt on, the service ranking fuses the pods' signals along the call graph; with
    spans in the baseline alone (a trace backend that kept nothing of the incident) it has nothing to compare,
    and the pods are ranked here."""
    slow = np.concatenate([noisy(0.02, 0.001, 45), noisy(0.3, 0.01, 15)])
    b = bundle(metrics={"pod_latency_p99": {"pod=cart-b": series(slow)}})
    b.detected_at = datetime.fromtimestamp(unix(45), UTC)
    span = Span("t1", "s1", None, "cart", "GET /cart", unix(10), 0.01, kind="server")
    b.spans = [span]
    assert [f.suspect.resource for f in metrics.analyze(b)] == ["Pod/cart-b"]
    assert services.analyze(b) == []
    b.spans = [span, dataclasses.replace(span, span_id="s2", start=unix(50))]
    assert metrics.analyze(b) == []


def test_neighbourhood_keeps_only_the_most_deviant_pods():
    pods = {f"pod=svc{i}-x": series([1.0] * 45 + [1.0 + 0.1 * (i + 1)] * 15) for i in range(12)}
    b = bundle(metrics={"pod_memory_working_set": {k: [(t, v * 2**30) for t, v in p] for k, p in pods.items()}})
    found = metrics.analyze(b)
    assert len(found) == metrics.MAX_NEIGHBOURS
    assert [f.suspect.resource for f in found[:2]] == ["Pod/svc11-x", "Pod/svc10-x"]


def test_a_pod_named_by_the_targets_templates_is_not_counted_again_as_a_neighbour():
    climb = series([0.5] * 45 + [0.9] * 15)
    b = bundle(
        metrics={
            "memory_working_set_ratio": {POD: climb},
            "pod_memory_working_set": {
                POD: [(t, v * 2**28) for t, v in climb],
                "pod=payments-5d8f9c7b6-k2j4m": [(t, v * 2**28) for t, v in climb],
            },
        }
    )
    found = [(f.suspect.resource, f.suspect.failure_mode) for f in metrics.analyze(b)]
    assert found == [
        ("Pod/checkout-7d9f8b6c5-x2kqz", "MemoryGrowth"),
        ("Pod/payments-5d8f9c7b6-k2j4m", "MetricAnomaly"),
    ]
