"""SOP: a runbook with match rules and ordered, typed steps."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from aiops.api.common import DNS_LABEL, Condition, Kind, Model, PrinterColumn, Status
from aiops.api.incident import Severity, TargetKind


class StepType(StrEnum):
    CHECK = "check"
    ACTION = "action"
    DECISION = "decision"
    ESCALATE = "escalate"


class Automation(StrEnum):
    MANUAL = "manual"
    SUGGEST = "suggest"
    AUTO = "auto"


class ActionType(StrEnum):
    """The safe catalogue: the only cluster changes an SOP may ask for."""

    RESTART_POD = "restartPod"
    ROLLOUT_RESTART = "rolloutRestart"
    ROLLBACK_DEPLOYMENT = "rollbackDeployment"
    SCALE_DEPLOYMENT = "scaleDeployment"
    CORDON_NODE = "cordonNode"
    SET_RESOURCES = "setResources"


class Delivery(StrEnum):
    """How an action's change reaches the cluster: a live patch, or a pull request to the Argo CD Application's
    source repository (a live patch of an Argo-managed workload is reverted by its next sync)."""

    LIVE = "live"
    PULL_REQUEST = "pullRequest"
    AUTO = "auto"  # a pull request when the workload is managed by Argo CD, else live


# The actions whose change can be written into a manifest in Git (sops/remediation/gitops.py).
GIT_DELIVERABLE = (ActionType.ROLLBACK_DEPLOYMENT, ActionType.SCALE_DEPLOYMENT, ActionType.SET_RESOURCES)


class Approvers(StrEnum):
    """How many people must approve an action before it runs."""

    AUTOMATIC = "automatic"  # nobody: an `automation: auto` action runs at once
    ONE = "one"
    TWO = "two"  # two distinct people


class ApprovalRule(Model):
    """Who must approve an action step, for the action types and Incident severities it names (empty: any)."""

    actions: list[ActionType] = Field(default_factory=list, description="Action types it applies to; empty: all.")
    severities: list[Severity] = Field(default_factory=list, description="Incident severities; empty: all.")
    approvers: Approvers
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Approvers must be in this group, as the API server authenticated them at approval time.",
    )

    @model_validator(mode="after")
    def _group_needs_people(self) -> ApprovalRule:
        if self.group and self.approvers == Approvers.AUTOMATIC:
            raise ValueError("group: an automatic rule has no approvers to be in a group")
        return self


class ApprovalPolicy(Model):
    """Rules tried in order, the first that matches a step's action type and the Incident's severity decides."""

    rules: list[ApprovalRule] = Field(default_factory=list, max_length=50)


class MatchRules(Model):
    alert_names: list[str] = Field(default_factory=list, max_length=100)
    label_selector: dict[str, str] = Field(default_factory=dict)
    severities: list[Severity] = Field(default_factory=list)
    symptoms: list[str] = Field(
        default_factory=list, max_length=100, description="Keywords matched against the Incident's text and suspects."
    )
    resource_kinds: list[TargetKind] = Field(default_factory=list)


class Action(Model):
    type: ActionType
    params: dict[str, str] = Field(default_factory=dict)


class Guard(Model):
    """A number that must not get worse after an action: one PromQL value, read before the change and after it."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    promql: str = Field(
        min_length=1, max_length=4096, description="One value (the first series'); $NAMESPACE, $TARGET, ... filled in."
    )
    tolerance: float = Field(default=0.1, ge=0, le=10, description="Worse means above before x (1 + tolerance) ...")
    margin: float = Field(default=0, ge=0, description="... + margin (an absolute allowance for noise near zero).")


class Verification(Model):
    """How an action step is judged once its change is made. The change is undone (restored from the snapshot
    taken before it) and the Incident escalated when the check does not hold within timeoutSeconds, or when a
    guard is worse than before the change."""

    promql: str | None = Field(default=None, max_length=4096, description="Holds when it returns a series.")
    command: str | None = Field(default=None, max_length=4096, description="A read-only kubectl command.")
    condition: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        description="A condition type of the changed object that must be True once its controller has seen the "
        "change, e.g. Available (Deployment), Ready (Node).",
    )
    timeout_seconds: int = Field(default=300, ge=1, le=86400)
    settle_seconds: int = Field(
        default=60, ge=0, le=3600, description="Time the change gets before it is judged (rate windows fill)."
    )
    guards: list[Guard] = Field(
        default_factory=list,
        max_length=10,
        description="Empty: the target's container restarts (pod status) and, with Prometheus, its HTTP error "
        "ratio, p99 latency and restarts (kube-state-metrics).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Verification:
        if self.settle_seconds > self.timeout_seconds:
            raise ValueError("settleSeconds: must not exceed timeoutSeconds")
        names = [g.name for g in self.guards]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"guards: names must be unique, repeated: {', '.join(repeated)}")
        return self


class SOPStep(Model):
    id: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    type: StepType
    title: str = Field(min_length=1, max_length=256)
    instructions: str | None = Field(default=None, max_length=8192)
    command: str | None = Field(default=None, max_length=4096, description="Read-only command behind a check.")
    promql: str | None = Field(default=None, max_length=4096)
    action: Action | None = None
    automation: Automation | None = None
    approval_required: bool | None = None
    on_success: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    on_failure: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL)
    timeout_seconds: int | None = Field(default=None, ge=1, le=86400)
    delivery: Delivery | None = Field(
        default=None, description="Action steps: live, pullRequest or auto; unset = AIOPS_GITOPS_DELIVERY."
    )
    verify: Verification | None = Field(
        default=None, description="Action steps: judge the change once made; undo it when it fails or makes worse."
    )


