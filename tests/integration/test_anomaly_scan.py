"""The periodic anomaly scan of a ManagedCluster through the real operator, a real Prometheus backfilled
with three series of one namespace (two shift level 30 minutes before now, one stays level) and a real
Alertmanager with an alert firing on one of the shifted workloads."""

import math
import shutil
import time
from datetime import datetime

import pytest

from aiops_dev.prometheus import PrometheusServer
from harness import managed_cluster, wait_for
from support.servers import ALERTMANAGER, AlertmanagerServer

pytestmark = pytest.mark.skipif(
    not ALERTMANAGER or not shutil.which("prometheus"), reason="needs prometheus and prometheus-alertmanager"
)

NOW = int(time.time()) // 60 * 60
MINUTES = 120
SHIFT_AT = 90  # minutes into the history
METRIC = "aiops_scan_latency_seconds"


def openmetrics(namespace: str) -> str:
    lines = [f"# HELP {METRIC} test series", f"# TYPE {METRIC} gauge"]
    for minute in range(MINUTES + 1):
        t = NOW - MINUTES * 60 + minute * 60
        for seed, deployment in enumerate(("checkout", "cart", "payments"), 1):
            value = 0.10 + 0.01 * math.sin(minute * 1.7 + seed) + 0.006 * math.sin(minute * 0.37 * seed + 1)
            if deployment != "payments" and minute >= SHIFT_AT:
                value += 0.40
            lines.append(f'{METRIC}{{namespace="{namespace}",deployment="{deployment}"}} {value:.6f} {t}')
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture
def prom(tmp_path, namespace):
    (tmp_path / "prometheus").mkdir()
    server = PrometheusServer(tmp_path / "prometheus")
    server.backfill(openmetrics(namespace))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(tmp_path):
    (tmp_path / "am").mkdir()
    server = AlertmanagerServer(tmp_path / "am", {"route": {"receiver": "none"}, "receivers": [{"name": "none"}]})
    server.start()
    yield server
    server.stop()


def scan_state(obj: dict) -> dict:
    return (obj.get("status") or {}).get("anomalyScan") or {}


def scanned_after(when: str | None):
    def check(obj: dict) -> bool:
        queries = scan_state(obj).get("queries") or []
        return bool(queries) and queries[0].get("lastScanTime") is not None and queries[0]["lastScanTime"] != when

    return check


def test_scan_opens_one_incident_per_new_anomaly_and_not_again_after_a_restart(
    kubectl, operator_env, namespace, prom, alertmanager
):
    alertmanager.fire({"alertname": "CartSlow", "namespace": namespace, "deployment": "cart", "severity": "warning"})
    operator_env({"AIOPS_ANOMALY_SCAN_TICK_S": "2"})
    name = f"scan-{namespace}"
    query = f'{METRIC}{{namespace="{namespace}"}}'
    scan = {
        "queries": [{"name": "latency", "query": query}],
        "intervalSeconds": 30,
        "lookbackMinutes": MINUTES,
        "incidentNamespace": namespace,
    }
    endpoints = {"prometheus": {"url": prom.url}, "alertmanager": {"url": alertmanager.url}}
    kubectl.apply(managed_cluster(name, endpoints=endpoints, anomalyScan=scan))
    try:
        mc = kubectl.wait("managedcluster", name, until=scanned_after(None), timeout=60, what="a first scan")
        state = scan_state(mc)
        (q,) = state["queries"]
        assert q["series"] == 3 and q.get("error") is None and q["anomalies"] >= 2, state
        assert state["incidentsOpened"] == 1 and state["deduplicated"] == 1, state
        (skipped,) = state["lastSkipped"]
        assert f"Deployment/{namespace}/cart" in skipped and "alert CartSlow is firing" in skipped, skipped

        items = kubectl.json("get", "incidents", "-n", namespace, "-l", f"aiops.dev/cluster={name}")["items"]
        (incident,) = items
        spec = incident["spec"]
        assert spec["source"] == "anomaly" and spec["clusterRef"] == {"name": name}
        assert spec["target"] == {"kind": "Deployment", "name": "checkout", "namespace": namespace}
        assert 'deployment="checkout"' in spec["title"] and "query latency" in spec["description"]
        assert state["lastIncident"] == f"{namespace}/{incident['metadata']['name']}"
        events = kubectl.json("get", "events", "-A", "--field-selector", f"involvedObject.name={name}")["items"]
        assert any(e["reason"] == "IncidentOpened" and incident["metadata"]["name"] in e["message"] for e in events)

        # Resolved, then the operator restarts: the next scan sees the same shift and does not alert again.
        kubectl(
            "patch", "incident", incident["metadata"]["name"], "-n", namespace, "--subresource=status",
            "--type=merge", "-p", '{"status": {"phase": "Resolved"}}',
        )  # fmt: skip
        operator_env({"AIOPS_ANOMALY_SCAN_TICK_S": "2"})
        mc = kubectl.wait("managedcluster", name, until=scanned_after(q["lastScanTime"]), timeout=60, what="a rescan")
        again = scan_state(mc)
        assert again["queries"][0]["anomalies"] >= 2 and again["incidentsOpened"] == 1, again
        items = kubectl.json("get", "incidents", "-n", namespace, "-l", f"aiops.dev/cluster={name}")["items"]
        assert [i["metadata"]["uid"] for i in items] == [incident["metadata"]["uid"]]
        assert datetime.fromisoformat(
            again["queries"][0]["scannedUntil"].replace("Z", "+00:00")
        ) > datetime.fromisoformat(q["scannedUntil"].replace("Z", "+00:00"))
    finally:
        kubectl("delete", "managedcluster", name, "--wait=false", check=False)


def test_a_broken_query_is_reported_on_the_cluster(kubectl, operator_env, namespace, prom):
    operator_env({"AIOPS_ANOMALY_SCAN_TICK_S": "2"})
    name = f"scan-bad-{namespace}"
    scan = {"queries": [{"name": "broken", "query": "sum(rate(x[5m])"}], "intervalSeconds": 30}
    kubectl.apply(managed_cluster(name, endpoints={"prometheus": {"url": prom.url}}, anomalyScan=scan))
    try:
        mc = kubectl.wait("managedcluster", name, until=scanned_after(None), timeout=60, what="a first scan")
        (q,) = scan_state(mc)["queries"]
        assert "parse error" in q["error"] and "scannedUntil" not in q, q

        def warned():
            events = kubectl.json("get", "events", "-A", "--field-selector", f"involvedObject.name={name}")["items"]
            return [e for e in events if e["reason"] == "AnomalyScanFailed" and e["type"] == "Warning"]

        (event,) = wait_for(warned, 20, "an AnomalyScanFailed Event")
        assert event["message"].startswith("query broken: no query could run")
    finally:
        kubectl("delete", "managedcluster", name, "--wait=false", check=False)
