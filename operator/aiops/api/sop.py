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
