"""GPU telemetry in the fleet: the agents' aiops_gpu_* series in a real Prometheus (promtool backfill) are
summarised into the ManagedCluster's status.gpuTelemetry; rising Xid errors give a Warning Event; with
Prometheus gone the last summary stays and PrometheusReachable says why."""

from __future__ import annotations

import time

import pytest

from aiops_dev.prometheus import PrometheusServer
from harness import condition

PROBE = {"AIOPS_CLUSTER_PROBE_INTERVAL_S": "2"}
H100 = "NVIDIA H100 80GB HBM3"
GAUGES = (
    "aiops_gpu_memory_used_bytes",
    "aiops_gpu_memory_total_bytes",
    "aiops_gpu_utilization_percent",
    "aiops_gpu_temperature_celsius",
    "aiops_gpu_power_watts",
    "aiops_gpu_xid_errors_total",
    "aiops_gpu_ecc_errors_total",
)


def openmetrics(now: int) -> str:
    """Two GPUs on two nodes over the last 30 minutes; the second's Xid count rises to 3."""
    gpus = {
        "gpu-node-a": {"uuid": "GPU-aaaa", "util": 90, "temp": 70, "xid": lambda m: 0},
        "gpu-node-b": {"uuid": "GPU-bbbb", "util": 30, "temp": 84, "xid": lambda m: max(0, m - 26)},
    }
    lines = []
    for metric in GAUGES:
        lines += [f"# HELP {metric} test series", f"# TYPE {metric} gauge"]
        for node, g in gpus.items():
            labels = f'gpu="0",uuid="{g["uuid"]}",name="{H100}",instance="{node}:9400",node="{node}"'
            if metric == "aiops_gpu_ecc_errors_total":
                labels += ',type="uncorrected"'
            for m in range(30):
                value = {
                    "aiops_gpu_memory_used_bytes": 40e9,
                    "aiops_gpu_memory_total_bytes": 80e9,
                    "aiops_gpu_utilization_percent": g["util"],
                    "aiops_gpu_temperature_celsius": g["temp"],
                    "aiops_gpu_power_watts": 300,
                    "aiops_gpu_xid_errors_total": g["xid"](m),
                    "aiops_gpu_ecc_errors_total": 0,
                }[metric]
                lines.append(f"{metric}{{{labels}}} {value} {now - (29 - m) * 60}")
    return "\n".join(lines) + "\n# EOF\n"


def cluster_events(kubectl, name: str) -> list[dict]:
    return kubectl.json("get", "events", "-A", "--field-selector", f"involvedObject.name={name}")["items"]


@pytest.mark.timeout(240)
def test_gpu_metrics_summarised_into_cluster_status(kubectl, operator_env, namespace, tmp_path):
    prom = PrometheusServer(tmp_path)
    prom.backfill(openmetrics(int(time.time()) - 5))
    prom.start()
    name = f"{namespace}-gpu"
    try:
        operator_env(PROBE)
        kubectl.apply(
            {
                "apiVersion": "aiops.dev/v1alpha1",
                "kind": "ManagedCluster",
                "metadata": {"name": name},
                "spec": {"endpoints": {"prometheus": {"url": prom.url}}},
            }
        )
        mc = kubectl.wait(
            "managedcluster", name, timeout=60, what="gpuTelemetry",
            until=lambda o: (o.get("status") or {}).get("gpuTelemetry"),
        )  # fmt: skip
        t = mc["status"]["gpuTelemetry"]
        assert t["gpus"] == 2 and t["memoryUsedBytes"] == 80e9 and t["memoryTotalBytes"] == 160e9, t
        assert t["meanUtilizationPercent"] == 60 and t["maxTemperatureCelsius"] == 84 and t["powerWatts"] == 600
        assert t["xidErrors"] == 3 and t["eccUncorrected"] == 0 and t["observedAt"]
        assert t["worst"][0] == {
            "node": "gpu-node-b", "name": H100, "xidErrors": 3, "eccUncorrected": 0, "temperatureCelsius": 84,
        }, t  # fmt: skip
        assert condition(mc, "PrometheusReachable")["status"] == "True"

        def xid_warnings() -> list[dict]:
            return [e for e in cluster_events(kubectl, name) if (e["type"], e["reason"]) == ("Warning", "GPUXidErrors")]

        deadline = time.monotonic() + 30
        while not (xid := xid_warnings()):
            assert time.monotonic() < deadline, cluster_events(kubectl, name)
            time.sleep(1)
        assert "Xid errors rose from 0 to 3 on gpu-node-b" in xid[0]["message"], xid

        # Prometheus gone: the last summary stays, PrometheusReachable=False tells why.
        prom.stop()
        mc = kubectl.wait(
            "managedcluster", name, timeout=40, what="PrometheusReachable=False",
            until=lambda o: (condition(o, "PrometheusReachable") or {}).get("status") == "False",
        )  # fmt: skip
        kept = dict(mc["status"]["gpuTelemetry"])
        assert kept.pop("observedAt") and kept == {k: v for k, v in t.items() if k != "observedAt"}, kept
    finally:
        prom.stop()
        kubectl("delete", "managedcluster", name, "--wait=false", check=False)
