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
    FORECAST = "forecast"  # the periodic capacity forecast: a resource reaches a limit inside the warn horizon


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
    AWAITING_SYNC = "AwaitingSync"  # delivered as a pull request: until it is merged and Argo CD has synced it
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


class ApprovalVerification(Model):
    """What the operator's admission webhook saw of the approver, sealed with the operator's key: anyone else's
    value fails the seal, and the approval counts as unverified (docs/security.md)."""

    groups: list[str] = Field(default_factory=list, max_length=100, description="The approver's groups.")
    seal: str = Field(min_length=1, max_length=128)


class Approval(Model):
    """A person's go-ahead for one SOP step that changes the cluster."""

    step: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    approved_by: str = Field(
        min_length=1, max_length=253, description="The approver's Kubernetes username: the admission webhook's check."
    )
    approved_at: UtcDatetime | None = None
    comment: str | None = Field(default=None, max_length=1024)
    verification: ApprovalVerification | None = Field(
        default=None, description="Written by the admission webhook only; absent: the approval is unverified."
    )


class Feedback(Model):
    """An engineer's verdict on the diagnosis; it feeds per-SOP and per-model accuracy. With a corrected root
    cause it becomes a labelled example: shown to the model on similar incidents, exported for fine-tuning."""

    correct: bool
    by: str | None = Field(default=None, max_length=253)
    comment: str | None = Field(default=None, max_length=2048)
    root_cause: str | None = Field(
        default=None,
        min_length=1,
        max_length=400,  # what a model's rootCause may hold (aiops.inference.gateway.ModelAnswer)
        description="The corrected root cause, with correct: false: what the diagnosis should have said.",
    )

    @model_validator(mode="after")
    def _correction_of_a_wrong_diagnosis(self) -> Feedback:
        if self.root_cause is not None and self.correct:
            raise ValueError("rootCause corrects a wrong diagnosis: set correct: false, or leave rootCause out")
        return self


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
        # Two approvals of one step are two people (a policy may ask for two); one person counts once.
        seen: dict[tuple[str, str], int] = {}
        for i, a in enumerate(self.approvals):
            if (first := seen.setdefault((a.step, a.approved_by), i)) != i:
                raise ValueError(
                    f"approvals[{i}]: {a.approved_by} already approved step {a.step!r} in approvals[{first}]"
                )
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