class EscalationPolicy(Model):
    after_minutes: int | None = Field(default=None, ge=1, le=10080)
    contacts: list[str] = Field(default_factory=list, max_length=20)
    channel: str | None = Field(default=None, max_length=256)


class SOPSpec(Model):
    title: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=8192)
    owner: str | None = Field(default=None, max_length=253)
    version: str | None = Field(default=None, max_length=64)
    match: MatchRules | None = None
    steps: list[SOPStep] = Field(min_length=1, max_length=100)
    escalation: EscalationPolicy | None = None
    approval_policy: ApprovalPolicy | None = Field(
        default=None,
        description="Who approves the actions; unmatched steps follow the operator's AIOPS_APPROVAL_POLICY, "
        "then one approver. A step's approvalRequired: false stays automatic.",
    )
    source: str | None = Field(default=None, max_length=65536, description="The runbook's original markdown.")

    @model_validator(mode="after")
    def _steps_form_a_graph(self) -> SOPSpec:
        ids = [s.id for s in self.steps]
        for i, step in enumerate(self.steps):
            if ids.count(step.id) > 1:
                raise ValueError(f"steps[{i}].id: {step.id!r} is used by more than one step")
            if step.type == StepType.ACTION and step.action is None:
                raise ValueError(f"steps[{i}].action: an action step needs an action from the catalogue")
            if step.type != StepType.ACTION and step.action is not None:
                raise ValueError(f"steps[{i}].action: only steps of type action may carry an action")
            if step.delivery is not None and step.action is None:
                raise ValueError(f"steps[{i}].delivery: only action steps have a delivery")
            if step.delivery == Delivery.PULL_REQUEST and step.action.type not in GIT_DELIVERABLE:
                can = ", ".join(GIT_DELIVERABLE)
                raise ValueError(f"steps[{i}].delivery: {step.action.type} cannot be a pull request (only {can})")
            if step.verify is not None and step.type != StepType.ACTION:
                raise ValueError(f"steps[{i}].verify: only action steps are verified")
            if step.automation == Automation.AUTO and step.type != StepType.ACTION and step.type != StepType.CHECK:
                raise ValueError(f"steps[{i}].automation: only checks and actions can run automatically")
            for field in ("on_success", "on_failure"):
                target = getattr(step, field)
                if target is not None and target not in ids:
                    alias = "onSuccess" if field == "on_success" else "onFailure"
                    raise ValueError(f"steps[{i}].{alias}: no step has id {target!r}")
        cycle = _find_cycle(self.steps)
        if cycle:
            raise ValueError(f"steps: the steps form a cycle ({' -> '.join(cycle)})")
        return self


def next_steps(steps: list[SOPStep], i: int) -> tuple[str | None, str | None]:
    """Where step i leads: (after success, after failure). Success goes to onSuccess, else to the next step in
    order (an escalate step ends the runbook); failure goes to onFailure, else nowhere: the runbook escalates."""
    step = steps[i]
    following = steps[i + 1].id if i + 1 < len(steps) and step.type != StepType.ESCALATE else None
    return step.on_success or following, step.on_failure


def _find_cycle(steps: list[SOPStep]) -> list[str]:
    succ = {s.id: [t for t in next_steps(steps, i) if t] for i, s in enumerate(steps)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str]:
        path.append(node)
        state[node] = 1
        for nxt in succ[node]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path)):
                return found
        path.pop()
        state[node] = 2
        return []

    for s in steps:
        if s.id not in state:
            if found := visit(s.id, []):
                return found
    return []


class SOPStats(Model):
    """Effect of the runbook, recomputed from the Incidents that followed it."""

    times_used: int | None = Field(default=None, ge=0)
    resolved: int | None = Field(default=None, ge=0)
    escalated: int | None = Field(default=None, ge=0)
    success_rate: float | None = Field(default=None, ge=0, le=1, description="resolved / (resolved + escalated)")
    mean_time_to_resolve_seconds: float | None = Field(default=None, ge=0)
    feedback_count: int | None = Field(default=None, ge=0)
    diagnosis_accuracy: float | None = Field(default=None, ge=0, le=1, description="Share of feedback saying correct.")


class SOPStatus(Status):
    observed_generation: int | None = Field(default=None, ge=0)
    conditions: list[Condition] = Field(default_factory=list)
    step_count: int | None = Field(default=None, ge=0)
    validation_errors: list[str] = Field(default_factory=list, max_length=50)
    stats: SOPStats | None = None


SOP = Kind(
    kind="SOP",
    plural="sops",
    short_names=("sop",),
    namespaced=True,
    spec=SOPSpec,
    status=SOPStatus,
    description="A runbook: match rules and ordered steps (checks, typed actions, decisions, escalation).",
    columns=(
        PrinterColumn("Title", ".spec.title", priority=1),
        PrinterColumn("Steps", ".status.stepCount", "integer"),
        PrinterColumn("Used", ".status.stats.timesUsed", "integer"),
        PrinterColumn("Success", ".status.stats.successRate", "number"),
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Age", ".metadata.creationTimestamp", "date"),
    ),
)
