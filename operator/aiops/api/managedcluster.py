"""ManagedCluster: one cluster of the fleet, the hub itself included."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from aiops.api.analysisrun import ForecastResource
from aiops.api.common import (
    DNS_LABEL,
    Condition,
    Kind,
    Model,
    PrinterColumn,
    SecretKeyReference,
    Status,
    UtcDatetime,
)
from aiops.api.incident import Severity, WorkloadReference


class Environment(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    DEVELOPMENT = "development"
    TEST = "test"


class ClusterPhase(StrEnum):
    READY = "Ready"
    DEGRADED = "Degraded"
    UNREACHABLE = "Unreachable"


class Endpoint(Model):
    url: str = Field(max_length=2048, pattern=r"^https?://")
    auth_secret_ref: SecretKeyReference | None = None
    insecure_skip_verify: bool | None = None


class ClusterEndpoints(Model):
    prometheus: Endpoint | None = None
    alertmanager: Endpoint | None = None
    loki: Endpoint | None = None
    tempo: Endpoint | None = None
    jaeger: Endpoint | None = Field(
        default=None, description="Jaeger's query service (its HTTP API); traces are read from Tempo when both are set."
    )


class ScanQuery(Model):
    """One PromQL expression the periodic anomaly scan scores, every series it returns on its own."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Names the query in status.")
    query: str = Field(min_length=1, max_length=4096, description="PromQL, run as a range query over the lookback.")
    target: WorkloadReference | None = Field(
        default=None,
        description="The workload an anomaly here is about; absent: named by each series' labels (pod, "
        "deployment, statefulset, daemonset, job_name, cronjob, persistentvolumeclaim, node, service, "
        "then namespace).",
    )


class AnomalyScan(Model):
    """A periodic anomaly scan of the cluster's Prometheus: each new anomaly opens at most one Incident."""

    queries: list[ScanQuery] = Field(min_length=1, max_length=50)
    interval_seconds: int = Field(default=300, ge=30, le=86400, description="How often each query is scored.")
    lookback_minutes: int = Field(
        default=60, ge=5, le=10080, description="History scored on each scan: the detector's baseline."
    )
    severity: Severity = Severity.WARNING
    incident_namespace: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Where Incidents open; default the operator's."
    )
    suspend: bool = Field(default=False, description="Stop scanning; the state in status is kept.")

    @model_validator(mode="after")
    def _unique_names(self) -> AnomalyScan:
        names = [q.name for q in self.queries]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"queries: names must be unique, repeated: {', '.join(repeated)}")
        return self


class CapacityForecast(Model):
    """A periodic capacity forecast of the cluster's Prometheus: per namespace (cpu, memory, gpuMemory) and per
    PersistentVolumeClaim (storage). A resource of an object expected to reach a limit (requests, limits, quota,
    capacity) within warnHours opens one Incident, and no other while that one is open."""

    resources: list[ForecastResource] = Field(
        default_factory=lambda: [ForecastResource.CPU, ForecastResource.MEMORY, ForecastResource.STORAGE],
        min_length=1,
        max_length=4,
    )
    namespaces: list[str] = Field(
        default_factory=list, max_length=50, description="Only these namespaces; empty: every namespace."
    )
    interval_seconds: int = Field(default=3600, ge=60, le=604800, description="How often the forecast runs.")
    horizon_hours: float = Field(default=168, ge=0.25, le=8760, description="How far ahead each forecast looks.")
    warn_hours: float = Field(
        default=72, ge=0.25, le=8760, description="Exhaustion sooner than this opens an Incident."
    )
    history_days: float = Field(default=21, ge=0.1, le=90, description="History read; see AnalysisRun inputs.forecast.")
    severity: Severity = Severity.WARNING
    incident_namespace: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Where Incidents open; default the operator's."
    )
    suspend: bool = Field(default=False, description="Stop forecasting; the state in status is kept.")

    @model_validator(mode="after")
    def _warn_inside_horizon(self) -> CapacityForecast:
        if self.warn_hours > self.horizon_hours:
            raise ValueError(f"warnHours: {self.warn_hours:g} is past horizonHours ({self.horizon_hours:g})")
        bad = [n for n in self.namespaces if not re.match(DNS_LABEL, n)]
        if bad:
            raise ValueError(f"namespaces: not namespace names: {', '.join(bad[:5])}")
        return self


class Suspension(Model):
    """The kill switch of one cluster: set, the operator takes no SOP action and calls no model for its Incidents."""

    reason: str | None = Field(default=None, max_length=1024)
    by: str | None = Field(default=None, max_length=253, description="Who set it (`aiops suspend` writes it).")
    since: UtcDatetime | None = None


