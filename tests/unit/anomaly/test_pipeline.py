"""The default detector (contextual novelty -> likelihood -> rest): causality, streaming, learning period,
suppression, likelihood, and the inputs it must survive."""

import math

import numpy as np
import pytest

from aiops.anomaly import FLAG, Pipeline, StreamScorer, combined, learning_period, suppress_repeats
from aiops.anomaly.likelihood import Likelihood, normal_cdf
from aiops.anomaly.novelty import Novelty
from aiops.anomaly.pipeline import LEARNING, rest_horizon

STEP = 300.0


def noisy(n=1000, seed=0, level=50.0, sd=1.0):
    rng = np.random.default_rng(seed)
    return np.arange(n) * STEP, level + rng.normal(0, sd, n)


def alarms(score):
    return np.flatnonzero(score >= FLAG)


def test_a_spike_is_flagged_once():
    t, v = noisy()
    v[600] += 15
    c = combined((t, v))
    assert c.score[600] > 0.9 and c.detector(600) == "novel_level"
    assert alarms(c.score[601 : 601 + rest_horizon(LEARNING)]).size == 0
    assert c.expected(600) == pytest.approx(50, abs=0.5)


def test_a_level_shift_is_flagged_once_at_its_onset():
    t, v = noisy()
    v[500:] += 6
    score = combined((t, v)).score
    assert alarms(score[500:600]).tolist() == [0] and score[500] > 0.9  # familiar by the time the rest ends
    unsuppressed = combined((t, v), suppress=False).score
    assert alarms(unsuppressed[500:520]).size > 1


def test_the_rest_lets_a_worse_score_through_and_restarts():
    score = np.array([0.0, 0.6, 0.55, 0.2, 0.7, 0.6, 0.0, 0.0, 0.0, 0.0, 0.52])
    out = suppress_repeats(score, horizon=3, level=FLAG)
    assert out.tolist() == [0.0, 0.6, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.52]
    assert suppress_repeats(score, horizon=0).tolist() == score.tolist()
    with pytest.raises(ValueError):
        suppress_repeats(score, horizon=-1)


def test_nothing_is_flagged_during_the_learning_period():
    t, v = noisy(400)
    v[50] += 30
    v[10] = np.nan  # a missing point does not count towards the learning period
    score = combined((t, v), learning=100).score
    assert score[:101].max() == 0
    assert score[101:].max() > 0
    assert [learning_period(n) for n in (1, 60, 240, 1000, 2000, 10**6)] == [0, 30, 120, 150, 300, 750]


def test_flat_series_are_not_flagged_and_a_move_is():
    t = np.arange(500) * STEP
    flat = np.full(500, 7.0)
    assert combined((t, flat)).score.max() < 0.01  # a familiar state's raw score is 1 / its count, not 0
    moved = flat.copy()
    moved[400] = 8.0
    score = combined((t, moved)).score
    assert score[400] == pytest.approx(1.0) and alarms(score).tolist() == [400]


def test_white_noise_alarms_are_rare_and_thin_out():
    # Novelty flags a state never seen: in white noise that is a new extreme (a record), whose rate falls as 1/n.
    t, v = noisy(3000, seed=7)
    found = alarms(combined((t, v)).score)
    assert len(found) <= 15
    assert np.count_nonzero(found >= 1500) < np.count_nonzero(found < 1500)


def test_the_grid_widens_without_forgetting():
    t = np.arange(1200) * STEP
    v = np.where(np.arange(1200) % 2 == 0, 10.0, 11.0)
    v[600] = 1000.0  # the range grows a thousandfold: the bins double ten times
    score = combined((t, v)).score
    assert score[600] > 0.9
    assert score[601 + rest_horizon(LEARNING) :].max() < FLAG  # the old alternation is still familiar


