"""aiops.anomaly.run: series naming, windows, the status shape, and an unreachable Prometheus (a real refused port)."""

import math
import time
from datetime import UTC, datetime, timedelta

from aiops.anomaly import Anomaly
from aiops.anomaly import run as anomaly_run
from aiops.api.analysisrun import AnalysisResult
from aiops.api.common import TimeWindow
from aiops.clusters.prometheus import PrometheusSource

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_series_are_named_by_their_labels():
    name = anomaly_run.series_name({"__name__": "up", "job": "api", "instance": "a:9090"}, 0)
    assert name == 'up{instance="a:9090",job="api"}'
    assert anomaly_run.series_name({"pod": "p"}, 2) == '{pod="p"}'
    assert anomaly_run.series_name({}, 2) == "query3"


def test_window_defaults_to_the_last_hour():
    assert anomaly_run.resolve_window(None, NOW) == (NOW - timedelta(hours=1), NOW)
    assert anomaly_run.resolve_window(TimeWindow(lookback_minutes=30), NOW) == (NOW - timedelta(minutes=30), NOW)
    start = NOW - timedelta(hours=5)
    assert anomaly_run.resolve_window(TimeWindow(start=start), NOW) == (start, NOW)


def test_result_validates_against_the_status_schema():
    a = Anomaly("x" * 2000, 1.7e9, 1.7e9 + 60, 1.7e9 + 30, 0.97, "change_point", "s" * 3000, 3, 5.0, math.nan)
    outcome = anomaly_run.AnomalyOutcome(NOW - timedelta(hours=1), NOW, "15s", anomalies=[a] * 80, series=1)
    outcome.queries = [anomaly_run.QueryResult("up", 1), anomaly_run.QueryResult("bad(", 0, "E: " + "e" * 2000)]
    outcome.gaps = ["g"] * 60
    result = outcome.result()
    assert len(result["anomalies"]) == anomaly_run.MAX_ANOMALIES
    assert "expected" not in result["anomalies"][0] and result["anomalies"][0]["value"] == 5.0
    parsed = AnalysisResult.model_validate(result)  # the CRD's bounds hold
    assert parsed.series_analysed == 1 and parsed.anomalies[0].detector == "change_point"
    assert outcome.ran and result["summary"].startswith("80 anomalies in 1 series from 1/2 queries")


def test_unreachable_prometheus_is_a_gap_for_every_query_and_nothing_ran():
    started = time.monotonic()
    outcome = anomaly_run.run_queries(PrometheusSource("http://127.0.0.1:1"), ["up", "down"], NOW - timedelta(1), NOW)
    assert time.monotonic() - started < 5
    assert not outcome.ran and outcome.anomalies == [] and outcome.series == 0
    assert outcome.queries[0].error.startswith("ConnectionError") and outcome.queries[1].error == anomaly_run.SKIPPED
    assert outcome.failure().startswith("no query could run: query 1 (up): ConnectionError")
