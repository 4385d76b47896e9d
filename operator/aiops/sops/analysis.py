"""SOP analysis: a free-text runbook becomes a structured SOP draft and a list of improvements.

    runbook text -> Redactor -> prompt (sop-v2) -> gateway.ask(SOPAnswer) -> SOPSpec -> lint -> findings

The model answers with a reduced shape (SOPAnswer: what json_schema structured output can carry, no
free-form maps, lists instead of `params` dicts) plus its review of the runbook as written. The answer is
trusted only once it converts into an SOPSpec: a draft whose step graph is broken (a branch to a missing
step, a cycle, duplicate ids, an action step without a catalogue action) goes back to the model as a
repair message, like any schema error, within the gateway's bounded repair attempts. Deterministic lint
findings (aiops.sops.sopfile.lint on the draft) are merged with the model's; a model finding that lint already
reports (same rule, same step) is dropped.

Without a model there is nothing to draft from prose, but runbook markdown (sop-library/README.md) needs
none: when the text parses as a runbook, the analysis is the parsed spec and its lint findings.

Everything here is a plain function of its inputs (the gateway call aside); aiops.runs.sopanalysis records the
outcome on the AnalysisRun.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from aiops.api.analysisrun import FindingSeverity, FindingSource, InferenceSettings, SOPFinding
from aiops.api.common import DNS_LABEL, Model, field_path
from aiops.api.sop import ActionType, Automation, SOPSpec
from aiops.diagnosis.redaction import Redactor
from aiops.inference import gateway
from aiops.inference.gateway import GatewayConfig
from aiops.inference.prompts import SOP_PROMPT_VERSION, build_sop_messages
from aiops.sops import sopfile

# A draft needs room: a runbook of ten steps is 1000-2000 tokens of JSON.
MIN_MAX_TOKENS = 2048
MAX_MARKDOWN = 131072  # AnalysisResult.sopMarkdown
MAX_FINDINGS = 100  # AnalysisResult.findings
SCHEMA_NAME = "sop_draft"
NO_MODEL = "no model is configured (AIOPS_LLM_BASE_URL)"

# --- what the model answers ---------------------------------------------------------------------
# Docstrings and descriptions below are sent to the model as part of the schema. Every bound is at most
# SOPSpec's, so a draft that validates here fails SOPSpec only on its step graph.


class _Draft(Model):
    model_config = ConfigDict(str_strip_whitespace=True)


class DraftParam(_Draft):
    """One parameter of a catalogue action."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-zA-Z][a-zA-Z0-9]*$")
    value: str = Field(min_length=1, max_length=253)


class DraftAction(_Draft):
    """A change from the safe catalogue."""

    type: ActionType
    params: list[DraftParam] = Field(default_factory=list, max_length=5)


def _branch(outcome: str) -> Any:
    return Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description=f"The id of the step after {outcome}, or null.",
    )


def _instructions() -> Any:
    return Field(default="", max_length=1200, description="What a person does and what the results mean.")


def _query(what: str) -> Any:
    return Field(default=None, max_length=600, description=what)


# One shape per step type (a union tagged by `type`), so a grammar-constrained server cannot even produce
# an action step without an action, or automation on a decision: the JSON schema itself rules them out.
class _DraftStep(_Draft):
    id: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    type: str
    title: str = Field(min_length=1, max_length=200)


class DraftCheck(_DraftStep):
    """Reads something; passes when the condition holds."""

    type: Literal["check"]
    promql: str | None = _query("The PromQL query, with the threshold in it (> 0.05).")
    command: str | None = _query("A read-only kubectl command.")
    automation: Automation | None = None
    on_success: str | None = _branch("success")
    on_failure: str | None = _branch("failure")
    instructions: str = _instructions()


class DraftDecision(_DraftStep):
    """A yes/no question."""

    type: Literal["decision"]
    promql: str | None = _query("The PromQL query that answers it, if any.")
    command: str | None = _query("A read-only kubectl command that answers it, if any.")
    on_success: str | None = _branch("yes")
    on_failure: str | None = _branch("no")
    instructions: str = _instructions()


class DraftActionStep(_DraftStep):
    """A change from the safe catalogue."""

    type: Literal["action"]
    action: DraftAction
    automation: Automation | None = None
    approval_required: bool | None = None
    on_success: str | None = _branch("success")
    on_failure: str | None = _branch("failure")
    instructions: str = _instructions()


