"""Capacity forecasts through the real operator and a real Prometheus backfilled with three hours of one
Deployment's pods: memory growing 1 MiB a minute towards its 512 MiB limit, CPU flat at a fifth of a core
under a one-core limit. A capacityForecast run reports when memory reaches the limit (and CPU reaches none),
and the periodic forecast of a ManagedCluster opens one warning Incident for it, not a second one after the
operator restarts."""

import math
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest

from aiops_dev.prometheus import PrometheusServer
from harness import condition, managed_cluster, phase

pytestmark = pytest.mark.skipif(not shutil.which("prometheus"), reason="needs prometheus and promtool")

MINUTES = 180
MIB = 1024 * 1024
PODS = ("api-7d9f8b6c5-abcde", "api-7d9f8b6c5-fghij")
START_MIB, GROWTH_MIB, LIMIT_MIB = 100.0, 0.5, 256  # per pod: together +1 MiB a minute towards 512 MiB
# together: 200 MiB at the start, 380 at the end, the 512 MiB limit 132 minutes after it
DONE = {"until": lambda o: phase(o) in ("Succeeded", "Failed"), "timeout": 60, "what": "a finished run"}


def openmetrics(namespace: str, now: int) -> str:
    memory, cpu = "container_memory_working_set_bytes", "container_cpu_usage_seconds"  # a counter: samples _total
    limits, requests = "kube_pod_container_resource_limits", "kube_pod_container_resource_requests"
    lines = [f"# TYPE {memory} gauge", f"# TYPE {cpu} counter", f"# TYPE {limits} gauge", f"# TYPE {requests} gauge"]
    for minute in range(MINUTES + 1):
        t = now - MINUTES * 60 + minute * 60
        for seed, pod in enumerate(PODS):
            where = f'namespace="{namespace}",pod="{pod}",container="api"'
            used = (START_MIB + GROWTH_MIB * minute + 0.4 * math.sin(minute * 1.3 + seed)) * MIB
            lines.append(f"{memory}{{{where}}} {used:.0f} {t}")
            lines.append(f"{cpu}_total{{{where}}} {0.1 * 60 * minute:.3f} {t}")
            lines.append(f'{limits}{{{where},resource="memory"}} {LIMIT_MIB * MIB} {t}')
            lines.append(f'{limits}{{{where},resource="cpu"}} 0.5 {t}')
            lines.append(f'{requests}{{{where},resource="memory"}} {128 * MIB} {t}')
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture
def now() -> int:
    """When the backfilled history ends: taken as the test starts, not at import (the whole suite runs in
    between, and a history that stopped minutes ago reads as flat, then missing)."""
    return int(time.time()) // 60 * 60


