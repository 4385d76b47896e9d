"""anomalyDetection AnalysisRuns through the real operator and a real Prometheus backfilled with two series:
one with a clear level shift 30 minutes before the end of the window, one that stays level."""

import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from aiops_dev.prometheus import PrometheusServer
from harness import condition, phase, wait_for

NOW = int(time.time()) // 60 * 60
MINUTES = 120
SHIFT_AT = 90  # minutes into the window
START = datetime.fromtimestamp(NOW - MINUTES * 60, UTC)
END = datetime.fromtimestamp(NOW, UTC)
SHIFTED = 'aiops_test_latency_seconds{job="checkout"}'
FLAT = 'aiops_test_latency_seconds{job="payments"}'
DONE = {"until": lambda o: phase(o) in ("Succeeded", "Failed"), "timeout": 90, "what": "a finished run"}


def noise(i: int, seed: int) -> float:
    return 0.01 * math.sin(i * 1.7 + seed) + 0.006 * math.sin(i * 0.37 * seed + 1)


def openmetrics() -> str:
    name = "aiops_test_latency_seconds"
    lines = [f"# HELP {name} test series", f"# TYPE {name} gauge"]
    for minute in range(MINUTES):
        t = NOW - MINUTES * 60 + minute * 60
        shifted = 0.10 + noise(minute, 1) + (0.40 if minute >= SHIFT_AT else 0)
        lines.append(f'{name}{{job="checkout"}} {shifted:.6f} {t}')
        lines.append(f'{name}{{job="payments"}} {0.10 + noise(minute, 2):.6f} {t}')
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus-anomaly"))
    server.backfill(openmetrics())
    server.start()
    yield server
    server.stop()


def anomaly_run(name: str, queries: list[str], **inputs) -> dict:
    window = {"start": START.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": END.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {
        "apiVersion": "aiops.dev/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"type": "anomalyDetection", "inputs": {"queries": queries, "window": window, **inputs}},
    }


def reasons(kubectl, namespace, name, *expected: str) -> dict[str, str]:
    """The run's Event reasons and types, once every `expected` reason is there: the Events are posted after
    the status write the test waited for, so they may lag it."""

    def found() -> dict[str, str] | None:
        events = {e["reason"]: e["type"] for e in kubectl.events(namespace, name)}
        return events if all(r in events for r in expected) else None

    return wait_for(found, timeout=15, what=f"{name}'s Events {', '.join(expected)}")


def anomaly_incidents(kubectl, namespace, run: str) -> list[dict]:
    return kubectl.json("get", "incidents", "-n", namespace, "-l", f"aiops.dev/analysis-run={run}")["items"]


