"""GPU telemetry through NVML (nvidia-ml-py): name, memory, utilisation, temperature, power, ECC and Xid counts.

Runs where a GPU is visible: inside a vLLM pod (a sidecar) or as a node agent (`aiops gpu agent`), and
serves them as Prometheus metrics. Without NVML (no NVIDIA driver, a CPU-only node) `read()` says so in
one line and every figure is simply absent: never a stack trace. Fields a GPU does not support (ECC
on consumer cards, power on some MIG slices) are None, not zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pynvml
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

XID_WAIT_MS = 1000


@dataclass
class GPU:
    index: int
    name: str
    uuid: str
    memory_total_bytes: int
    memory_used_bytes: int
    utilization_percent: float | None
    temperature_celsius: float | None
    power_watts: float | None
    power_limit_watts: float | None
    ecc_corrected: int | None
    ecc_uncorrected: int | None
    xid_errors: int = 0  # seen by this process's watcher since it started
    last_xid: int | None = None


@dataclass
class Reading:
    available: bool
    reason: str | None = None  # why not, when NVML is unavailable
    driver: str | None = None
    gpus: list[GPU] = field(default_factory=list)


def _optional(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except pynvml.NVMLError:
        return None


class XidWatcher:
    """Counts Xid critical errors per GPU uuid from NVML's event set, in a thread (NVML blocks on wait)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        try:
            pynvml.nvmlInit()
            events = pynvml.nvmlEventSetCreate()
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                _optional(
                    lambda h=handle: pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, events)
                )
        except pynvml.NVMLError:
            return False
        self._thread = threading.Thread(target=self._run, args=(events,), name="aiops-xid", daemon=True)
        self._thread.start()
        return True

    def _run(self, events: Any) -> None:
        while not self._stop.is_set():
            try:
                data = pynvml.nvmlEventSetWait(events, XID_WAIT_MS)
            except pynvml.NVMLError:  # a timeout is an error in NVML's API: nothing happened
                continue
            uuid = _optional(lambda d=data: pynvml.nvmlDeviceGetUUID(d.device)) or "unknown"
            self.counts[uuid] = self.counts.get(uuid, 0) + 1
            self.last[uuid] = int(data.eventData)

    def stop(self) -> None:
        self._stop.set()


def read(xids: XidWatcher | None = None) -> Reading:
    """The GPUs NVML sees now; never raises."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return Reading(False, f"NVML not available: {exc} (no NVIDIA driver or GPU visible here)")
    try:
        driver = _optional(pynvml.nvmlSystemGetDriverVersion)
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(h)
            uuid = str(pynvml.nvmlDeviceGetUUID(h))
            power = _optional(lambda h=h: pynvml.nvmlDeviceGetPowerUsage(h))
            limit = _optional(lambda h=h: pynvml.nvmlDeviceGetEnforcedPowerLimit(h))
            util = _optional(lambda h=h: pynvml.nvmlDeviceGetUtilizationRates(h))
            gpus.append(
                GPU(
                    index=i,
                    name=str(pynvml.nvmlDeviceGetName(h)),
                    uuid=uuid,
                    memory_total_bytes=int(memory.total),
                    memory_used_bytes=int(memory.used),
                    utilization_percent=float(util.gpu) if util is not None else None,
                    temperature_celsius=_optional(
                        lambda h=h: float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
                    ),
                    power_watts=power / 1000 if power is not None else None,
                    power_limit_watts=limit / 1000 if limit is not None else None,
                    ecc_corrected=_ecc(h, pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
                    ecc_uncorrected=_ecc(h, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
                    xid_errors=(xids.counts.get(uuid, 0) if xids else 0),
                    last_xid=(xids.last.get(uuid) if xids else None),
                )
            )
        return Reading(True, None, str(driver) if driver else None, gpus)
    except pynvml.NVMLError as exc:
        return Reading(False, f"NVML failed while reading the GPUs: {exc}")
    finally:
        _optional(pynvml.nvmlShutdown)


def _ecc(handle: Any, kind: int) -> int | None:
    value = _optional(lambda: pynvml.nvmlDeviceGetTotalEccErrors(handle, kind, pynvml.NVML_VOLATILE_ECC))
    return int(value) if value is not None else None


def summary(reading: Reading) -> dict[str, Any]:
    """What a ManagedCluster's status and a GPU_UPDATE event carry: counts and the worst signs."""
    if not reading.available:
        return {"available": False, "reason": reading.reason}
    return {
        "available": True,
        "driver": reading.driver,
        "count": len(reading.gpus),
        "models": sorted({g.name for g in reading.gpus}),
        "memoryUsedBytes": sum(g.memory_used_bytes for g in reading.gpus),
        "memoryTotalBytes": sum(g.memory_total_bytes for g in reading.gpus),
        "eccUncorrected": sum(g.ecc_uncorrected or 0 for g in reading.gpus),
        "xidErrors": sum(g.xid_errors for g in reading.gpus),
        "gpus": [asdict(g) for g in reading.gpus],
    }


# (field, metric name, help); a None value (unsupported on that GPU) is left out of the exposition.
GAUGES = (
    ("memory_used_bytes", "aiops_gpu_memory_used_bytes", "GPU memory in use."),
    ("memory_total_bytes", "aiops_gpu_memory_total_bytes", "GPU memory in all."),
    ("utilization_percent", "aiops_gpu_utilization_percent", "GPU busy time over the last sample period."),
    ("temperature_celsius", "aiops_gpu_temperature_celsius", "GPU core temperature."),
    ("power_watts", "aiops_gpu_power_watts", "Power draw."),
    ("power_limit_watts", "aiops_gpu_power_limit_watts", "Enforced power limit."),
)


class GPUCollector(Collector):
    """Prometheus view of `read()`, read at each scrape."""

    def __init__(self, xids: XidWatcher | None = None):
        self.xids = xids

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        reading = read(self.xids)
        up = GaugeMetricFamily("aiops_gpu_nvml_available", "1 when NVML answers on this node.", labels=["reason"])
        up.add_metric([reading.reason or ""], 1.0 if reading.available else 0.0)
        yield up
        labels = ["gpu", "uuid", "name"]
        for attr, name, doc in GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            for g in reading.gpus:
                if (value := getattr(g, attr)) is not None:
                    gauge.add_metric([str(g.index), g.uuid, g.name], value)
            yield gauge
        ecc = CounterMetricFamily("aiops_gpu_ecc_errors", "Volatile ECC errors.", labels=[*labels, "type"])
        xid = CounterMetricFamily("aiops_gpu_xid_errors", "Xid critical errors seen by this agent.", labels=labels)
        for g in reading.gpus:
            for kind, value in (("corrected", g.ecc_corrected), ("uncorrected", g.ecc_uncorrected)):
                if value is not None:
                    ecc.add_metric([str(g.index), g.uuid, g.name, kind], value)
            xid.add_metric([str(g.index), g.uuid, g.name], g.xid_errors)
        yield ecc
        yield xid
