"""aiops.forecast on synthetic series whose answer is known: a daily season with noise (the forecast beats
seasonal naive, the 80% interval covers about 80%), a linear trend (exhaustion when the line says), and
series too short to forecast."""

import numpy as np
import pytest

from aiops.forecast import TooShort, exhaustion, forecast, seasonal_naive
from aiops.forecast.series import regular

DAY = 86400
STEP = 600  # 10 minutes: 144 points a day


def seasonal(days: float, seed: int, noise: float = 0.6):
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * DAY, STEP, dtype=float) + 1.7e9
    phase = 2 * np.pi * (t % DAY) / DAY
    y = 10 + 4 * np.sin(phase) + 1.5 * np.cos(2 * phase) + rng.normal(0, noise, len(t))
    return t, y


def test_daily_season_beats_seasonal_naive_and_the_interval_covers_about_80_percent():
    wins, covered, outcomes = 0, 0, 0
    for seed in range(8):
        t, y = seasonal(9, seed)
        cut = len(y) - DAY // STEP
        f = forecast(t[:cut], y[:cut], DAY)
        assert f.season == "daily" and f.points == cut, f.method
        actual = y[cut:]
        ours = np.mean(np.abs(actual - f.mean[: len(actual)]))
        naive = np.mean(np.abs(actual - seasonal_naive(y[:cut], DAY // STEP, len(actual))))
        wins += ours < naive
        covered += int(np.sum((actual >= f.lower[: len(actual)]) & (actual <= f.upper[: len(actual)])))
        outcomes += len(actual)
    assert wins == 8
    assert 0.72 <= covered / outcomes <= 0.9, covered / outcomes


def test_a_weekend_pattern_over_three_weeks_gets_the_weekly_season():
    t, y = seasonal(21, 4)
    weekend = ((t // DAY) % 7) >= 5
    f = forecast(t, y + 5 * weekend, 7 * DAY)
    assert f.season == "weekly", f.method
    daily_only = forecast(t, y, 7 * DAY)
    assert daily_only.season == "daily", daily_only.method


def test_less_than_two_days_has_no_season():
    t, y = seasonal(1.5, 1)
    f = forecast(t, y, 3600)
    assert f.season is None and "no season" in f.method
    assert len(f.mean) == 3600 // STEP and np.all(f.lower <= f.mean) and np.all(f.mean <= f.upper)


def test_linear_growth_reaches_its_limit_when_the_line_does():
    rng = np.random.default_rng(3)
    t = np.arange(0, 6 * 3600, 60, dtype=float)
    y = 100 + 0.5 * (t / 60) + rng.normal(0, 0.3, len(t))  # +0.5 a minute
    f = forecast(t, y, 12 * 3600)
    limit = 100 + 0.5 * (t[-1] / 60) + 0.5 * 120  # the line reaches it 120 minutes after the last sample
    e = exhaustion(f, limit)
    assert e.expected_s == pytest.approx(7200, abs=600), e
    assert e.earliest_s is not None and e.earliest_s <= e.expected_s
    assert e.within(3 * 3600) and not e.within(60)
    assert exhaustion(f, 1e9).expected_s is None
    assert exhaustion(f, float(y[-1]) - 1).expected_s == 0.0  # already over: exhausted now


@pytest.mark.parametrize("n", [0, 1, 5, 23])
def test_too_short_says_how_many_points_it_has_and_needs(n):
    result = forecast(np.arange(n) * 60.0, np.ones(n), 3600)
    assert isinstance(result, TooShort)
    assert result.message == f"too short: {n} points, need 24"


def test_gaps_and_repeats_land_on_a_regular_grid():
    t = np.array([0, 60, 60, 120, 300, 360], dtype=float)
    v = np.array([1, 2, 9, 3, 6, 7], dtype=float)
    g = regular(t, v)
    assert g.step == 60 and list(g.values) == [1, 2, 3, 4, 5, 6, 7]
    assert regular([0, 60, np.nan], [1, 2, 3]).values.tolist() == [1, 2]