class DraftEscalate(_DraftStep):
    """Hands over to people."""

    type: Literal["escalate"]
    instructions: str = _instructions()


DraftStep = Annotated[DraftCheck | DraftDecision | DraftActionStep | DraftEscalate, Field(discriminator="type")]


Keyword = Annotated[str, Field(min_length=1, max_length=128)]


class DraftMatch(_Draft):
    """What the SOP is for."""

    alert_names: list[Keyword] = Field(default_factory=list, max_length=20)
    symptoms: list[Keyword] = Field(default_factory=list, max_length=20)


class DraftEscalation(_Draft):
    """Who takes over when the steps do not help."""

    after_minutes: int | None = Field(default=None, ge=1, le=10080)
    contacts: list[Keyword] = Field(default_factory=list, max_length=10)
    channel: str | None = Field(default=None, max_length=128)


class FindingRule(StrEnum):
    UNVERIFIED_ACTION = "unverified-action"
    NO_ROLLBACK = "no-rollback"
    ACTION_WITHOUT_APPROVAL = "action-without-approval"
    UNREACHABLE_STEP = "unreachable-step"
    CHECK_WITHOUT_THRESHOLD = "check-without-threshold"
    ACTION_OUTSIDE_CATALOGUE = "action-outside-catalogue"
    MISSING_ESCALATION = "missing-escalation"
    AMBIGUOUS_INSTRUCTION = "ambiguous-instruction"
    OTHER = "other"


# What an on-call engineer must fix before trusting the runbook; the rest is advice.
WARNING_RULES = frozenset(
    {
        FindingRule.UNVERIFIED_ACTION,
        FindingRule.NO_ROLLBACK,
        FindingRule.ACTION_WITHOUT_APPROVAL,
        FindingRule.UNREACHABLE_STEP,
        FindingRule.CHECK_WITHOUT_THRESHOLD,
        FindingRule.MISSING_ESCALATION,
    }
)


class ModelFinding(_Draft):
    """A problem of the runbook as written."""

    rule: FindingRule
    step: str | None = Field(default=None, max_length=63, description="The step's id, or null for the whole SOP.")
    message: str = Field(min_length=1, max_length=300)


class SOPAnswer(_Draft):
    """The runbook as a structured SOP draft, and a review of it."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    match: DraftMatch = Field(default_factory=DraftMatch)
    steps: list[DraftStep] = Field(min_length=1, max_length=25)
    escalation: DraftEscalation | None = None
    findings: list[ModelFinding] = Field(default_factory=list, max_length=15)


SOP_ANSWER_SCHEMA, BOUNDED_SOP_ANSWER_SCHEMA = gateway.response_schemas(SOPAnswer)


# --- from the answer to an SOPSpec --------------------------------------------------------------


def _step(s: DraftCheck | DraftDecision | DraftActionStep | DraftEscalate) -> dict:
    out = {
        "id": s.id,
        "type": s.type,
        "title": s.title,
        "instructions": s.instructions or None,
        "promql": getattr(s, "promql", None) or None,
        "command": getattr(s, "command", None) or None,
        "automation": getattr(s, "automation", None),
        "approvalRequired": getattr(s, "approval_required", None),
        "onSuccess": getattr(s, "on_success", None),
        "onFailure": getattr(s, "on_failure", None),
    }
    if isinstance(s, DraftActionStep):
        out["action"] = {"type": s.action.type, "params": {p.name: p.value for p in s.action.params}}
    return {k: v for k, v in out.items() if v is not None}


def to_spec(answer: SOPAnswer) -> SOPSpec:
    """The draft as an SOPSpec; raises pydantic's ValidationError for a broken step graph."""
    data: dict = {"title": answer.title, "steps": [_step(s) for s in answer.steps]}
    if answer.description:
        data["description"] = answer.description
    if answer.match.alert_names or answer.match.symptoms:
        data["match"] = {"alertNames": answer.match.alert_names, "symptoms": answer.match.symptoms}
    if answer.escalation is not None:
        e = answer.escalation
        data["escalation"] = {
            k: v
            for k, v in {"afterMinutes": e.after_minutes, "contacts": e.contacts, "channel": e.channel}.items()
            if v not in (None, [])
        }
    return SOPSpec.model_validate(data)


