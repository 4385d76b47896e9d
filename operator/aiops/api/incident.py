"""Incident: something to diagnose, from a person, Alertmanager or the anomaly detector."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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
    TimelineEntry,
    TimeWindow,
    UtcDatetime,
)

TIMELINE_LIMIT = 50


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    WARNING = "warning"
    LOW = "low"
    INFO = "info"


class IncidentSource(StrEnum):
    MANUAL = "manual"
    ALERTMANAGER = "alertmanager"
    ANOMALY = "anomaly"
    CORRELATION = "correlation"  # a fleet-wide parent the operator opened over Incidents sharing a cause


class TargetKind(StrEnum):
    POD = "Pod"
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"
    JOB = "Job"
    CRONJOB = "CronJob"
    SERVICE = "Service"
    NODE = "Node"
    PVC = "PersistentVolumeClaim"
    NAMESPACE = "Namespace"


class Persona(StrEnum):
    SRE = "sre"
    NETWORK = "network"
    GPU = "gpu"
    DATABASE = "database"


class IncidentPhase(StrEnum):
    NEW = "New"
    TRIAGING = "Triaging"
    ANALYZING = "Analyzing"
    DIAGNOSED = "Diagnosed"
    REMEDIATING = "Remediating"
    RESOLVED = "Resolved"
    ESCALATED = "Escalated"
    FAILED = "Failed"


class ExecutionStatus(StrEnum):
    COMPLETED = "COMPLETED"
    RECOVERED_FALLBACK = "RECOVERED_FALLBACK"
    FAILED = "FAILED"


class StepState(StrEnum):
    PENDING = "Pending"
    AWAITING_APPROVAL = "AwaitingApproval"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class WorkloadReference(Model):
    """The workload the symptoms point at; the namespace defaults to the Incident's."""

    kind: TargetKind
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=DNS_LABEL)


class AlertInfo(Model):
    """The Alertmanager alert behind the Incident, as received."""

    name: str | None = Field(default=None, max_length=253)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str | None = Field(default=None, max_length=64, pattern=r"^[0-9a-f]+$")
    group_key: str | None = Field(default=None, max_length=4096)
    starts_at: UtcDatetime | None = None
    generator_url: str | None = Field(default=None, alias="generatorURL", max_length=2048)  # Alertmanager spelling


class AnalysisOptions(Model):
    persona: Persona | None = None
    model: str | None = Field(default=None, min_length=1, max_length=253)
    llm: bool | None = Field(default=None, description="Ask a model; false = deterministic analyzers only.")


class Approval(Model):
    """A person's go-ahead for one SOP step that changes the cluster."""

    step: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    approved_by: str = Field(min_length=1, max_length=253)
    approved_at: UtcDatetime | None = None
    comment: str | None = Field(default=None, max_length=1024)


class Feedback(Model):
    """An engineer's verdict on the diagnosis; it feeds per-SOP and per-model accuracy."""

    correct: bool
    by: str | None = Field(default=None, max_length=253)
    comment: str | None = Field(default=None, max_length=2048)


class IncidentSpec(Model):
    title: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=16384)
    severity: Severity
    source: IncidentSource | None = None
    cluster_ref: LocalObjectReference | None = Field(
        default=None, description="ManagedCluster; absent = the local cluster."
    )
    target: WorkloadReference | None = None
    alert: AlertInfo | None = None
    window: TimeWindow | None = None
    analysis: AnalysisOptions | None = None
    sop_ref: LocalObjectReference | None = Field(default=None, description="SOP in the same namespace; skips matching.")
    approvals: list[Approval] = Field(default_factory=list, max_length=100)
    feedback: Feedback | None = None
    shared_cause: Cause | None = Field(
        default=None, description="On a fleet-wide parent (source: correlation): the cause its children share."
    )

    @model_validator(mode="after")
    def _consistent(self) -> IncidentSpec:
        if self.source == IncidentSource.ALERTMANAGER and not (self.alert and self.alert.fingerprint):
            raise ValueError("alert.fingerprint is required when source is alertmanager")
        if (self.source == IncidentSource.CORRELATION) != (self.shared_cause is not None):
            raise ValueError("sharedCause is set exactly when source is correlation (the operator opens those)")
        steps = [a.step for a in self.approvals]
        dup = sorted({s for s in steps if steps.count(s) > 1})
        if dup:
            raise ValueError(f"approvals: step {dup[0]!r} is approved more than once")
        return self


class EvidenceSource(StrEnum):
    KUBERNETES = "kubernetes"
    EVENTS = "events"
    ROLLOUT = "rollout"
    PROMETHEUS = "prometheus"
    LOGS = "logs"
    TRACES = "traces"


class EvidenceItem(Model):
    """One observation, with an id the diagnosis must cite."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    source: EvidenceSource
    summary: str = Field(max_length=2048)


class CauseKind(StrEnum):
    IMAGE = "image"  # a container image, by digest where known, else by reference with its tag
    DEPENDENCY = "dependency"  # a host name the workload depends on: DNS name, certificate name, registry
    NODE_IMAGE = "nodeImage"  # the node's OS image and kubelet version
    GPU_DRIVER = "gpuDriver"


class Cause(Model):
    """Something a suspect's failure hangs on, stated so that Incidents on other clusters can be matched on it."""

    kind: CauseKind
    value: str = Field(min_length=1, max_length=512)