class ManagedClusterSpec(Model):
    display_name: str | None = Field(default=None, max_length=256)
    environment: Environment | None = None
    kubeconfig_secret_ref: SecretKeyReference | None = Field(
        default=None, description="Absent = the cluster the operator runs in."
    )
    endpoints: ClusterEndpoints | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    anomaly_scan: AnomalyScan | None = Field(default=None, description="Needs endpoints.prometheus.")
    capacity_forecast: CapacityForecast | None = Field(default=None, description="Needs endpoints.prometheus.")
    suspend: Suspension | None = Field(
        default=None, description="Present: SOP actions and model calls stop for this cluster (`aiops suspend`)."
    )


class GPUModel(Model):
    product: str = Field(max_length=253)
    count: int = Field(ge=0)
    nodes: list[str] = Field(default_factory=list)


class GPUInventory(Model):
    total: int = Field(ge=0)
    models: list[GPUModel] = Field(default_factory=list)


class GPUWorst(Model):
    node: str = Field(max_length=253, description="The node (or scrape instance) the GPU is on.")
    name: str = Field(max_length=253)
    xid_errors: int = Field(default=0, ge=0)
    ecc_uncorrected: int = Field(default=0, ge=0)
    temperature_celsius: float | None = Field(default=None, ge=-50, le=200)


class GPUTelemetry(Model):
    gpus: int = Field(ge=0, description="GPUs reporting aiops_gpu_* metrics (`aiops gpu agent`).")
    memory_used_bytes: int = Field(ge=0)
    memory_total_bytes: int = Field(ge=0)
    mean_utilization_percent: float | None = Field(default=None, ge=0, le=100)
    max_temperature_celsius: float | None = Field(default=None, ge=-50, le=200)
    power_watts: float | None = Field(default=None, ge=0)
    ecc_uncorrected: int = Field(ge=0)
    xid_errors: int = Field(ge=0)
    worst: list[GPUWorst] = Field(default_factory=list, max_length=5, description="Most errors, then hottest.")
    observed_at: datetime | None = None


class ScanQueryStatus(Model):
    name: str = Field(max_length=63)
    last_scan_time: datetime | None = None
    scanned_until: datetime | None = Field(
        default=None,
        description="The end of the last window scored: an anomaly that began before it was seen already, "
        "so a restart does not alert on it again.",
    )
    series: int | None = Field(default=None, ge=0)
    anomalies: int | None = Field(default=None, ge=0, description="Anomalies in the last window, new or not.")
    error: str | None = Field(default=None, max_length=1024, description="Why the last scan could not run.")


class AnomalyScanStatus(Model):
    queries: list[ScanQueryStatus] = Field(default_factory=list, max_length=50)
    incidents_opened: int = Field(default=0, ge=0, description="Since the scan was configured.")
    deduplicated: int = Field(
        default=0, ge=0, description="New anomalies on a target that had an open Incident or a firing alert."
    )
    last_incident: str | None = Field(default=None, max_length=320, description="namespace/name.")
    last_skipped: list[str] = Field(
        default_factory=list, max_length=10, description="Why the last new anomalies opened no Incident."
    )


class CapacityForecastStatus(Model):
    last_run_time: datetime | None = None
    objects: int | None = Field(default=None, ge=0, description="Resource forecasts made by the last run.")
    at_risk: list[str] = Field(
        default_factory=list, max_length=20, description="What the last run expects to reach a limit in warnHours."
    )
    errors: list[str] = Field(default_factory=list, max_length=10, description="What the last run could not read.")
    incidents_opened: int = Field(default=0, ge=0, description="Since the forecast was configured.")
    last_incident: str | None = Field(default=None, max_length=320, description="namespace/name.")


class ManagedClusterStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list)
    phase: ClusterPhase | None = None
    kubernetes_version: str | None = Field(default=None, max_length=64)
    openshift_version: str | None = Field(default=None, max_length=64)
    node_count: int | None = Field(default=None, ge=0)
    ready_node_count: int | None = Field(default=None, ge=0, description="Nodes whose Ready condition is True.")
    gpu_inventory: GPUInventory | None = None
    gpu_telemetry: GPUTelemetry | None = Field(
        default=None, description="From the cluster's Prometheus; absent when no GPU reports metrics."
    )
    capabilities: list[str] = Field(default_factory=list)
    last_probe_time: datetime | None = Field(
        default=None, description="When the periodic probe last ran ($AIOPS_CLUSTER_PROBE_INTERVAL_S, default 60 s)."
    )
    anomaly_scan: AnomalyScanStatus | None = None
    capacity_forecast: CapacityForecastStatus | None = None


MANAGED_CLUSTER = Kind(
    kind="ManagedCluster",
    plural="managedclusters",
    short_names=("mc", "mcl"),
    namespaced=False,
    spec=ManagedClusterSpec,
    status=ManagedClusterStatus,
    description="One cluster of the fleet: how to reach it and what the last probe found.",
    columns=(
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Version", ".status.kubernetesVersion"),
        PrinterColumn("GPUs", ".status.gpuInventory.total", "integer"),
        PrinterColumn("Nodes", ".status.nodeCount", "integer", priority=1),
        PrinterColumn("Environment", ".spec.environment", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
