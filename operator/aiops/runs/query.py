"""query runs: a question in plain words -> the agent (aiops.inference.agent) with the read-only tools
(aiops.tools) -> the answer, its citations and every tool call, in the run's status.

What a question may reach: the run's own namespace, or the whole cluster for a run in the operator's
namespace (whoever may create runs there administers the operator). A run in `shop` cannot read
`payments` through the operator's wider rights.

Before any model sees it, a question that asks for a change, a secret or a transfer is refused here
(`refusal`): the tools cannot write and never return Secrets anyway, but the refusal is said plainly in
status instead of being left to a model's judgement. Instructions hidden in the data the tools return
(logs, annotations) are handled by the fencing and by what the tools can do: a call to a tool outside the
list is recorded as refused and never run.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace

from pydantic import ValidationError

from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisRunStatus, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.clusters import suspension
from aiops.clusters.access import ClusterAccessError, cluster_access
from aiops.core.status import StatusBuilder, write
from aiops.inference import agent
from aiops.inference.gateway import GatewayConfig
from aiops.runs.common import Context, fail_run, start_attempt, still_ours
from aiops.sops.analysis import gateway_config
from aiops.tools import REGISTRY, ToolContext, survey

log = logging.getLogger(__name__)

# A change asked for: an imperative verb that changes the cluster at the start of the question (after a
# polite opening), or a kubectl command that writes anywhere in it.
_VERBS = (
    r"(?:delete|remove|restart|roll\s?back|scale|patch|apply|edit|exec|kill|drain|cordon|uncordon|evict|create|"
    r"update|label|annotate|taint|install|upgrade|uninstall|shut\s?down|stop|terminate|reboot|deploy|disable|"
    r"enable|suspend|resume|modify|change|set|replace|wipe|purge|truncate|drop)"
)
_CHANGE = re.compile(
    r"(?:^|[.;!?]\s+)\W*(?:(?:please|kindly|now|then|go ahead and|can you|could you|would you|will you|"
    rf"i want you to|you must)\s+)*{_VERBS}\b"
    # "... and patch the deployment": a second order; "crash and restart?" (no object) is a question.
    rf"|\b(?:and|then)\s+{_VERBS}\s+(?:the|a|an|all|every|it|them|this|that|its|their|my|our)\b",
    re.IGNORECASE,
)
_KUBECTL_WRITE = re.compile(
    r"\b(?:kubectl|oc|helm)\s+(?:-\S+\s+)*(?:delete|apply|patch|scale|exec|edit|drain|cordon|create|replace|"
    r"set|label|annotate|taint|rollout\s+(?:restart|undo)|install|upgrade|uninstall)\b",
    re.IGNORECASE,
)
_SECRET = re.compile(
    r"\b(?:show|print|reveal|give|dump|read|get|cat|decode|display|list|tell|output|return|paste|fetch|"
    r"what(?:'s|\s+is|\s+are))\b[^.?!\n]{0,80}?\b(?:secrets?|passwords?|passwd|tokens?|credentials?|"
    r"private\s+keys?|api\s+keys?|kubeconfigs?|ssh\s+keys?|tls\s+keys?)\b",
    re.IGNORECASE,
)
_TRANSFER = re.compile(
    r"\b(?:send|post|upload|e-?mail|forward|exfiltrate|copy|curl|wget|transmit|leak)\b[^\n]{0,120}?"
    r"(?:https?://|\b\S+@\S+\.\w+|\bto\s+(?:my|an?|the)\s+(?:server|webhook|endpoint|bucket|address|url))",
    re.IGNORECASE,
)


def refusal(question: str) -> str | None:
    """Why the question is refused before any model sees it, or None."""
    if _CHANGE.search(question) or _KUBECTL_WRITE.search(question):
        return "the question asks for a change to the cluster; query runs only read it (use an SOP step for changes)"
    if _SECRET.search(question):
        return "the question asks for secrets or credentials; query runs never read or reveal them"
    if _TRANSFER.search(question):
        return "the question asks to send data somewhere; query runs only answer in their own status"
    return None


def execute(ctx: Context, run: dict) -> None:
    """One attempt at a query run; every outcome ends in status, never in an exception."""
    meta = run["metadata"]
    try:
        spec = AnalysisRunSpec.model_validate(run.get("spec") or {})
        config = gateway_config(ctx.settings.llm, spec.inference)
    except (ValidationError, ValueError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        fail_run(ctx, run, f"cannot answer: {message}")
        return
    inputs = spec.inputs
    question = inputs.question or ""
    if (why := refusal(question)) is not None:
        record_refusal(ctx, run, why)
        return
    if config is None:
        no_model(ctx, run)
        return
    held = suspension.current(spec.cluster_ref.name if spec.cluster_ref else None, ctx.settings.namespace, ctx.client)
    if held is not None:
        no_model(ctx, run, f"the model was not called: {held.message()}; ask again once it is lifted", Reason.SUSPENDED)
        return
    try:
        access = cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, ctx.settings)
    except ClusterAccessError as exc:
        fail_run(ctx, run, f"cannot answer: {exc}")
        return
    namespace = meta["namespace"]
    everywhere = namespace == ctx.settings.namespace
    tools_ctx = ToolContext.from_access(
        access,
        ctx.settings.postgres_dsn,
        ctx.settings.postgres_dsn_file,
        namespaces=None if everywhere else frozenset({namespace}),
    )
    run = start_attempt(ctx, run, f"answering with {config.model}: {question[:200]}")
    try:
        outcome = ask(
            config,
            spec,
            namespace,
            everywhere,
            tools_ctx,
            agent.Budget(ctx.settings.query_max_steps, ctx.settings.query_max_tokens, ctx.settings.query_max_seconds),
            ctx.settings.tool_calling,
        )
    except Exception as exc:  # noqa: BLE001  (a bug in one analysis must not take the operator down)
        log.exception("query %s/%s crashed", namespace, meta["name"])
        fail_run(ctx, run, f"internal error: {type(exc).__name__}: {exc}")
        return
    record(ctx, run, outcome, config.base_url)


def ask(
    config: GatewayConfig,
    spec: AnalysisRunSpec,
    namespace: str,
    everywhere: bool,
    tools_ctx: ToolContext,
    budget: agent.Budget,
    mode: agent.Mode,
) -> agent.Outcome:
    """The agent on the run's question: first the survey of what the question (and its target) names, in the
    target's namespace, the one the question names (a run that reads everywhere) or the run's
    (aiops.tools.survey), then the loop (aiops.inference.agent)."""
    inputs = spec.inputs
    target = inputs.target
    question = inputs.question or ""
    # A run that may read every namespace surveys the one the question names, if any.
    where = (target.namespace if target else None) or (
        survey.named_namespace(question, tools_ctx) if everywhere else None
    )
    opening = survey.plan(question, where or namespace, tools_ctx, target.name if target else None)
    return agent.answer(
        replace(config, max_tokens=min(config.max_tokens, 1024)),
        question,
        context(spec, namespace, everywhere),
        [agent.ToolSpec(t.name, t.description, t.schema()) for t in REGISTRY.tools.values()],
        lambda name, arguments: _run_tool(tools_ctx, name, arguments),
        budget,
        mode=mode,
        opening=opening,
    )


def context(spec: AnalysisRunSpec, namespace: str, everywhere: bool) -> str:
    """What the agent is told besides the question: the target, the window, what it may read."""
    inputs = spec.inputs
    lines = [f"namespace: {namespace}" + ("" if everywhere else " (the tools read this namespace only)")]
    if inputs.target:
        t = inputs.target
        lines.append(f"target: {t.kind}/{t.namespace or namespace}/{t.name}")
    if inputs.window:
        w = inputs.window
        if w.start:
            lines.append(f"window: {w.start:%Y-%m-%dT%H:%M:%SZ} .. {f'{w.end:%Y-%m-%dT%H:%M:%SZ}' if w.end else 'now'}")
        elif w.lookback_minutes:
            lines.append(f"window: the last {w.lookback_minutes} minutes")
    if spec.cluster_ref:
        lines.append(f"cluster: {spec.cluster_ref.name}")
    lines += [f"PromQL the asker suggests: {q}" for q in inputs.queries]
    return "\n".join(lines)


def _run_tool(tools_ctx: ToolContext, name: str, arguments: dict) -> agent.ToolOutput:
    result = REGISTRY.call(name, arguments, tools_ctx)
    return agent.ToolOutput(str(result.status), result.text)


def _record(call: agent.Call) -> dict:
    return {
        "id": call.id,
        "tool": call.tool,
        "arguments": json.dumps(call.arguments, sort_keys=True, default=str)[:1024],
        "status": call.status,
        "excerpt": call.excerpt[:400],
        "seconds": call.seconds,
    }


def record(ctx: Context, run: dict, outcome: agent.Outcome, endpoint: str) -> None:
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    calls = [_record(c) for c in outcome.calls]
    failed = bool(outcome.calls) and all(c.status not in agent.USABLE for c in outcome.calls)
    answer = outcome.answer
    result: dict = {
        "answer": answer.answer[:8192] if answer else None,
        "refusal": answer.refusal[:1024] if answer and answer.refusal else None,
        "citations": [_record(c) for c in outcome.cited()][:12],
        "toolCalls": calls[-50:],
        "steps": outcome.steps,
        "promptVersion": outcome.prompt_version,
    }
    b.status.completed_at = b.now
    b.status.duration_seconds = outcome.seconds
    b.status.model = outcome.model if outcome.model and outcome.model != "-" else None
    b.status.endpoint = endpoint
    b.status.tokens = {"prompt": outcome.prompt_tokens, "completion": outcome.completion_tokens}
    spent = f"{outcome.steps} model replies, {len(outcome.calls)} tool calls, {outcome.seconds:.1f}s"
    if outcome.status not in ("answered", "refused") and failed:
        # Said as such: what to fix is the tools' reach (a namespace, a backend), not the model.
        reasons = "; ".join(f"{c.id} {c.tool}: {c.output[:160]}" for c in outcome.calls[:3])
        outcome.error = f"every tool call failed ({reasons}); {outcome.error or outcome.status}"
        reason = Reason.TOOLS_FAILED
    else:
        reason = {
            "answered": Reason.COMPLETED,
            "refused": Reason.QUESTION_REFUSED,
            "budget": Reason.BUDGET_EXHAUSTED,
            "invalid": Reason.INVALID_ANSWER,
            "unreachable": Reason.MODEL_UNREACHABLE,
        }[outcome.status]
    result["summary"] = _summary(outcome, spent)
    b.status.result = {k: v for k, v in result.items() if v not in (None, {}, [])}
    b.status.error = outcome.error[:4096] if outcome.error else None
    if outcome.status in ("answered", "refused"):
        b.condition(ConditionType.MODEL_ANSWERED, ConditionStatus.TRUE, reason, spent, event="Normal")
        event = "Warning" if outcome.status == "refused" else "Normal"
        b.phase(RunPhase.SUCCEEDED, result["summary"][:1024], event=event)
    else:
        message = (outcome.error or outcome.status)[:1024]
        b.condition(ConditionType.MODEL_ANSWERED, ConditionStatus.FALSE, reason, message, event="Warning")
        b.phase(RunPhase.FAILED, f"no answer ({reason}) after {spent}", event="Warning")
    write(ctx.client, b, run)


def _summary(outcome: agent.Outcome, spent: str) -> str:
    if outcome.status == "answered" and outcome.answer:
        return f"answered citing {', '.join(outcome.answer.citations)} ({spent})"
    if outcome.status == "refused" and outcome.answer:
        return f"refused by the model: {outcome.answer.refusal} ({spent})"
    return f"no answer: {outcome.status} ({spent})"


def record_refusal(ctx: Context, run: dict, why: str) -> None:
    """Refused before any model or tool: said in status, the run Succeeded (a refusal is an answer)."""
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.completed_at = b.now
    b.status.duration_seconds = 0.0
    b.status.result = {"refusal": why, "summary": f"refused: {why}", "steps": 0}
    b.condition(ConditionType.MODEL_ANSWERED, ConditionStatus.FALSE, Reason.QUESTION_REFUSED, why, event="Warning")
    b.phase(RunPhase.SUCCEEDED, f"refused: {why}"[:1024], event="Warning")
    write(ctx.client, b, run)


def no_model(
    ctx: Context,
    run: dict,
    message: str = "no model is configured (AIOPS_LLM_BASE_URL): a question needs one to be answered",
    reason: Reason = Reason.NO_MODEL_CONFIGURED,
) -> None:
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.error = message[:4096]
    b.status.completed_at = b.now
    b.condition(ConditionType.MODEL_ANSWERED, ConditionStatus.FALSE, reason, message[:1024], event=None)
    b.phase(RunPhase.FAILED, message[:1024], event="Warning")
    write(ctx.client, b, run)
