"""AnalysisRun: one unit of inference work, usually owned by an Incident."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml
from pydantic import Field, model_validator

from aiops.api.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    Condition,
    Kind,
    LocalObjectReference,
    Model,
    PrinterColumn,
    Status,
    TimeWindow,
)
from aiops.api.incident import Diagnosis, Severity, WorkloadReference
from aiops.api.sop import SOPSpec


class AnalysisType(StrEnum):
    ROOT_CAUSE = "rootCause"
    ANOMALY_DETECTION = "anomalyDetection"
    QUERY = "query"
    SOP_ANALYSIS = "sopAnalysis"
    CAPACITY_FORECAST = "capacityForecast"
    CHANGE_REVIEW = "changeReview"


class RunPhase(StrEnum):
    PENDING = "Pending"
    SCHEDULING = "Scheduling"
    WAITING_FOR_MODEL = "WaitingForModel"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class InferenceSettings(Model):
    model: str | None = Field(default=None, min_length=1, max_length=253)
    endpoint: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://", description="An OpenAI-compatible base URL."
    )
    pool: str | None = Field(default=None, max_length=63, description="An operator-managed vLLM pool.")
    gpu_count: int | None = Field(default=None, ge=0, le=16)
    max_tokens: int | None = Field(default=None, ge=1, le=131072)
    temperature: float | None = Field(default=None, ge=0, le=2)

    @model_validator(mode="after")
    def _one_target(self) -> InferenceSettings:
        if self.endpoint and self.pool:
            raise ValueError("give either endpoint or pool, not both")
        return self


class AnomalyIncident(Model):
    """anomalyDetection: open one Incident (source anomaly, named <run>-anomaly) when anomalies are found."""

    severity: Severity = Severity.WARNING
    target: WorkloadReference | None = Field(default=None, description="The workload the Incident is about.")


class ForecastResource(StrEnum):
    CPU = "cpu"  # cores in use (cAdvisor)
    MEMORY = "memory"  # working-set bytes (cAdvisor)
    STORAGE = "storage"  # bytes used on a PersistentVolumeClaim (kubelet volume stats)
    GPU_MEMORY = "gpuMemory"  # GPU framebuffer bytes in use (dcgm-exporter)


class ForecastTargetKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"
    POD = "Pod"
    NAMESPACE = "Namespace"
    PERSISTENT_VOLUME_CLAIM = "PersistentVolumeClaim"


class ForecastTarget(Model):
    """What to forecast: a workload (its pods together), a namespace, or a PersistentVolumeClaim."""

    kind: ForecastTargetKind
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    namespace: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=DNS_LABEL, description="Default the run's namespace."
    )


class CapacityForecastInputs(Model):
    """capacityForecast: forecast the target's usage from its Prometheus history and when it reaches a limit."""

    target: ForecastTarget
    resources: list[ForecastResource] = Field(
        default_factory=list, max_length=4, description="Default cpu and memory; storage for a PersistentVolumeClaim."
    )
    horizon_hours: float = Field(ge=0.25, le=8760, description="How far ahead to forecast.")
    history_days: float = Field(
        default=21,
        ge=0.1,
        le=90,
        description="History read (at most what Prometheus keeps); a weekly season needs ~19.",
    )
    level: float = Field(default=0.8, ge=0.5, le=0.99, description="The prediction interval's coverage.")

    @model_validator(mode="after")
    def _resources_fit_target(self) -> CapacityForecastInputs:
        claim = self.target.kind == ForecastTargetKind.PERSISTENT_VOLUME_CLAIM
        wrong = [r for r in self.resources if (r == ForecastResource.STORAGE) != claim]
        if wrong and not (self.target.kind == ForecastTargetKind.NAMESPACE and wrong == [ForecastResource.STORAGE]):
            raise ValueError(
                f"resources: {', '.join(wrong)} cannot be forecast for a {self.target.kind} (storage is forecast for "
                "a PersistentVolumeClaim or a Namespace, the others for workloads, pods and namespaces)"
            )
        return self


class ReviewKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"


class ChangeTarget(Model):
    """The live workload a patch applies to, or the one object of a manifest to review."""

    kind: ReviewKind
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    namespace: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=DNS_LABEL, description="Default the run's namespace."
    )


class ChangeReviewInputs(Model):
    """changeReview: a proposed change to a Deployment or StatefulSet, checked before it ships against the live
    object, its observed usage, its disruption budgets, its past Incidents and its SLO's error budget."""

    manifest: str | None = Field(
        default=None,
        max_length=262144,
        description="The proposed objects as YAML or JSON: one or more documents, e.g. a rendered Helm chart or "
        "Argo CD application; its Deployments and StatefulSets are reviewed, other kinds listed as skipped.",
    )
    patch: str | None = Field(
        default=None,
        max_length=65536,
        description="Instead of a manifest: a merge patch (YAML or JSON) to the live target: RFC 7386, with lists of "
        "named objects (containers, env, volumes) merged by name as kubectl's strategic merge does.",
    )
    target: ChangeTarget | None = Field(
        default=None, description="Required with patch; with a manifest, reviews only this object of it."
    )
    usage_days: float = Field(
        default=7, ge=0.05, le=90, description="Prometheus history read for observed usage (p95 and peak)."
    )
    history_days: float = Field(default=90, ge=1, le=3650, description="How far back past Incidents count.")

    @model_validator(mode="after")
    def _one_source(self) -> ChangeReviewInputs:
        if (self.manifest is None) == (self.patch is None):
            raise ValueError("give exactly one of manifest or patch")
        if self.patch is not None and self.target is None:
            raise ValueError("target (the live object the patch applies to) is required with patch")
        self.documents()  # a manifest or patch that does not parse is bad input, named at its field
        return self

    def documents(self) -> list[dict[str, Any]]:
        """The manifest's objects (empty documents and `List` items unwrapped), or the patch as one mapping;
        ValueError naming the document and what is wrong."""
        field, text = ("manifest", self.manifest) if self.manifest is not None else ("patch", self.patch or "")
        try:
            loaded = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise ValueError(f"{field} is not YAML or JSON: {' '.join(str(exc).split())}") from None
        except RecursionError:
            raise ValueError(f"{field} is nested too deeply to be a Kubernetes object") from None
        if field == "patch":
            if len(loaded) != 1 or not isinstance(loaded[0], dict):
                raise ValueError("patch must be one mapping (a JSON merge patch)")
            return loaded
        docs: list[dict[str, Any]] = []
        for n, doc in enumerate(loaded, 1):
            items = doc.get("items") if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") else [doc]
            for obj in items if isinstance(items, list) else [items]:
                if not isinstance(obj, dict) or not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
                    raise ValueError(f"manifest document {n} is not a Kubernetes object (kind and metadata.name)")
                docs.append(obj)
        if not docs:
            raise ValueError("manifest holds no object")
        return docs


class AnalysisInputs(Model):
    queries: list[str] = Field(default_factory=list, max_length=50, description="PromQL expressions.")
    window: TimeWindow | None = None
    question: str | None = Field(default=None, max_length=8192, description="query: the question, in plain words.")
    target: WorkloadReference | None = Field(
        default=None, description="query: the workload the question is about (context for the agent)."
    )
    text: str | None = Field(default=None, max_length=65536, description="Free text, e.g. a runbook for sopAnalysis.")
    incident: AnomalyIncident | None = Field(
        default=None, description="anomalyDetection: open an Incident (at most one per run) when anomalies are found."
    )
    forecast: CapacityForecastInputs | None = Field(default=None, description="capacityForecast: what and how far.")
    change: ChangeReviewInputs | None = Field(default=None, description="changeReview: the proposed change.")