def test_causal_prefix_and_chunking():
    rng = np.random.default_rng(4)
    t = np.arange(1500) * STEP
    v = 10 + 3 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.5, len(t))
    v[900] += 8
    v[1100:] += 30  # widens the grid
    v[[50, 700]] = np.nan
    v[800] = np.inf
    full = combined((t, v)).score
    for k in (1, 100, 151, 700, 1000, 1200):
        assert np.array_equal(combined((t[:k], v[:k])).score, full[:k]), k
    pipeline, parts, lo = Pipeline(), [], 0
    for size in rng.integers(1, 200, 100):
        parts.append(pipeline.update(v[lo : lo + size])[0])
        lo += size
    assert np.allclose(np.concatenate(parts)[: len(v)], full)
    stream = StreamScorer()
    assert np.allclose([stream.push(x, y) for x, y in zip(t, v, strict=True)], full)
    assert full[[50, 700, 800]].tolist() == [0, 0, 0]


def test_likelihood_is_a_probability():
    z = np.linspace(-8, 8, 1601)
    exact = np.array([0.5 * math.erfc(-x / math.sqrt(2)) for x in z])
    assert np.max(np.abs(normal_cdf(z) - exact)) < 2e-7
    raw = np.random.default_rng(2).random(500) ** 4
    likely = Likelihood().update(raw)
    assert np.all((likely >= 0) & (likely <= 1))
    c = combined(noisy(800)).likelihood
    assert np.all((c >= 0) & (c <= 1))
    # The same raw score is less likely where raw scores run high.
    quiet, busy = Likelihood(), Likelihood()
    quiet.update(np.zeros(100))
    busy.update(np.tile([0.0, 0.6], 50))
    assert quiet.update(np.array([0.6]))[0] > busy.update(np.array([0.6]))[0]


def test_novelty_counts_levels_and_transitions():
    novelty = Novelty(np.array([0.0, 7.0, 0.0, 7.0, 0.0, 7.0]))
    assert novelty.warmup[0] == 0  # the first point has no transition
    # Level 0 and the transition 7 -> 0 have been seen twice (the first point is no transition): 1/3 each.
    assert novelty.update(np.array([0.0]))[0] == pytest.approx(1 / 3)
    assert novelty.update(np.array([3.5]))[0] == 1.0  # a new level on every grid
    with pytest.raises(ValueError):
        Novelty(np.array([]))


@pytest.mark.parametrize(
    "times, values",
    [
        ([], []),
        ([0.0], [1.0]),
        ([0.0, 1.0], [np.nan, np.inf]),
        (np.arange(300.0), np.full(300, -3.0)),
        (np.arange(300.0), np.r_[np.zeros(200), [1e300, -1e300], np.zeros(98)]),
        (np.arange(300.0), np.r_[np.full(200, 1e307), [1.7e308, -1.7e308], np.zeros(98)]),
    ],
)
def test_degenerate_series_give_defined_scores(times, values):
    c = combined((np.asarray(times), np.asarray(values, dtype=float)))
    assert len(c.score) == len(values)
    assert np.all(np.isfinite(c.score)) and np.all((c.score >= 0) & (c.score <= 1))


def test_time_stamps_are_sorted_stably_and_gaps_are_one_step():
    t, v = noisy(400)
    order = np.random.default_rng(3).permutation(400)
    assert np.array_equal(combined((t[order], v[order])).score, combined((t, v)).score)
    gappy = t + np.where(np.arange(400) > 200, 86400.0, 0.0)  # a day missing: points are counted, not seconds
    assert np.array_equal(combined((gappy, v)).score, combined((t, v)).score)
    ties = combined((np.zeros(3), np.array([1.0, 2.0, 3.0])))
    assert len(ties.score) == 3 and ties.values.tolist() == [1.0, 2.0, 3.0]  # equal stamps keep their order


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="times but"):
        combined(([0.0, 1.0], [1.0]))
    with pytest.raises(ValueError, match="learning"):
        combined(noisy(10), learning=0)
    stream = StreamScorer()
    stream.push(10.0, 1.0)
    with pytest.raises(ValueError, match="time order"):
        stream.push(5.0, 1.0)