class Suspect(Model):
    """A ranked candidate root cause from an analyzer (or the model)."""

    resource: str = Field(min_length=1, max_length=253, description="Kind/name, e.g. Pod/checkout-7d9f-x2kqz.")
    failure_mode: str = Field(min_length=1, max_length=64, description="The analyzer's failure mode, e.g. OOMKilled.")
    score: float = Field(ge=0, le=1)
    reason: str = Field(max_length=2048)
    evidence: list[str] = Field(default_factory=list, max_length=50)
    mitigation: str | None = Field(default=None, max_length=2048)
    causes: list[Cause] = Field(default_factory=list, max_length=10)


class Diagnosis(Model):
    root_cause: str = Field(max_length=2048)
    reasoning: str | None = Field(default=None, max_length=8192)
    mitigation: str | None = Field(default=None, max_length=4096)
    prevention: str | None = Field(default=None, max_length=4096)
    recommendation: str | None = Field(default=None, max_length=4096)
    confidence: int = Field(ge=0, le=100)
    execution_status: ExecutionStatus
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=100)
    suspects: list[Suspect] = Field(default_factory=list, max_length=20)
    model: str | None = Field(default=None, max_length=253)
    prompt_version: str | None = Field(default=None, max_length=64)


class SOPStepStatus(Model):
    id: str = Field(min_length=1, max_length=63)
    type: str | None = Field(default=None, max_length=16)
    title: str | None = Field(default=None, max_length=256)
    state: StepState
    output: str | None = Field(default=None, max_length=4096)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class AuditEntry(Model):
    """One cluster change made by an SOP action: who allowed it, what it touched, before and after."""

    at: datetime
    step: str = Field(min_length=1, max_length=63)
    action: str = Field(min_length=1, max_length=64)
    target: str = Field(max_length=512, description="Kind/namespace/name the action changed.")
    approved_by: str | None = Field(default=None, max_length=253, description="Absent when a policy allowed it.")
    dry_run: str = Field(max_length=1024, description="The server-side dry run's outcome, taken first.")
    before: str | None = Field(default=None, max_length=2048)
    after: str | None = Field(default=None, max_length=2048)
    outcome: str = Field(max_length=1024)


class MatchedSOP(Model):
    name: str = Field(min_length=1, max_length=253)
    score: float | None = Field(default=None, ge=0, le=1)
    reason: str | None = Field(default=None, max_length=1024)
    current: str | None = Field(default=None, max_length=63, description="The step being worked on.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[SOPStepStatus] = Field(default_factory=list, max_length=100)
    audit: list[AuditEntry] = Field(default_factory=list, max_length=100)


class IncidentReference(Model):
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)


class ChildIncident(IncidentReference):
    """One Incident a fleet-wide parent stands for."""

    cluster: str = Field(max_length=253, description="its ManagedCluster, or 'local'")
    root_cause: str | None = Field(default=None, max_length=1024)
    detected_at: datetime | None = None


class NotificationState(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    DEAD = "Dead"  # given up: listed by `aiops notifications --dead`


class NotificationStatus(Model):
    """The last delivery outcome of one stage's notice on one channel."""

    channel: str = Field(min_length=1, max_length=63)
    stage: str = Field(min_length=1, max_length=32)
    state: NotificationState
    attempts: int = Field(default=0, ge=0)
    error: str | None = Field(default=None, max_length=512)
    at: datetime | None = None


class IncidentStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list)
    phase: IncidentPhase | None = None
    diagnosis: Diagnosis | None = None
    sop: MatchedSOP | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list, max_length=TIMELINE_LIMIT)
    analysis_run_ref: LocalObjectReference | None = None
    redaction: dict[str, int] = Field(default_factory=dict, description="What was redacted before the model, by kind.")
    evidence_gaps: list[str] = Field(default_factory=list, max_length=20, description="Sources that could not be read.")
    detected_at: datetime | None = None
    diagnosed_at: datetime | None = None
    resolved_at: datetime | None = None
    parent_ref: IncidentReference | None = Field(
        default=None, description="The fleet-wide parent this Incident was folded into; it notifies for both."
    )
    children: list[ChildIncident] = Field(default_factory=list, max_length=200, description="On a parent only.")
    clusters: list[str] = Field(default_factory=list, max_length=200, description="On a parent: the affected clusters.")
    notifications: list[NotificationStatus] = Field(default_factory=list, max_length=40)


INCIDENT = Kind(
    kind="Incident",
    plural="incidents",
    short_names=("inc", "incs"),
    namespaced=True,
    spec=IncidentSpec,
    status=IncidentStatus,
    description="Something to diagnose: symptoms, an alert or an anomaly, and the diagnosis the operator wrote for it.",
    columns=(
        PrinterColumn("Severity", ".spec.severity"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Root Cause", ".status.diagnosis.rootCause"),
        PrinterColumn("Confidence", ".status.diagnosis.confidence", "integer"),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status', priority=1),
        PrinterColumn("Target", ".spec.target.name", priority=1),
    ),
)