class ConfigMapBundle(Model):
    """A support bundle packed as a .tar.gz in one key of a ConfigMap's binaryData, in the run's namespace
    (a ConfigMap holds at most 1 MiB: `kubectl create configmap NAME --from-file=bundle.tar.gz=dump.tar.gz`)."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(default="bundle.tar.gz", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class VolumeBundle(Model):
    """A support bundle (folder or .tar.gz) on a PersistentVolumeClaim. Not read yet: the operator would have
    to mount the claim; a run that names one fails saying so."""

    claim_name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    path: str = Field(min_length=1, max_length=4096, description="The bundle's path inside the volume.")


class BundleSource(Model):
    """rootCause: diagnose the Incident from a support bundle (a kubectl cluster-info dump or a must-gather)
    instead of its live cluster: exactly one of configMap or persistentVolumeClaim."""

    config_map: ConfigMapBundle | None = None
    persistent_volume_claim: VolumeBundle | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BundleSource:
        if (self.config_map is None) == (self.persistent_volume_claim is None):
            raise ValueError("give exactly one of configMap or persistentVolumeClaim")
        return self


class AnalysisRunSpec(Model):
    type: AnalysisType
    incident_ref: LocalObjectReference | None = None
    cluster_ref: LocalObjectReference | None = None
    inference: InferenceSettings | None = None
    inputs: AnalysisInputs | None = None
    bundle: BundleSource | None = Field(
        default=None, description="rootCause: read the evidence from this support bundle, not the cluster."
    )

    @model_validator(mode="after")
    def _inputs_fit_type(self) -> AnalysisRunSpec:
        inputs = self.inputs or AnalysisInputs()
        if self.type == AnalysisType.ROOT_CAUSE and self.incident_ref is None:
            raise ValueError("incidentRef is required for type rootCause")
        if self.bundle is not None and self.type != AnalysisType.ROOT_CAUSE:
            raise ValueError("bundle is read by type rootCause only")
        if self.type == AnalysisType.ANOMALY_DETECTION and not inputs.queries:
            raise ValueError("inputs.queries needs at least one PromQL query for type anomalyDetection")
        if self.type == AnalysisType.QUERY and not inputs.question:
            raise ValueError("inputs.question is required for type query")
        if self.type == AnalysisType.SOP_ANALYSIS and not inputs.text:
            raise ValueError("inputs.text (the runbook) is required for type sopAnalysis")
        if self.type == AnalysisType.CAPACITY_FORECAST and inputs.forecast is None:
            raise ValueError("inputs.forecast (target, horizonHours) is required for type capacityForecast")
        if self.type == AnalysisType.CHANGE_REVIEW and inputs.change is None:
            raise ValueError("inputs.change (a manifest, or a patch and its target) is required for type changeReview")
        return self


class TokenUsage(Model):
    prompt: int | None = Field(default=None, ge=0)
    completion: int | None = Field(default=None, ge=0)


class FindingSource(StrEnum):
    LINT = "lint"  # aiops.sops.sopfile.lint on the draft: deterministic
    MODEL = "model"  # the model's review of the runbook as written


class FindingSeverity(StrEnum):
    WARNING = "warning"
    INFO = "info"


class SOPFinding(Model):
    """An improvement an SOP analysis found in a runbook."""

    source: FindingSource
    rule: str = Field(min_length=1, max_length=64, description="e.g. unverified-action, no-rollback.")
    step: str | None = Field(default=None, max_length=63, description="The draft step's id; absent: the whole SOP.")
    severity: FindingSeverity
    message: str = Field(min_length=1, max_length=1024)


class AnomalyFinding(Model):
    """anomalyDetection: one stretch of a series that stands out, from aiops.anomaly.detect."""

    series: str = Field(max_length=1024, description="The query's series, by its labels.")
    start: datetime
    end: datetime
    peak: datetime
    score: float = Field(ge=0, le=1)
    detector: str = Field(
        max_length=64, description="novel_level, novel_transition or seasonal (+correlated): what made it stand out."
    )
    summary: str = Field(max_length=2048)
    points: int | None = Field(default=None, ge=0)
    value: float | None = Field(default=None, description="The value at the peak.")
    expected: float | None = Field(default=None, description="What the detector expected at the peak.")


class QueryOutcome(Model):
    """anomalyDetection: one PromQL query as run."""

    query: str = Field(max_length=4096)
    series: int = Field(ge=0, description="Series returned (and analysed).")
    error: str | None = Field(default=None, max_length=1024, description="Why it could not run: a gap.")


class ToolCallRecord(Model):
    """query: one tool call the agent made, as run."""

    id: str = Field(max_length=16, description="c1, c2, ...: what the answer's citations name.")
    tool: str = Field(max_length=64)
    arguments: str = Field(max_length=1024, description="The arguments as JSON.")
    status: str = Field(max_length=16, description="ok, empty, error, truncated, or refused (not a tool).")
    excerpt: str = Field(max_length=400, description="The start of the (redacted) result.")
    seconds: float | None = Field(default=None, ge=0)


class ForecastValue(Model):
    mean: float
    lower: float
    upper: float


class LimitKind(StrEnum):
    REQUESTS = "requests"
    LIMITS = "limits"
    QUOTA = "quota"  # the namespace's ResourceQuota (hard)
    NODE_ALLOCATABLE = "nodeAllocatable"  # the cluster's nodes together
    CAPACITY = "capacity"  # a PersistentVolumeClaim's size, or the GPUs' memory


class LimitCrossing(Model):
    kind: LimitKind
    value: float
    exhausted_at: datetime | None = Field(
        default=None, description="When the forecast reaches it; absent: not in the horizon."
    )
    earliest_at: datetime | None = Field(
        default=None, description="When the interval's upper bound reaches it: the earliest plausible time."
    )


class ResourceForecast(Model):
    """capacityForecast: one resource of one object."""

    resource: ForecastResource
    object: str = Field(max_length=320, description="Kind/namespace/name of what was forecast.")
    unit: str = Field(max_length=16, description="cores or bytes.")
    method: str | None = Field(default=None, max_length=128)
    points: int = Field(default=0, ge=0, description="History points the forecast used.")
    current: float | None = None
    at_horizon: ForecastValue | None = None
    limits: list[LimitCrossing] = Field(default_factory=list, max_length=8)
    exhausted_at: datetime | None = Field(default=None, description="The first limit the forecast reaches, when.")
    error: str | None = Field(
        default=None, max_length=1024, description="Why there is no forecast (too short, no data)."
    )


class ChangeRisk(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ChangeCategory(StrEnum):
    IMAGE = "image"
    RESOURCES = "resources"
    PROBES = "probes"
    ENV = "env"
    REPLICAS = "replicas"
    OTHER = "other"


class FieldChange(Model):
    """changeReview: one field of the proposed object that differs from the live one."""

    path: str = Field(max_length=512, description="e.g. spec.template.spec.containers[api].resources.limits.memory")
    category: ChangeCategory
    before: str | None = Field(default=None, max_length=512, description="Absent: the field is new.")
    after: str | None = Field(default=None, max_length=512, description="Absent: the field is removed.")


class ChangeFinding(Model):
    """changeReview: one thing a check found, with what it rests on."""

    check: str = Field(
        max_length=32, description="changes, resources, usage, probes, disruption, history or slo: which check."
    )
    severity: ChangeRisk = Field(description="What it adds to the risk; none: for information.")
    message: str = Field(min_length=1, max_length=1024)
    path: str | None = Field(default=None, max_length=512, description="The field of the proposed object.")
    evidence: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="What it rests on: a PromQL query and its value, an Incident, a PodDisruptionBudget.",
    )


class ChangeReview(Model):
    """changeReview: the review of one proposed object."""

    object: str = Field(max_length=320, description="Kind/namespace/name.")
    live: bool = Field(description="An existing object was compared; false: the object is new.")
    risk: ChangeRisk
    changes: list[FieldChange] = Field(default_factory=list, max_length=100)
    findings: list[ChangeFinding] = Field(default_factory=list, max_length=50, description="The most severe first.")
    recommendation: str = Field(max_length=2048)
    override: str | None = Field(
        default=None,
        max_length=1024,
        description="The reason given in the object's aiops.dev/change-review-override annotation: a gate lets "
        "the change through whatever its risk.",
    )


class AnalysisResult(Model):
    summary: str | None = Field(default=None, max_length=8192)
    diagnosis: Diagnosis | None = None
    sop_draft: SOPSpec | None = Field(default=None, description="sopAnalysis: the runbook as a validated SOP spec.")
    sop_markdown: str | None = Field(
        default=None, max_length=131072, description="sopAnalysis: the draft as sop-library markdown."
    )
    findings: list[SOPFinding] = Field(default_factory=list, max_length=100)
    redaction: dict[str, int] = Field(
        default_factory=dict, description="What was replaced before the text reached the model, by kind."
    )
    prompt_version: str | None = Field(default=None, max_length=64)
    anomalies: list[AnomalyFinding] = Field(
        default_factory=list, max_length=50, description="anomalyDetection: the most severe first."
    )
    series_analysed: int | None = Field(default=None, ge=0, description="anomalyDetection: series over all queries.")
    queries: list[QueryOutcome] = Field(default_factory=list, max_length=50)
    gaps: list[str] = Field(default_factory=list, max_length=50, description="Queries that could not run.")
    incident_ref: LocalObjectReference | None = Field(default=None, description="The Incident this run opened.")
    answer: str | None = Field(default=None, max_length=8192, description="query: the answer.")
    citations: list[ToolCallRecord] = Field(
        default_factory=list, max_length=12, description="query: the tool calls the answer relies on."
    )
    tool_calls: list[ToolCallRecord] = Field(
        default_factory=list, max_length=50, description="query: every tool call, in order."
    )
    refusal: str | None = Field(
        default=None,
        max_length=1024,
        description="query: why the question was refused (it asked for more than reading).",
    )
    steps: int | None = Field(default=None, ge=0, description="query: model replies.")
    forecasts: list[ResourceForecast] = Field(default_factory=list, max_length=4, description="capacityForecast.")
    risk: ChangeRisk | None = Field(default=None, description="changeReview: the highest risk of the objects reviewed.")
    reviews: list[ChangeReview] = Field(default_factory=list, max_length=20, description="changeReview.")
    skipped: list[str] = Field(
        default_factory=list, max_length=100, description="changeReview: objects of the manifest not reviewed."
    )


class AnalysisRunStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list)
    phase: RunPhase | None = None
    pod: str | None = Field(default=None, max_length=253)
    queue_position: int | None = Field(
        default=None, ge=1, description="Scheduling: the run's place in its pool's queue (1: next)."
    )
    endpoint: str | None = Field(default=None, max_length=2048)
    model: str | None = Field(default=None, max_length=253)
    catalogue_model: str | None = Field(
        default=None,
        max_length=63,
        description="The model catalogue's model the run was given when accepted: spec.inference.pool or the "
        "catalogue's default for its type or persona (condition ModelReady says which, and whether it fell back "
        "to the operator-level endpoint).",
    )
    attempts: int | None = Field(default=None, ge=0)
    tokens: TokenUsage | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    result: AnalysisResult | None = None
    error: str | None = Field(default=None, max_length=4096)


ANALYSIS_RUN = Kind(
    kind="AnalysisRun",
    plural="analysisruns",
    short_names=("ar", "arun"),
    namespaced=True,
    spec=AnalysisRunSpec,
    status=AnalysisRunStatus,
    description="One unit of analysis: root cause, anomaly detection, a query, an SOP analysis, a capacity forecast or "
    "a change review.",
    columns=(
        PrinterColumn("Type", ".spec.type"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Model", ".status.model"),
        PrinterColumn("Risk", ".status.result.risk", priority=1),
        PrinterColumn("Duration", ".status.durationSeconds", "number"),
        PrinterColumn("Incident", ".spec.incidentRef.name", priority=1),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
