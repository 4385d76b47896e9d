"""GPU telemetry of a fleet cluster: the `aiops gpu agent` metrics (aiops_gpu_*) read from the cluster's
Prometheus with one instant query, summarised into ManagedCluster status.gpuTelemetry.

No GPU series at all: the field goes away (never zeros). Prometheus not answering: the last summary
stays, and the PrometheusReachable condition tells why. GPU_UPDATE goes on the bus when the count or
the error counts change (not on every utilisation wiggle); a Warning Event when Xid or uncorrected
ECC counts rise.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx

from aiops.api.conditions import Reason
from aiops.api.managedcluster import Endpoint, ManagedClusterSpec
from aiops.core.events import EventType, publish
from aiops.core.status import rfc3339

QUERY = '{__name__=~"aiops_gpu_.+"}'
QUERY_TIMEOUT_S = 5
WORST_LIMIT = 5
NODE_LABELS = ("node", "kubernetes_node", "nodename", "instance")  # the first one present names the GPU's node
MATERIAL = ("gpus", "eccUncorrected", "xidErrors")

# metric name -> the per-GPU key it fills
METRICS = {
    "aiops_gpu_memory_used_bytes": "memory_used",
    "aiops_gpu_memory_total_bytes": "memory_total",
    "aiops_gpu_utilization_percent": "utilization",
    "aiops_gpu_temperature_celsius": "temperature",
    "aiops_gpu_power_watts": "power",
    "aiops_gpu_xid_errors_total": "xid",
}


class Unavailable(Exception):
    """Prometheus could not be asked or did not answer the query."""


def _node(labels: dict[str, str]) -> str:
    return next((labels[k] for k in NODE_LABELS if labels.get(k)), "unknown")


def summarise(samples: list[dict[str, Any]], observed_at: datetime) -> dict[str, Any] | None:
    """The status summary of instant-query samples ({"metric": {labels}, "value": [t, "v"]}); None without
    any per-GPU series (the field is then absent, not zeros)."""
    gpus: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for sample in samples:
        labels = dict(sample.get("metric") or {})
        name = labels.pop("__name__", "")
        try:
            value = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if value != value:  # NaN
            continue
        ident = labels.get("uuid") or labels.get("gpu")
        if ident is None:
            continue  # aiops_gpu_nvml_available and other node-level series
        gpu = gpus[(_node(labels), ident)]
        gpu.setdefault("name", labels.get("name") or "unknown")
        if name == "aiops_gpu_ecc_errors_total":
            if labels.get("type") == "uncorrected":
                gpu["ecc"] = gpu.get("ecc", 0) + int(value)
        elif key := METRICS.get(name):
            gpu[key] = value
    if not gpus:
        return None

    def total(key: str) -> float:
        return sum(g.get(key, 0) for g in gpus.values())

    utils = [g["utilization"] for g in gpus.values() if "utilization" in g]
    temps = [g["temperature"] for g in gpus.values() if "temperature" in g]
    powers = [g["power"] for g in gpus.values() if "power" in g]
    out: dict[str, Any] = {
        "gpus": len(gpus),
        "memoryUsedBytes": int(total("memory_used")),
        "memoryTotalBytes": int(total("memory_total")),
        "eccUncorrected": int(total("ecc")),
        "xidErrors": int(total("xid")),
    }
    if utils:
        out["meanUtilizationPercent"] = round(sum(utils) / len(utils), 1)
    if temps:
        out["maxTemperatureCelsius"] = round(max(temps), 1)
    if powers:
        out["powerWatts"] = round(sum(powers), 1)
    ranked = sorted(
        gpus.items(),
        key=lambda kv: (-kv[1].get("xid", 0), -kv[1].get("ecc", 0), -kv[1].get("temperature", 0), kv[0]),
    )
    worst = []
    for (node, _), g in ranked[:WORST_LIMIT]:
        entry: dict[str, Any] = {
            "node": node[:253],
            "name": str(g["name"])[:253],
            "xidErrors": int(g.get("xid", 0)),
            "eccUncorrected": int(g.get("ecc", 0)),
        }
        if "temperature" in g:
            entry["temperatureCelsius"] = round(g["temperature"], 1)
        worst.append(entry)
    out["worst"] = worst
    out["observedAt"] = rfc3339(observed_at)
    return out


def query(url: str, token: str | None = None, insecure: bool = False, timeout: float = QUERY_TIMEOUT_S) -> list:
    """The aiops_gpu_* samples at this instant; Unavailable when Prometheus does not answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(
            url.rstrip("/") + "/api/v1/query",
            params={"query": QUERY},
            headers=headers,
            timeout=timeout,
            verify=not insecure,
        )
        resp.raise_for_status()
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(str(exc)) from None
    if body.get("status") != "success" or (body.get("data") or {}).get("resultType") != "vector":
        raise Unavailable(f"unexpected answer: {str(body)[:200]}")
    return list(body["data"].get("result") or [])


def prometheus_for(spec: ManagedClusterSpec, local_url: str | None) -> Endpoint | None:
    """The cluster's Prometheus endpoint; for the local cluster AIOPS_PROMETHEUS_URL when it names none."""
    endpoint = spec.endpoints.prometheus if spec.endpoints else None
    if endpoint is None and spec.kubeconfig_secret_ref is None and local_url:
        endpoint = Endpoint(url=local_url)
    return endpoint


def observe(endpoint: Endpoint, token: str | None, now: datetime) -> dict[str, Any] | None | type[Unavailable]:
    """The summary, None without GPU series, or Unavailable (the class) when Prometheus did not answer."""
    try:
        samples = query(endpoint.url, token, bool(endpoint.insecure_skip_verify))
    except Unavailable:
        return Unavailable
    return summarise(samples, now)


def record(builder: Any, name: str, body: Any, found: dict[str, Any] | None | type[Unavailable]) -> None:
    """Writes the summary into the builder; a GPU_UPDATE on material change, a Warning when errors rise."""
    if found is Unavailable:
        return  # the last summary stays; PrometheusReachable says why
    old = builder.old.get("gpuTelemetry") or {}
    builder.status.gpu_telemetry = found
    new = found or {}
    for key, reason, words in (
        ("xidErrors", Reason.GPU_XID_ERRORS, "Xid errors"),
        ("eccUncorrected", Reason.GPU_ECC_ERRORS, "uncorrected ECC errors"),
    ):
        before, after = int(old.get(key) or 0), int(new.get(key) or 0)
        if after > before:
            bad = [w for w in new.get("worst") or [] if w.get(key)]
            where = ", ".join(f"{w['node']} ({w['name']}: {w[key]})" for w in bad[:3])
            message = f"{words} rose from {before} to {after}" + (f" on {where}" if where else "")
            builder.emit("Warning", reason, message)
    if {k: old.get(k) for k in MATERIAL} != {k: new.get(k) for k in MATERIAL}:
        publish(
            EventType.GPU_UPDATE,
            name,
            {
                "cluster": name,
                "gpuTelemetry": found,
                "previous": {k: old.get(k) for k in MATERIAL} if old else None,
            },
            body,
        )
