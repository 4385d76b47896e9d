"""The statistical detectors and `detect` on synthetic series: spikes, shifts, seasons, correlation, edge cases,
causality. The default detector's own properties are in test_pipeline."""

import numpy as np
import pytest

from aiops.anomaly import FLAG, correlate, detect, robust_zscore, seasonal

STEP = 300.0


def noisy(n=1000, seed=0, level=50.0, sd=1.0):
    rng = np.random.default_rng(seed)
    return np.arange(n) * STEP, level + rng.normal(0, sd, n)


def test_spike_is_flagged_by_the_robust_z_score_and_nothing_else_is():
    t, v = noisy()
    v[600] += 15
    score = robust_zscore((t, v)).score
    assert score[600] > 0.9
    assert np.all((score >= 0) & (score <= 1))
    assert np.count_nonzero(score >= FLAG) <= 3  # 3.5 sigma on 1000 normal points: about 0.5 expected


def test_level_shift_is_found_at_its_onset():
    t, v = noisy()
    v[500:] += 6
    found = detect({"x": (t, v)})
    assert found and found[0].start == pytest.approx(t[500], abs=2 * STEP)


def test_seasonal_series_with_a_broken_period():
    rng = np.random.default_rng(1)
    t = np.arange(12 * 288) * STEP  # 12 days at 5 minutes
    v = 100 + 30 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 1, len(t))
    broken = slice(10 * 288 + 100, 10 * 288 + 112)
    v[broken] = 100  # one hour flat at the mean: within the plain range, out of its phase
    s = seasonal((t, v))
    assert s.score[: 2 * 288].max() == 0  # no baseline before two earlier days
    assert s.score[broken].max() >= FLAG
    assert np.count_nonzero(s.score[2 * 288 : 10 * 288] >= FLAG) < 10
    # The plain z-score cannot see it (the values are ordinary); `detect` adds the seasonal detector on a series
    # this long and reports it as seasonal (novelty sees, at most, the step into the flat hour).
    assert robust_zscore((t, v)).score[broken].max() < FLAG
    found = [a for a in detect({"s": (t, v)}) if t[broken][0] <= a.peak <= t[broken][-1]]
    assert found and found[0].detector == "seasonal"
    assert found[0].expected == pytest.approx(100 + 30 * np.sin(2 * np.pi * found[0].peak / 86400), abs=3)
    # Where the season explains nothing (white noise over days), the gated seasonal score stays 0.
    rng_noise = np.random.default_rng(5)
    noise = 100 + rng_noise.normal(0, 1, len(t))
    assert seasonal((t, noise), gain=0.8).score.max() == 0


def test_correlated_anomalies_score_higher_than_lone_ones():
    t, a = noisy(seed=2)
    _, b = noisy(seed=3)
    a[700] += 4.5  # moderate in both at the same time
    b[700] += 4.5
    a[300] += 4.5  # moderate in a alone
    sa, sb = robust_zscore((t, a)).score, robust_zscore((t, b)).score
    boosted = correlate({"a": (t, sa), "b": (t, sb)})
    assert boosted["a"][0][700] > sa[700]
    assert boosted["a"][0][700] - sa[700] > boosted["a"][0][300] - sa[300]
    assert np.all(boosted["a"][0] >= sa) and np.all(boosted["a"][0] <= 1)
    found = detect({"a": (t, a), "b": (t, b)})
    at_700 = [x for x in found if x.peak == t[700]]
    assert {x.series for x in at_700} == {"a", "b"}
    assert all("also anomalous then" in x.summary for x in at_700)


def test_flat_and_short_series():
    t = np.arange(500) * STEP
    flat = np.full(500, 7.0)
    assert detect({"flat": (t, flat)}) == []
    moved = flat.copy()
    moved[400] = 8.0  # a flat series that moves is anomalous, not a division by zero
    (a,) = detect({"moved": (t, moved)})
    assert a.peak == t[400] and a.score == pytest.approx(1.0) and a.expected == 7.0 and a.value == 8.0
    assert detect({"short": (t[:5], flat[:5])}) == []
    assert detect({"empty": ([], [])}) == []


def test_nan_points_score_zero_and_do_not_poison_the_rest():
    t, v = noisy()
    v[600] += 15
    v[[10, 200, 599, 601]] = np.nan
    c = robust_zscore((t, v))
    assert np.all(np.isfinite(c.score))
    assert c.score[[10, 200, 599, 601]].tolist() == [0, 0, 0, 0]
    assert robust_zscore((t, v)).score[600] > 0.9
    # Prometheus pairs with string values, "NaN" included
    pairs = [[float(x), "NaN" if np.isnan(y) else str(y)] for x, y in zip(t, v, strict=True)]
    assert np.allclose(robust_zscore(pairs).score, robust_zscore((t, v)).score)
    assert any(a.peak == t[600] for a in detect({"x": pairs}))


@pytest.mark.parametrize("detector", [robust_zscore, seasonal, lambda s: seasonal(s, gain=0.8)])
def test_causal_scores_of_a_prefix_do_not_change_when_points_are_appended(detector):
    rng = np.random.default_rng(4)
    t = np.arange(5 * 288) * STEP
    v = 10 + 3 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.5, len(t))
    v[900] += 8
    v[1100:] += 3
    v[50] = np.nan
    full = detector((t, v)).score
    for k in (100, 700, 1000, 1200):
        assert np.allclose(detector((t[:k], v[:k])).score, full[:k]), k


def test_anomaly_fields_for_the_operator():
    t, v = noisy()
    v[600] += 15
    (a,) = [x for x in detect({"cpu{pod=a}": list(zip(t, v, strict=True))}) if x.peak == t[600]]
    assert a.series == "cpu{pod=a}" and a.start <= a.peak <= a.end
    assert 0.5 <= a.score <= 1 and a.detector == "novel_level"
    assert a.value == pytest.approx(v[600]) and a.expected == pytest.approx(50, abs=0.5)
    assert "cpu{pod=a}" in a.summary and "expected" in a.summary
    d = a.to_dict()
    assert d["peak"].endswith("Z") and set(d) >= {"series", "start", "end", "peak", "score", "detector", "summary"}
