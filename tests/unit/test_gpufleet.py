"""The GPU telemetry summary of a cluster, from instant-query samples of the agents' aiops_gpu_* metrics."""

from datetime import UTC, datetime
from types import SimpleNamespace

from aiops.api import MANAGED_CLUSTER
from aiops.api.managedcluster import GPUTelemetry
from aiops.clusters import gpufleet
from aiops.core.status import StatusBuilder

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
H100 = "NVIDIA H100 80GB HBM3"


def sample(name: str, value: float, host: str, gpu: str, **extra: str) -> dict:
    labels = {"__name__": name, "gpu": gpu, "uuid": f"GPU-{host}-{gpu}", "name": H100, "instance": f"{host}:9400"}
    return {"metric": labels | extra, "value": [1.0, str(value)]}


def two_gpus(xid: float = 3) -> list[dict]:
    out = [{"metric": {"__name__": "aiops_gpu_nvml_available", "reason": "", "instance": "a:9400"}, "value": [1, "1"]}]
    for node, util, temp, xids, ecc in (("a", 90, 71, 0, 0), ("b", 30, 83.25, xid, 2)):
        out += [
            sample("aiops_gpu_memory_used_bytes", 40e9, node, "0"),
            sample("aiops_gpu_memory_total_bytes", 80e9, node, "0"),
            sample("aiops_gpu_utilization_percent", util, node, "0"),
            sample("aiops_gpu_temperature_celsius", temp, node, "0"),
            sample("aiops_gpu_power_watts", 350.5, node, "0"),
            sample("aiops_gpu_xid_errors_total", xids, node, "0"),
            sample("aiops_gpu_ecc_errors_total", ecc, node, "0", type="uncorrected"),
            sample("aiops_gpu_ecc_errors_total", 100, node, "0", type="corrected"),
        ]
    return out


def test_summary_of_two_gpus():
    s = gpufleet.summarise(two_gpus(), NOW)
    assert s["gpus"] == 2 and s["memoryUsedBytes"] == 80e9 and s["memoryTotalBytes"] == 160e9
    assert s["meanUtilizationPercent"] == 60 and s["maxTemperatureCelsius"] == 83.2 and s["powerWatts"] == 701
    assert s["xidErrors"] == 3 and s["eccUncorrected"] == 2, "corrected ECC errors are not counted"
    assert s["worst"][0] == {
        "node": "b:9400", "name": H100, "xidErrors": 3, "eccUncorrected": 2, "temperatureCelsius": 83.2,
    }  # fmt: skip
    assert s["observedAt"] == "2025-01-02T03:04:05Z"
    GPUTelemetry.model_validate(s)  # within the status schema's bounds


def test_node_label_wins_over_instance_and_no_gpu_series_is_absent():
    samples = [sample("aiops_gpu_temperature_celsius", 60, "x", "0", node="gpu-node-1")]
    assert gpufleet.summarise(samples, NOW)["worst"][0]["node"] == "gpu-node-1"
    only_up = [{"metric": {"__name__": "aiops_gpu_nvml_available", "reason": "no driver"}, "value": [1, "0"]}]
    assert gpufleet.summarise(only_up, NOW) is None
    assert gpufleet.summarise([], NOW) is None


def builder(old: dict | None) -> StatusBuilder:
    body = {"metadata": {"name": "c"}, "status": {"gpuTelemetry": old} if old else {}}
    events = []
    b = StatusBuilder(MANAGED_CLUSTER, body, NOW, lambda *e: events.append(e))
    b.events = events
    return b


def test_record_warns_on_rising_errors_and_publishes_material_changes_only(monkeypatch):
    published = []
    monkeypatch.setattr(gpufleet, "publish", lambda *a: published.append(a))
    first = gpufleet.summarise(two_gpus(xid=1), NOW)
    b = builder(None)
    gpufleet.record(b, "c", {}, first)
    assert [e[1] for e in b.events] == ["GPUXidErrors", "GPUECCErrors"] and len(published) == 1
    # utilisation wiggles: no bus event, no Warning
    wiggle = gpufleet.summarise(two_gpus(xid=1), NOW) | {"meanUtilizationPercent": 12.0}
    b = builder(first)
    gpufleet.record(b, "c", {}, wiggle)
    assert b.events == [] and len(published) == 1 and b.changes() == {"gpuTelemetry": wiggle}
    # Xid rises: a Warning naming the GPU, and a GPU_UPDATE
    b = builder(first)
    gpufleet.record(b, "c", {}, gpufleet.summarise(two_gpus(xid=4), NOW))
    assert b.events == [("Warning", "GPUXidErrors", f"Xid errors rose from 1 to 4 on b:9400 ({H100}: 4)")]
    assert len(published) == 2 and published[-1][2]["previous"]["xidErrors"] == 1
    # Prometheus down: nothing written; no GPU series: the field goes
    b = builder(first)
    gpufleet.record(b, "c", {}, gpufleet.Unavailable)
    assert b.changes() == {}
    gpufleet.record(b, "c", {}, None)
    assert b.changes() == {"gpuTelemetry": None}


def test_local_cluster_falls_back_to_the_operator_prometheus():
    spec = SimpleNamespace(endpoints=None, kubeconfig_secret_ref=None)
    assert gpufleet.prometheus_for(spec, "http://prom:9090").url == "http://prom:9090"
    remote = SimpleNamespace(endpoints=None, kubeconfig_secret_ref=object())
    assert gpufleet.prometheus_for(remote, "http://prom:9090") is None


def test_query_failure_is_unavailable():
    assert gpufleet.observe(gpufleet.Endpoint(url="http://127.0.0.1:9"), None, NOW) is gpufleet.Unavailable
