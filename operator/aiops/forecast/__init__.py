"""Capacity forecasting: a metric's history -> a seasonal forecast with a prediction interval, and when it
reaches a limit.

    from aiops.forecast import forecast, exhaustion
    f = forecast(times, values, horizon_s=7 * 86400)   # Forecast, or TooShort ("too short: N points, need M")
    exhaustion(f, limit=2.0).expected_s                 # seconds until the mean reaches the limit, or None

`series` puts samples on a regular grid, `ets` fits additive Holt-Winters, `intervals` gives empirical
prediction intervals, `model` picks the season, `exhaustion` finds the crossings. Why hand-written rather than
statsforecast: docs/forecast.md (the backtest figures).
"""

from aiops.forecast.exhaustion import Exhaustion, exhaustion
from aiops.forecast.model import Forecast, TooShort, forecast, seasonal_naive

__all__ = ["Exhaustion", "Forecast", "TooShort", "exhaustion", "forecast", "seasonal_naive"]