class PullRequestState(StrEnum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"  # closed without merging


class PullRequestStatus(Model):
    """An action delivered as a pull request to the source repository of the workload's Argo CD Application."""

    url: str = Field(max_length=2048)
    number: int = Field(ge=1, description="The pull request's number (GitLab: the merge request's iid).")
    forge: str = Field(max_length=16, description="github, gitlab or gitea")
    repository: str = Field(max_length=2048, description="The Application's spec.source.repoURL.")
    branch: str = Field(max_length=255)
    base: str = Field(max_length=255)
    files: list[str] = Field(default_factory=list, max_length=20, description="The files the commit changed.")
    commit: str = Field(max_length=64, description="The commit pushed to the branch.")
    application: str = Field(max_length=317, description="namespace/name of the Argo CD Application.")
    source: int = Field(default=0, ge=0, description="The index of the Application's source (spec.sources).")
    state: PullRequestState
    merge_commit: str | None = Field(default=None, max_length=64)
    synced_revision: str | None = Field(
        default=None, max_length=64, description="The Application's synced revision when last looked at."
    )


class SOPStepStatus(Model):
    id: str = Field(min_length=1, max_length=63)
    type: str | None = Field(default=None, max_length=16)
    title: str | None = Field(default=None, max_length=256)
    state: StepState
    output: str | None = Field(default=None, max_length=4096)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pull_request: PullRequestStatus | None = None


class AuditEntry(Model):
    """One cluster change made by an SOP action: who allowed it, what it touched, before and after."""

    at: datetime
    step: str = Field(min_length=1, max_length=63)
    action: str = Field(min_length=1, max_length=64)
    target: str = Field(max_length=512, description="Kind/namespace/name the action changed.")
    approved_by: str | None = Field(
        default=None,
        max_length=253,
        description="The approvers, comma-separated, each marked (unverified) when no webhook vouched for it; "
        "absent when a policy allowed the action.",
    )
    dry_run: str = Field(max_length=1024, description="The server-side dry run's outcome, taken first.")
    before: str | None = Field(default=None, max_length=2048)
    after: str | None = Field(default=None, max_length=2048)
    outcome: str = Field(max_length=1024)
    pull_request: str | None = Field(
        default=None, max_length=2048, description="The pull request that carries the change, when delivered by Git."
    )
    undo: bool | None = Field(default=None, description="True: this entry puts back the step's earlier change.")
    reason: str | None = Field(default=None, max_length=1024, description="On an undo: why the change was undone.")


SNAPSHOT_VALUE_MAX = 32768  # characters of JSON per snapshotted field; a bigger one is not changed at all


class ChangeState(StrEnum):
    SNAPSHOT_TAKEN = "SnapshotTaken"  # recorded before the change, which the next pass makes
    APPLIED = "Applied"  # made; the step asks for no verification
    VERIFYING = "Verifying"
    VERIFIED = "Verified"
    NOT_MADE = "NotMade"  # refused, failed, or the object changed after the snapshot: nothing to undo
    UNDONE = "Undone"
    NOT_UNDONE = "NotUndone"  # it should have been undone and could not be: a person must


class FieldSnapshot(Model):
    """One field of the changed object, as JSON: before the change (the snapshot) and after it."""

    path: str = Field(max_length=256, description="JSON pointer in the object, e.g. /spec/template.")
    before: str | None = Field(default=None, max_length=SNAPSHOT_VALUE_MAX, description="Absent: the field was unset.")
    after: str | None = Field(default=None, max_length=SNAPSHOT_VALUE_MAX)


class GuardReading(Model):
    name: str = Field(min_length=1, max_length=63)
    before: float | None = None
    after: float | None = None
    note: str | None = Field(default=None, max_length=512, description="Where it was read from, or why it was not.")


class Change(Model):
    """One action's change as the operator keeps it: the snapshot taken before it, the guards, what became of it."""

    step: str = Field(min_length=1, max_length=63)
    action: str = Field(min_length=1, max_length=64)
    target: str = Field(max_length=512, description="Kind/namespace/name.")
    path: str = Field(max_length=512, description="The API path the snapshot was read from and is restored to.")
    fields: list[FieldSnapshot] = Field(default_factory=list, max_length=4)
    state: ChangeState
    taken_at: datetime
    applied_at: datetime | None = None
    finished_at: datetime | None = None
    guards: list[GuardReading] = Field(default_factory=list, max_length=20)
    reason: str | None = Field(default=None, max_length=1024, description="Why it was not made, or undone.")


class MatchedSOP(Model):
    name: str = Field(min_length=1, max_length=253)
    score: float | None = Field(default=None, ge=0, le=1)
    reason: str | None = Field(default=None, max_length=1024)
    current: str | None = Field(default=None, max_length=63, description="The step being worked on.")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[SOPStepStatus] = Field(default_factory=list, max_length=100)
    audit: list[AuditEntry] = Field(default_factory=list, max_length=100)
    changes: list[Change] = Field(default_factory=list, max_length=100)


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


class PostmortemStatus(Model):
    """Where the resolved Incident's postmortem is stored (S3-compatible object storage, docs/knowledge.md)."""

    bucket: str = Field(max_length=63)
    key: str = Field(max_length=1024, description="The object key: postmortems/<namespace>/<name>-<uid>.md.")
    url: str = Field(max_length=2048, description="Path-style URL of the object at the configured endpoint.")
    written_at: UtcDatetime
    sha256: str = Field(max_length=64, pattern=r"^[0-9a-f]{64}$", description="Of the Markdown as stored.")
    generation: int = Field(ge=0, description="The Incident's generation it was written from; feedback rewrites it.")


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
    children: list[ChildIncident] = Field(
        default_factory=list, max_length=200, description="On a parent only: its first 200 children by detection."
    )
    child_count: int | None = Field(
        default=None, ge=0, description="On a parent: how many Incidents it stands for, `children` listing 200 at most."
    )
    clusters: list[str] = Field(default_factory=list, max_length=200, description="On a parent: the affected clusters.")
    notifications: list[NotificationStatus] = Field(default_factory=list, max_length=40)
    postmortem: PostmortemStatus | None = None


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