def check(answer: SOPAnswer) -> list[str]:
    """What keeps a schema-valid answer from being used, worded for the model (the repair message)."""
    ids = [s.id for s in answer.steps]
    listed = ", ".join(ids)
    problems = []
    for i, s in enumerate(answer.steps):
        names = [p.name for p in s.action.params] if isinstance(s, DraftActionStep) else []
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"steps[{i}].action.params: {name!r} is given more than once")
    for i, f in enumerate(answer.findings):
        if f.step is not None and f.step not in ids:
            problems.append(f"findings[{i}].step: no step has id {f.step!r}; use one of: {listed}, or null")
    try:
        to_spec(answer)
    except ValidationError as exc:
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            where = field_path(err["loc"])
            text = f"{where}: {message}" if where else message
            if "no step has id" in message:
                text += f"; the step ids are: {listed}"
            problems.append(text)
    return problems


# --- findings -----------------------------------------------------------------------------------

_STEP_FIELD = re.compile(r"^steps\[(\d+)\](?:\.(.+))?$")


def lint_findings(spec: SOPSpec) -> list[SOPFinding]:
    """sopfile.lint on the draft, with each issue placed on its step's id."""
    out = []
    for issue in sopfile.lint(spec):
        step, message = None, issue.message
        if issue.field and (m := _STEP_FIELD.match(issue.field)):
            step = spec.steps[int(m[1])].id
            if m[2]:
                message = f"{m[2]}: {message}"
        severity = FindingSeverity.WARNING if issue.severity == sopfile.IssueSeverity.WARNING else FindingSeverity.INFO
        out.append(
            SOPFinding(
                source=FindingSource.LINT, rule=issue.rule or "lint", step=step, severity=severity, message=message
            )
        )
    return out


def model_findings(answer: SOPAnswer) -> list[SOPFinding]:
    return [
        SOPFinding(
            source=FindingSource.MODEL,
            rule=f.rule,
            step=f.step,
            severity=FindingSeverity.WARNING if f.rule in WARNING_RULES else FindingSeverity.INFO,
            message=f.message,
        )
        for f in answer.findings
    ]


def merge(lint: list[SOPFinding], model: list[SOPFinding]) -> list[SOPFinding]:
    """Lint first (deterministic), then the model's findings that lint does not already make; warnings
    before information within each, bounded."""
    seen = {(f.rule, f.step) for f in lint}
    extra = [f for f in model if (f.rule, f.step) not in seen]

    def order(findings: list[SOPFinding]) -> list[SOPFinding]:
        return sorted(findings, key=lambda f: f.severity != FindingSeverity.WARNING)

    return (order(lint) + order(extra))[:MAX_FINDINGS]


# --- the analysis -------------------------------------------------------------------------------


