"""GPU telemetry: on this machine (no NVIDIA driver) a clean statement; the NVML-to-metrics conversion with
pynvml's functions patched to answer as a one-GPU node would (the real path needs a GPU machine)."""

from types import SimpleNamespace

import pynvml
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aiops.clusters import gputelemetry


def nvml_present() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def test_without_nvml_the_reading_says_why_and_metrics_say_unavailable():
    if nvml_present():
        pytest.skip("this machine has NVML: the unavailable path cannot be observed here")
    reading = gputelemetry.read()
    assert not reading.available and reading.gpus == []
    assert reading.reason.startswith("NVML not available: NVML Shared Library Not Found")
    assert gputelemetry.summary(reading) == {"available": False, "reason": reading.reason}
    registry = CollectorRegistry()
    registry.register(gputelemetry.GPUCollector())
    text = generate_latest(registry).decode()
    assert 'aiops_gpu_nvml_available{reason="NVML not available: NVML Shared Library Not Found' in text
    assert "aiops_gpu_memory_used_bytes{" not in text


@pytest.fixture
def one_gpu(monkeypatch):
    def unsupported(*_):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    fake = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "550.54.15",
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=80 * 2**30, used=60 * 2**30),
        "nvmlDeviceGetUUID": lambda h: "GPU-1234",
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetPowerUsage": lambda h: 350_000,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700_000,
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=87),
        "nvmlDeviceGetTemperature": lambda h, sensor: 64,
        "nvmlDeviceGetTotalEccErrors": unsupported,
    }
    for name, fn in fake.items():
        monkeypatch.setattr(pynvml, name, fn)


def test_a_gpu_becomes_metrics_and_a_summary(one_gpu):
    xids = gputelemetry.XidWatcher()
    xids.counts, xids.last = {"GPU-1234": 2}, {"GPU-1234": 79}
    reading = gputelemetry.read(xids)
    [gpu] = reading.gpus
    assert (gpu.power_watts, gpu.utilization_percent, gpu.ecc_uncorrected, gpu.xid_errors) == (350.0, 87.0, None, 2)
    s = gputelemetry.summary(reading)
    assert (s["count"], s["models"], s["xidErrors"], s["eccUncorrected"]) == (1, ["NVIDIA H100 80GB HBM3"], 2, 0)
    registry = CollectorRegistry()
    registry.register(gputelemetry.GPUCollector(xids))
    text = generate_latest(registry).decode()
    labels = 'gpu="0",name="NVIDIA H100 80GB HBM3",uuid="GPU-1234"'
    assert f"aiops_gpu_memory_used_bytes{{{labels}}} 6.442450944e+10" in text
    assert f"aiops_gpu_xid_errors_total{{{labels}}} 2.0" in text
    assert "aiops_gpu_ecc_errors_total{" not in text  # unsupported: absent, not zero