def test_level_shift_is_found_on_the_shifted_series_only(kubectl, operator_env, namespace, prom):
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url})
    kubectl.apply(anomaly_run("latency", [SHIFTED, FLAT]), namespace)
    run = kubectl.wait("analysisrun", "latency", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Succeeded", status
    result = status["result"]
    assert result["seriesAnalysed"] == 2
    assert [q["series"] for q in result["queries"]] == [1, 1] and "gaps" not in result
    anomalies = result["anomalies"]
    assert anomalies, result
    assert {a["series"] for a in anomalies} == {'aiops_test_latency_seconds{job="checkout"}'}, anomalies
    top = anomalies[0]
    assert top["score"] >= 0.9 and top["value"] > 0.45 and top["expected"] < 0.15, top
    shift = START + timedelta(minutes=SHIFT_AT)
    peak = datetime.fromisoformat(top["peak"].replace("Z", "+00:00"))
    assert shift - timedelta(minutes=2) <= peak <= shift + timedelta(minutes=10), (top, shift)
    assert [a["score"] for a in anomalies] == sorted((a["score"] for a in anomalies), reverse=True)
    assert status["attempts"] == 1 and status["durationSeconds"] >= 0 and "incidentRef" not in result
    assert condition(run, "AnomaliesFound")["status"] == "True"
    assert condition(run, "Ready")["reason"] == "Accepted"
    events = reasons(kubectl, namespace, "latency", "AnomaliesFound", "Succeeded")
    assert events.get("AnomaliesFound") == "Normal" and events.get("Succeeded") == "Normal", events
    assert anomaly_incidents(kubectl, namespace, "latency") == []

    # The level series alone: nothing stands out.
    kubectl.apply(anomaly_run("level", [FLAT]), namespace)
    run = kubectl.wait("analysisrun", "level", namespace, **DONE)
    assert phase(run) == "Succeeded" and "anomalies" not in run["status"]["result"], run["status"]
    assert condition(run, "AnomaliesFound")["reason"] == "NoAnomalies"
    assert reasons(kubectl, namespace, "level", "NoAnomalies").get("NoAnomalies") == "Normal"


def test_incident_is_opened_once(kubectl, operator_env, namespace, prom):
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url})
    target = {"kind": "Deployment", "name": "checkout"}
    kubectl.apply(anomaly_run("shift", [SHIFTED], incident={"severity": "high", "target": target}), namespace)
    run = kubectl.wait("analysisrun", "shift", namespace, **DONE)
    assert phase(run) == "Succeeded", run["status"]
    assert run["status"]["result"]["incidentRef"] == {"name": "shift-anomaly"}
    (incident,) = anomaly_incidents(kubectl, namespace, "shift")
    spec = incident["spec"]
    assert incident["metadata"]["name"] == "shift-anomaly"
    assert spec["source"] == "anomaly" and spec["severity"] == "high" and spec["target"] == target
    assert spec["title"].startswith('Anomaly in aiops_test_latency_seconds{job="checkout"}')
    assert "found 1 anomal" in spec["description"] or "anomalies" in spec["description"]
    (owner,) = incident["metadata"]["ownerReferences"]
    assert owner["kind"] == "AnalysisRun" and owner["uid"] == run["metadata"]["uid"]
    assert reasons(kubectl, namespace, "shift", "IncidentOpened").get("IncidentOpened") == "Normal"

    # The operator stops mid-run (the run is found Running again): the run is redone, the Incident is not.
    kubectl(
        "patch", "analysisrun", "shift", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", '{"status": {"phase": "Running"}}',
    )  # fmt: skip
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url})
    run = kubectl.wait("analysisrun", "shift", namespace, **DONE)
    assert phase(run) == "Succeeded" and run["status"]["attempts"] == 2, run["status"]
    assert [i["metadata"]["uid"] for i in anomaly_incidents(kubectl, namespace, "shift")] == [
        incident["metadata"]["uid"]
    ]
    assert run["status"]["result"]["incidentRef"] == {"name": "shift-anomaly"}


def test_broken_query_is_a_gap_and_the_others_run(kubectl, operator_env, namespace, prom):
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url})
    kubectl.apply(anomaly_run("gap", ["sum(rate(x[5m])", SHIFTED]), namespace)
    run = kubectl.wait("analysisrun", "gap", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Succeeded", status
    broken, good = status["result"]["queries"]
    assert broken["series"] == 0 and "error" in broken and "parse error" in broken["error"], broken
    assert good == {"query": SHIFTED, "series": 1}
    (gap,) = status["result"]["gaps"]
    assert gap.startswith("query 1 (sum(rate(x[5m])):"), gap
    assert status["result"]["anomalies"][0]["series"].startswith("aiops_test_latency_seconds")
    assert "error" not in status


def test_prometheus_down_fails_the_run_clearly(kubectl, operator_env, namespace):
    operator_env({"AIOPS_PROMETHEUS_URL": "http://127.0.0.1:1"})
    kubectl.apply(anomaly_run("down", [SHIFTED, FLAT]), namespace)
    run = kubectl.wait("analysisrun", "down", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Failed", status
    assert status["error"].startswith("no query could run: query 1 ("), status["error"]
    assert "ConnectionError" in status["error"]
    assert [q.get("error", "")[:15] for q in status["result"]["queries"]] == ["ConnectionError", "not run: Promet"]
    events = reasons(kubectl, namespace, "down", "Failed")
    assert events.get("Failed") == "Warning", events