def draft_name(title: str, fallback: str) -> str:
    """An object name for the draft, from its title: lowercase DNS label, at most 63 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[: sopfile.MAX_NAME].strip("-")
    return slug if slug and re.match(DNS_LABEL, slug) else fallback


def markdown(name: str, spec: SOPSpec) -> tuple[str | None, str | None]:
    """(the draft as runbook markdown, None) or (None, why it cannot be)."""
    try:
        text = sopfile.render(name, spec)
    except ValueError as exc:
        return None, str(exc)
    if len(text) > MAX_MARKDOWN:
        return None, f"the markdown would be {len(text)} characters, more than {MAX_MARKDOWN}"
    return text, None


Outcome = Literal["completed", "lint-only", "no-model", "invalid", "unreachable"]


@dataclass
class SOPAnalysis:
    outcome: Outcome
    name: str  # the draft's object name
    spec: SOPSpec | None = None  # validated; no `source`
    markdown: str | None = None
    markdown_error: str | None = None
    findings: list[SOPFinding] = field(default_factory=list)
    redaction: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    model: str | None = None
    endpoint: str | None = None
    prompt_version: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # chat completions sent, repairs and transport retries included
    errors: list[str] = field(default_factory=list)  # every problem met with the model, in order
    duration_s: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.outcome in ("completed", "lint-only")

    def summary(self) -> str:
        if not self.succeeded or self.spec is None:
            return f"No SOP draft: {self.error}"
        by = {s: sum(f.source == s for f in self.findings) for s in FindingSource}
        text = (
            f"SOP draft {self.name!r} ({self.spec.title}): {len(self.spec.steps)} steps, {len(self.findings)} "
            f"findings ({by[FindingSource.LINT]} lint, {by[FindingSource.MODEL]} model)"
        )
        if self.outcome == "lint-only":
            text += f"; {NO_MODEL}, so the runbook markdown was parsed and linted without one"
        if self.markdown_error:
            text += f"; no markdown: {self.markdown_error}"
        return text[:8192]


def gateway_config(base: GatewayConfig | None, inference: InferenceSettings | None) -> GatewayConfig | None:
    """The operator's model with the run's overrides (model, maxTokens, temperature); None without a model.

    Raises ValueError for an endpoint or a pool other than the configured one: the run asked for its text to
    go somewhere specific, and sending it elsewhere instead would break that promise.
    """
    inference = inference or InferenceSettings()
    if inference.pool:
        raise ValueError(f"spec.inference.pool {inference.pool!r}: inference pools are not available yet")
    if inference.endpoint and (base is None or inference.endpoint.rstrip("/") != base.base_url.rstrip("/")):
        raise ValueError(
            f"spec.inference.endpoint {inference.endpoint!r}: only the operator's configured model endpoint "
            f"({base.base_url if base else 'none'}) can be used; remove the field to use it"
        )
    if base is None:
        return None
    changes: dict = {"max_tokens": inference.max_tokens or max(base.max_tokens, MIN_MAX_TOKENS)}
    if inference.model:
        changes["model"] = inference.model
    if inference.temperature is not None:
        changes["temperature"] = inference.temperature
    return replace(base, **changes)


def analyse(
    text: str, config: GatewayConfig | None, fallback_name: str, *, sleep: Callable[[float], None] = time.sleep
) -> SOPAnalysis:
    """The SOP analysis of `text`; never raises for what the model or its server does."""
    started = time.monotonic()
    if config is None:
        result = _without_model(text, fallback_name)
    else:
        result = _with_model(text, config, fallback_name, sleep)
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _without_model(text: str, fallback_name: str) -> SOPAnalysis:
    try:
        runbook = sopfile.parse(text, f"{fallback_name}.md")
    except sopfile.SOPFileError as err:
        first = err.issues[0]
        return SOPAnalysis(
            outcome="no-model",
            name=fallback_name,
            error=(
                f"{NO_MODEL}: free text needs a model to become an SOP draft, and the text is not runbook markdown "
                f"(sop-library/README.md), which is analysed without one: line {first.line}: {first.message}"
            ),
        )
    spec = runbook.spec.model_copy(update={"source": None})
    md, md_error = markdown(runbook.name, spec)
    return SOPAnalysis(
        outcome="lint-only",
        name=runbook.name,
        spec=spec,
        markdown=md,
        markdown_error=md_error,
        findings=merge(lint_findings(spec), []),
    )


def _with_model(text: str, config: GatewayConfig, fallback_name: str, sleep: Callable[[float], None]) -> SOPAnalysis:
    redactor = Redactor()
    safe = redactor.redact(text)
    schema_in_prompt = SOP_ANSWER_SCHEMA if config.structured_output == "json_object" else None
    asked = gateway.ask(
        config,
        build_sop_messages(safe, schema=schema_in_prompt),
        SOPAnswer,
        schema_name=SCHEMA_NAME,
        schemas=(SOP_ANSWER_SCHEMA, BOUNDED_SOP_ANSWER_SCHEMA),
        check=check,
        consequence="No SOP draft was made",
        prompt_version=SOP_PROMPT_VERSION,
        sleep=sleep,
    )
    result = SOPAnalysis(
        outcome=asked.status,
        name=fallback_name,
        redaction=redactor.report(),
        error=asked.error,
        model=asked.model or config.model,
        endpoint=config.base_url,
        prompt_version=SOP_PROMPT_VERSION,
        prompt_tokens=asked.prompt_tokens,
        completion_tokens=asked.completion_tokens,
        requests=asked.attempts,
        errors=asked.errors,
    )
    if asked.status != "completed" or asked.answer is None:
        return result
    # Placeholders stay in the draft: status is readable by more people than the wiki page was.
    spec = to_spec(asked.answer)  # check() made sure it converts
    result.name = draft_name(spec.title, fallback_name)
    result.spec = spec
    result.markdown, result.markdown_error = markdown(result.name, spec)
    result.findings = merge(lint_findings(spec), model_findings(asked.answer))
    return result
