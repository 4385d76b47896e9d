"""The forecast backtest: its arithmetic on a series whose answer is known, and on a few real NAB series."""

from pathlib import Path

import numpy as np
import pytest

from aiops.forecast import Forecast
from aiops_dev.eval.forecast import Score, Series, backtest, load, summary, table

EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "eval"


def test_a_perfect_method_scores_zero_and_covers_everything():
    t = np.arange(0, 3000 * 60, 60, dtype=float)
    y = np.sin(t / 3000) * 5 + t / 6000  # known ahead of time by the oracle below

    def oracle(times, values, horizon_s):
        future = times[-1] + 60 * np.arange(1, int(horizon_s // 60) + 1)
        truth = np.sin(future / 3000) * 5 + future / 6000
        return Forecast("oracle", None, len(times), times[0], times[-1], 60, values[-1], truth, truth, truth, 0.8)

    score = backtest(Series("test", "sine", t, y), oracle)
    assert isinstance(score, Score) and score.horizon == 300 and score.outcomes == 5 * 300
    assert score.mase == pytest.approx(0, abs=1e-9) and score.baseline > 0 and score.coverage == 1.0


def test_a_constant_history_has_no_mase():
    t = np.arange(0, 500 * 60, 60, dtype=float)
    assert backtest(Series("test", "flat", t, np.ones(len(t)))) == "history before origin 1 is constant: no MASE"


@pytest.mark.evaldata("nab")
def test_backtest_on_four_aws_series_beats_seasonal_naive_on_most_with_calibrated_intervals():
    series = [s for s in load(EVAL) if s.source == "nab/realAWSCloudwatch"][:4]
    scores = [backtest(s) for s in series]
    assert all(isinstance(s, Score) for s in scores), scores
    assert all(s.horizon == 288 and s.outcomes == 5 * 288 for s in scores)  # a day of 5-minute points, 5 origins
    t = summary(scores)
    assert t["beaten"] >= 3, table(scores, [])
    assert 0.7 <= t["coverage"] <= 0.9, table(scores, [])
    assert "beats seasonal naive on >= 80% of series" in table(scores, [])
