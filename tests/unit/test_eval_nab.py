"""The NAB scorer on hand-computed cases, and end to end on one real category (the null scores 0, the oracle 100)."""

import math
from pathlib import Path

import numpy as np
import pytest

from aiops_dev.eval.nab import (
    PUBLISHED_STANDARD,
    DataFile,
    Profile,
    _scorable,
    evaluate,
    load,
    load_profiles,
    normalised,
    null_detector,
    optimise_threshold,
    oracle_detector,
    ours,
    probation_length,
    raw_score,
    scaled_sigmoid,
    sweep_scores,
)

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "nab"
STANDARD = Profile(tp=1.0, fp=0.11, fn=1.0)
N = 200  # probation: floor(0.15 x 200) = 30 points
WINDOW = ((100, 119),)  # 20 points


def one_file(windows=WINDOW, n=N):
    times = np.arange(n).astype("datetime64[m]").astype("datetime64[s]")
    return DataFile("cat/f.csv", times, np.zeros(n), windows)


def score_at(flags, windows=WINDOW, profile=STANDARD, threshold=1.0):
    f = one_file(windows)
    scores = np.zeros(N)
    scores[list(flags)] = 1.0
    return raw_score(_scorable([f], {f.name: scores}, profile), threshold, profile)


def test_scaled_sigmoid_and_probation():
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(3.0) == -1.0
    assert probation_length(200) == 30 and probation_length(10_000) == 750


def test_detection_at_the_window_start_earns_a_tp():
    assert score_at([100]) == pytest.approx(1.0)
    # Later in the window earns less; the earliest detection counts, the others are free.
    later = score_at([110])
    assert 0 < later < 1
    assert score_at([100, 110, 119]) == pytest.approx(1.0)
    weight, _ = sweep_scores(N, WINDOW, STANDARD)
    assert (
        later == pytest.approx(weight[110]) == pytest.approx(scaled_sigmoid(-(119 - 110 + 1) / 20) / scaled_sigmoid(-1))
    )


def test_detection_after_the_window_is_a_false_positive_and_the_window_is_missed():
    far = score_at([190])  # 71 points after a 20-point window: S(71 / 19) = -1
    assert far == pytest.approx(-1.0 - 0.11)
    near = score_at([121])  # just after the window: a small penalty
    assert -1.0 - 0.11 < near < -1.0
    assert near == pytest.approx(-1.0 + 0.11 * scaled_sigmoid(2 / 19))
    before = score_at([50])  # before any window: -A_FP
    assert before == pytest.approx(-1.0 - 0.11)


def test_missed_window_costs_a_fn():
    assert score_at([]) == pytest.approx(-1.0)
    assert score_at([], profile=Profile(1.0, 0.11, 2.0)) == pytest.approx(-2.0)


def test_detections_in_the_probationary_period_are_ignored():
    assert score_at([0, 5, 29]) == pytest.approx(-1.0)
    assert score_at([30]) == pytest.approx(-1.0 - 0.11)


def test_threshold_sweep_finds_the_best_threshold_over_all_files():
    f1, f2 = one_file(), DataFile("cat/g.csv", one_file().times, np.zeros(N), ((60, 79),))
    s1, s2 = np.zeros(N), np.zeros(N)
    s1[100], s1[150] = 0.9, 0.95  # a FP scoring above the TP
    s2[60], s2[170] = 0.8, 0.7
    sc = _scorable([f1, f2], {f1.name: s1, f2.name: s2}, STANDARD)
    threshold, total = optimise_threshold(sc, STANDARD)
    assert threshold == pytest.approx(0.8)  # both TPs, one FP; 0.7 would add a second FP
    fp = 0.11 * scaled_sigmoid(31 / 19)  # 31 points after a 20-point window
    assert total == pytest.approx(raw_score(sc, 0.8, STANDARD)) == pytest.approx(2.0 + fp)
    for t in (0.7, 0.9, 0.95, 2.0):
        assert raw_score(sc, t, STANDARD) <= total + 1e-12


def test_null_normalises_to_zero_and_perfect_to_100():
    files = [one_file(), DataFile("other/g.csv", one_file().times, np.zeros(N), ((60, 79), (150, 160)))]
    results = {
        r.detector: r
        for r in evaluate(files, {"standard": STANDARD}, {"null": null_detector, "oracle": oracle_detector})
    }
    assert results["null"].overall == pytest.approx(0.0)
    assert results["oracle"].overall == pytest.approx(100.0)
    assert results["oracle"].by_category == pytest.approx({"cat": 100.0, "other": 100.0})
    assert normalised(-3.0, 3, 3, STANDARD) == 0 and normalised(3.0, 3, 3, STANDARD) == 100


def test_our_detector_learns_through_the_probationary_period():
    f = one_file()
    values = np.sin(np.arange(N) / 3.0)
    values[150] = 5.0
    f = DataFile(f.name, f.times, values, f.windows)
    scores = ours(f)
    assert len(scores) == N and np.all((scores >= 0) & (scores <= 1))
    assert scores[: probation_length(N)].max() == 0 and scores[150] > 0.9
    assert max(PUBLISHED_STANDARD, key=PUBLISHED_STANDARD.get) == "ARTime"


@pytest.fixture(scope="module")
def traffic():
    return [f for f in load(NAB) if f.category == "realTraffic"], load_profiles(NAB)


@pytest.mark.evaldata("nab")
def test_real_category_end_to_end(traffic):
    files, profiles = traffic
    assert files and sum(len(f.windows) for f in files) > 0
    results = evaluate(files, {"standard": profiles["standard"]}, {"null": null_detector, "oracle": oracle_detector})
    by = {r.detector: r for r in results}
    assert by["null"].overall == pytest.approx(0.0)
    assert by["oracle"].overall == pytest.approx(100.0)
