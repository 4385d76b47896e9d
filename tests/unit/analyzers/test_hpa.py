from aiops.diagnosis.analyzers import hpa

from .objects import bundle, condition
from .objects import hpa as hpa_obj

LIMITED = condition(
    "ScalingLimited", "True", "TooManyReplicas", "the desired replica count is more than the maximum replica count"
)


def test_hpa_pinned_at_max_while_metrics_ask_for_more():
    h = hpa_obj(current=10, desired=10, maximum=10, cpu=180, conditions=[LIMITED])
    [f] = hpa.analyze(bundle(hpas=[h]))
    s = f.suspect
    assert (s.resource, s.failure_mode, s.score) == ("HorizontalPodAutoscaler/checkout", "HPAAtMaxReplicas", 0.6)
    assert "maxReplicas 10" in s.reason and "cpu 180%" in s.reason
    assert "more than the maximum" in f.evidence[0].summary


def test_either_signal_is_enough():
    by_counts = hpa_obj(current=10, desired=12, maximum=10, conditions=[])
    by_condition = hpa_obj("other", current=9, desired=9, maximum=10, conditions=[LIMITED])
    assert len(hpa.analyze(bundle(hpas=[by_counts, by_condition]))) == 2


def test_scaling_inactive_when_metrics_are_missing():
    blind = condition(
        "ScalingActive",
        "False",
        "FailedGetResourceMetric",
        "the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu",
    )
    [f] = hpa.analyze(bundle(hpas=[hpa_obj(conditions=[blind])]))
    assert (f.suspect.failure_mode, f.suspect.score) == ("HPAScalingInactive", 0.45)
    assert "missing request for cpu" in f.suspect.reason


def test_hpa_within_range_and_a_fresh_hpa_without_status_give_nothing():
    fresh = hpa_obj("fresh")
    del fresh["status"]
    assert hpa.analyze(bundle(hpas=[hpa_obj(), fresh])) == []