@pytest.fixture
def prom(tmp_path, namespace, now):
    server = PrometheusServer(tmp_path)
    server.backfill(openmetrics(namespace, now))
    server.start()
    yield server
    server.stop()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_forecast_run_and_the_periodic_forecast_warn_once_before_memory_runs_out(
    kubectl, operator_env, namespace, prom, now
):
    operator_env({"AIOPS_PROMETHEUS_URL": prom.url, "AIOPS_CAPACITY_FORECAST_TICK_S": "2"})
    spec = {
        "type": "capacityForecast",
        "inputs": {
            "forecast": {
                "target": {"kind": "Deployment", "name": "api"},
                "resources": ["memory", "cpu"],
                "horizonHours": 6,
                "historyDays": 0.125,
            }
        },
    }
    run_body = {"apiVersion": "aiops.dev/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "cap"}, "spec": spec}
    kubectl.apply(run_body, namespace)
    run = kubectl.wait("analysisrun", "cap", namespace, **DONE)
    status = run["status"]
    assert phase(run) == "Succeeded", status
    memory, cpu = status["result"]["forecasts"]
    assert memory["resource"] == "memory" and memory["object"] == f"Deployment/{namespace}/api", memory
    assert memory["points"] >= 170 and "holt-winters" in memory["method"] and memory["unit"] == "bytes"
    assert memory["current"] == pytest.approx(380 * MIB, rel=0.01)
    h = memory["atHorizon"]
    assert h["lower"] <= h["mean"] <= h["upper"] and h["mean"] == pytest.approx(740 * MIB, rel=0.05), h
    crossings = {c["kind"]: c for c in memory["limits"]}
    assert set(crossings) == {"limits", "requests"}, crossings  # no quota nor node figures were recorded
    expected = datetime.fromtimestamp(now, UTC) + timedelta(minutes=132)
    assert abs(at(crossings["limits"]["exhaustedAt"]) - expected) <= timedelta(minutes=15), crossings
    assert at(crossings["limits"]["earliestAt"]) <= at(crossings["limits"]["exhaustedAt"])
    assert at(crossings["requests"]["exhaustedAt"]) == at(crossings["requests"]["earliestAt"])  # already over: now
    assert memory["exhaustedAt"] == crossings["requests"]["exhaustedAt"]
    # 0.2 cores; rate() over the last 5 minutes of the backfill sees fewer samples, hence the lower bound
    assert 0.15 <= cpu["current"] <= 0.21 and "exhaustedAt" not in cpu, cpu
    assert [c["kind"] for c in cpu["limits"]] == ["limits"] and "exhaustedAt" not in cpu["limits"][0], cpu
    assert condition(run, "ExhaustionForecast")["reason"] == "ExhaustionForecast"
    assert "memory: " in condition(run, "ExhaustionForecast")["message"]

    # Bad input: the run fails for its spec, naming the field.
    bad = {**run_body, "metadata": {"name": "cap-bad"}}
    bad["spec"] = {**spec, "inputs": {"forecast": {**spec["inputs"]["forecast"], "horizonHours": 0}}}
    kubectl.apply(bad, namespace)
    failed = kubectl.wait("analysisrun", "cap-bad", namespace, until=lambda o: phase(o) == "Failed", timeout=30,
                          what="a refused spec")  # fmt: skip
    ready = condition(failed, "Ready")
    assert (
        ready["reason"] == "InvalidSpec"
        and "spec.inputs.forecast.horizonHours: Input should be greater than or equal to 0.25" in ready["message"]
    )

    # The periodic forecast of the cluster: one warning Incident for the namespace's memory.
    name = f"cap-{namespace}"
    config = {
        "resources": ["memory"],
        "namespaces": [namespace],
        "horizonHours": 6,
        "warnHours": 4,
        "historyDays": 0.125,
        "intervalSeconds": 3600,
        "incidentNamespace": namespace,
    }
    kubectl.apply(managed_cluster(name, endpoints={"prometheus": {"url": prom.url}}, capacityForecast=config))
    try:

        def forecast_state(obj):
            return (obj.get("status") or {}).get("capacityForecast") or {}

        mc = kubectl.wait("managedcluster", name, until=lambda o: forecast_state(o).get("incidentsOpened"),
                          timeout=40, what="a first forecast")  # fmt: skip
        state = forecast_state(mc)
        assert state["objects"] == 1 and not state.get("errors"), state
        (risk,) = state["atRisk"]
        assert risk.startswith(f"memory of Namespace/{namespace} reaches "), risk
        items = kubectl.json("get", "incidents", "-n", namespace, "-l", f"aiops.dev/cluster={name}")["items"]
        (incident,) = items
        assert incident["spec"]["source"] == "forecast" and incident["spec"]["severity"] == "warning"
        assert incident["spec"]["target"] == {"kind": "Namespace", "name": namespace, "namespace": namespace}
        assert state["lastIncident"] == f"{namespace}/{incident['metadata']['name']}"

        # A restart, and the next forecast made at once: the open Incident is not opened again.
        operator_env({"AIOPS_PROMETHEUS_URL": prom.url, "AIOPS_CAPACITY_FORECAST_TICK_S": "2"})
        kubectl(
            "patch", "managedcluster", name, "--subresource=status", "--type=merge",
            "-p", '{"status": {"capacityForecast": {"lastRunTime": null}}}',
        )  # fmt: skip
        again = kubectl.wait("managedcluster", name, until=lambda o: forecast_state(o).get("lastRunTime"),
                             timeout=40, what="a second forecast")  # fmt: skip
        assert forecast_state(again)["incidentsOpened"] == 1 and forecast_state(again)["atRisk"], forecast_state(again)
        items = kubectl.json("get", "incidents", "-n", namespace, "-l", f"aiops.dev/cluster={name}")["items"]
        assert [i["metadata"]["uid"] for i in items] == [incident["metadata"]["uid"]]
    finally:
        kubectl("delete", "managedcluster", name, "--wait=false", check=False)
