"""The surprises every root-cause evidence is expressed in: exact where a closed form exists, and
ordered the way the amount of data says they should be."""

import math
import random

from aiops.diagnosis.rca import stats


def test_events_never_seen_before_are_as_surprising_as_their_count_says():
    # all n events fell in the incident's share t_i / (t_b + t_i) of the time: p = share ** n
    assert math.isclose(stats.rise(0, 5, 28.0, 2.0), 5 * math.log(30 / 2))
    assert stats.fall(0, 5, 28.0, 2.0) == 0.0


def test_a_total_loss_is_surprising_only_with_enough_traffic_before():
    few, many = stats.fall(2, 0, 30.0, 1.5), stats.fall(200, 0, 30.0, 1.5)
    assert math.isclose(many, 200 * -math.log(30 / 31.5)) and few < 0.2 < 3 < many


def test_counts_at_the_same_rate_are_no_surprise():
    assert stats.rise(100, 10, 10.0, 1.0) == 0.0 and stats.fall(100, 10, 10.0, 1.0) == 0.0
    assert stats.rise(0, 0, 10.0, 1.0) == 0.0


def test_binomial_tails_match_a_direct_sum():
    n, p, i = 40, 0.2, 15
    direct = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(i, n + 1))
    assert math.isclose(stats.rise(n - i, i, 4.0, 1.0), -math.log(direct), rel_tol=1e-9)


def test_larger_samples_are_surprising_and_ties_or_smaller_are_not():
    rng = random.Random(3)
    base = [rng.gauss(10, 1) for _ in range(200)]
    assert stats.larger(base, [x + 3 for x in base[:40]]) > 20
    assert stats.larger(base, [x - 3 for x in base[:40]]) == 0.0
    assert stats.larger([1.0] * 50, [1.0] * 50) == 0.0
    assert stats.larger(base, [30.0]) < stats.larger(base, [30.0] * 10), "more evidence, more surprise"


def test_typical_counts_are_the_median_stretch_of_the_baseline():
    split, block = 3000.0, 300.0
    times = [split - 10] * 4 + [split - 310] * 5 + [split - 610] * 60 + [split - 910] * 3 + [split + 5] * 99
    typical = stats.typical_counts((("a", t) for t in times), split, 4, block)
    assert typical["a"] == 4.5  # the stretch with 60 (an earlier incident) and the incident's own are left out
    assert stats.typical_counts([("b", split - 5000)], split, 4, block) == {}
