"""Metric evidence from a real Prometheus loaded with backfilled series."""

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiops.clusters.prometheus import MAX_POINTS, PrometheusSource
from aiops.diagnosis.collectors import prometheus
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops_dev.prometheus import PrometheusServer

NOW = int(time.time()) // 60 * 60
POD = "checkout-7d9f5c7b8-x2kqz"


def openmetrics() -> str:
    sel = f'namespace="shop",pod="{POD}",container="app"'
    lines = []
    for name, kind in (
        ("container_memory_working_set_bytes", "gauge"),
        ("kube_pod_container_resource_limits", "gauge"),
        ("kube_pod_container_status_restarts_total", "gauge"),
    ):
        lines += [f"# HELP {name} test series", f"# TYPE {name} {kind}"]
        for minute in range(60):
            t = NOW - 3600 + minute * 60
            if name == "container_memory_working_set_bytes":
                value = 100e6 + minute * 2.5e6  # climbing towards the limit
            elif name == "kube_pod_container_resource_limits":
                value = 256e6
            else:
                value = max(0, minute - 40) // 5  # restarts begin 20 minutes ago
            extra = ',resource="memory"' if name == "kube_pod_container_resource_limits" else ""
            lines.append(f"{name}{{{sel}{extra}}} {value} {t}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"))
    server.backfill(openmetrics())
    server.start()
    yield server
    server.stop()


def bundle() -> EvidenceBundle:
    end = datetime.fromtimestamp(NOW, UTC)
    b = EvidenceBundle(Target("Deployment", "checkout", "shop"), end - timedelta(hours=1), end)
    b.pods = [{"metadata": {"name": POD, "namespace": "shop"}}]
    return b


def test_templates_read_the_targets_series(prom):
    b = prometheus.collect(PrometheusSource(prom.url), bundle())
    ratio = b.metrics["memory_working_set_ratio"][f"pod={POD}"]
    assert 0.38 < ratio[0][1] < 0.42 and ratio[-1][1] > 0.9, ratio[-1]
    restarts = b.metrics["restarts"][f"pod={POD}"]
    assert restarts[0][1] == 0 and restarts[-1][1] == 3
    assert len(ratio) <= MAX_POINTS + 1
    # No HTTP series and no throttling series exist: recorded as absent, not as failures.
    assert "error_rate" not in b.metrics and b.missing == []


def test_prometheus_down_is_missing_evidence_not_a_crash():
    start = time.monotonic()
    b = prometheus.collect(PrometheusSource("http://127.0.0.1:1"), bundle())
    assert time.monotonic() - start < 5
    assert b.metrics == {}
    assert len(b.missing) == 1 and b.missing[0].startswith("prometheus/restarts: ConnectionError")


def test_bad_query_is_recorded_and_others_go_on(prom):
    templates = {"broken": "sum(rate(x[5m])", "restarts": prometheus.TEMPLATES["restarts"]}
    b = prometheus.collect(PrometheusSource(prom.url), bundle(), templates)
    assert b.missing and b.missing[0].startswith("prometheus/broken:")
    assert "restarts" in b.metrics


def test_example_recording_rules_are_valid_and_feed_the_neighbourhood_templates():
    rules = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "aiops-rules.yaml"
    check = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    recorded = re.findall(r"record: (\S+)", rules.read_text())
    read = re.findall(r"\((pod:[a-z_:0-9]+)\{", " ".join(prometheus.NEIGHBOURHOOD.values()))
    assert sorted(recorded) == sorted(read) == ["pod:request_duration_seconds:p99", "pod:request_errors:ratio"]
