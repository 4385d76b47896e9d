"""Follows a matched SOP on an Incident, step by step, with people in charge of every change.

`advance` takes the runbook's progress as recorded in Incident status and goes as far as it can now:
- check and decision steps run at once (read-only) and branch on their result; a check with a
  `timeoutSeconds` that does not hold yet stays Running and is tried again on each pass until it holds
  or the time is up (a verification right after a change needs the change to take effect);
- an action runs only when the step says `automation: auto` and the Incident carries the approvals its
  policy asks for (sops/approvals.py: one person by default, two distinct people, a group, or none, as for
  `approvalRequired: false`); it is dry-run on the server first and audited. A `suggest` or `manual` action
  is never run by the operator: an approval records that a person did it. Until the approvals are there the
  step waits in AwaitingApproval, announced once, its output saying who still has to approve;
- a live change is snapshotted first and, with `verify`, judged after it is made: undone and escalated when
  it fails or makes a guard worse (execution.py);
- a step's `timeoutSeconds`, or the SOP's `escalation.afterMinutes` for the whole runbook, ends the wait:
  the step fails and the runbook follows its failure branch or escalates;
- an escalate step, or a failure with nowhere to go, escalates; reaching the end resolves.
Running it again with nothing new changes nothing: waiting steps stay waiting, finished ones finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubernetes import client

from aiops.api.incident import MatchedSOP, SOPStepStatus, StepState
from aiops.api.sop import Automation, SOPSpec, SOPStep, StepType, next_steps
from aiops.clusters.prometheus import PrometheusSource
from aiops.sops.approvals import APPROVER, Verdict
from aiops.sops.remediation import actions, checks, execution, gitops
from aiops.sops.remediation.matching import Match

MAX_OUTPUT = 4096


@dataclass(frozen=True)
class World:
    """What the steps reach: the cluster, Prometheus, the Incident's names, the verdict on each action's approvals."""

    api: client.ApiClient
    prometheus: PrometheusSource | None
    variables: dict[str, str]
    targets: actions.Targets
    approvals: dict[str, Verdict]
    incident: str  # namespace/name, for the hints in messages
    gitops: gitops.GitOps | None = None  # None: every change is a live patch


@dataclass
class Progress:
    sop: MatchedSOP
    outcome: str = "running"  # running | waiting | resolved | escalated
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def start(match: Match, spec: SOPSpec, now: datetime) -> MatchedSOP:
    return MatchedSOP(
        name=match.name,
        score=match.score,
        reason=match.reason[:1024],
        current=spec.steps[0].id,
        started_at=now,
        steps=[SOPStepStatus(id=s.id, type=str(s.type), title=s.title, state=StepState.PENDING) for s in spec.steps],
    )


def _approval_hint(world: World, step: SOPStep) -> str:
    ns, name = world.incident.split("/", 1)
    patch = f'{{"spec":{{"approvals":[{{"step":"{step.id}","approvedBy":"{APPROVER}"}}]}}}}'
    return f"kubectl -n {ns} patch incident {name} --type merge -p '{patch}'"


def _timed_out(started: datetime | None, seconds: int | None, now: datetime) -> bool:
    return bool(started and seconds and now - started > timedelta(seconds=seconds))


def _check(step: SOPStep, world: World) -> tuple[bool, str]:
    try:
        result = checks.run_check(step, world.prometheus, world.variables)
    except checks.CheckError as exc:
        return False, f"could not run: {exc}"
    return result.passed, ("condition holds: " if result.passed else "") + result.output


def _action(step: SOPStep, st: SOPStepStatus, world: World, progress: Progress, now: datetime) -> tuple[bool, str]:
    """(succeeded, output); raises _Wait while the step needs approvals it does not have."""
    verdict = world.approvals[step.id]
    if not verdict.satisfied:
        raise _Wait(verdict.message)
    who = ", ".join(verdict.approvers)[:253] or None
    if step.automation == Automation.AUTO:
        if world.gitops is not None:  # an Argo CD-managed workload gets a pull request, not a live patch
            args = (world.api, step, st, world.targets, world.gitops, who, progress.sop.audit, progress.events, now)
            if (delivered := gitops.run(*args)) is not None:
                return delivered
        allowed = f"approved by {who}" if who else f"allowed by policy ({verdict.source})"
        return execution.run(step, world, progress, now, who, allowed)  # snapshot, change, verify, undo
    return True, f"done by hand, confirmed by {who} (automation {step.automation or 'manual'})"


class _Wait(Exception):
    """The current step needs a person; the message says who."""


def _finish(progress: Progress, outcome: str, now: datetime) -> None:
    progress.outcome = outcome
    progress.sop.current = None
    progress.sop.finished_at = now
    for st in progress.sop.steps:
        if st.state in (StepState.PENDING, StepState.AWAITING_APPROVAL):
            st.state = StepState.SKIPPED


def advance(sop: MatchedSOP, spec: SOPSpec, world: World, now: datetime) -> Progress:
    progress = Progress(sop.model_copy(deep=True))
    sop = progress.sop
    if sop.finished_at:
        progress.outcome = "done"
        return progress
    index = {s.id: i for i, s in enumerate(spec.steps)}
    states = {st.id: st for st in sop.steps}
    deadline = spec.escalation.after_minutes * 60 if spec.escalation and spec.escalation.after_minutes else None
    for _ in range(len(spec.steps) + 1):  # each pass finishes a step: a bound, not a retry loop
        if sop.current is None:
            _finish(progress, "resolved", now)
            break
        i = index[sop.current]
        step, st = spec.steps[i], states[sop.current]
        st.started_at = st.started_at or now
        try:
            if step.type in (StepType.CHECK, StepType.DECISION):
                ok, output = _check(step, world)
                if not ok and step.timeout_seconds and not _timed_out(st.started_at, step.timeout_seconds, now):
                    st.state, st.output = StepState.RUNNING, f"not yet ({output})"[:MAX_OUTPUT]
                    progress.outcome = "waiting"
                    break
            elif step.type == StepType.ACTION:
                ok, output = _action(step, st, world, progress, now)
            else:  # escalate
                st.state, st.output, st.finished_at = StepState.SUCCEEDED, "escalated", now
                contacts = ", ".join(spec.escalation.contacts) if spec.escalation else ""
                progress.events.append(("Warning", "Escalated", f"step {step.id}: {step.title} {contacts}".strip()))
                _finish(progress, "escalated", now)
                break
        except gitops.AwaitingSync as wait:  # its pull request waits to be merged and synced
            if _timed_out(st.started_at, step.timeout_seconds, now) or _timed_out(sop.started_at, deadline, now):
                ok, output = False, f"not merged and synced in time: {wait}"
            else:
                st.state, st.output = StepState.AWAITING_SYNC, str(wait)[:MAX_OUTPUT]
                progress.outcome = "waiting"
                break
        except execution.Running as running:  # its change is snapshotted, or being verified
            st.state, st.output = StepState.RUNNING, str(running)[:MAX_OUTPUT]
            progress.outcome = "waiting"
            break
        except execution.Escalate as stop:  # its change was undone, or was not safe to make: a person takes over
            st.state, st.output, st.finished_at = StepState.FAILED, str(stop)[:MAX_OUTPUT], now
            progress.events.append(("Warning", "Escalated", f"step {step.id}: {str(stop)[:900]}"))
            _finish(progress, "escalated", now)
            break
        except _Wait as wait:
            if _timed_out(st.started_at, step.timeout_seconds, now) or _timed_out(sop.started_at, deadline, now):
                limit = f"{step.timeout_seconds}s" if step.timeout_seconds else f"{deadline // 60} minutes"
                ok, output = False, f"no approval within {limit}"
            else:
                st.output = str(wait)[:MAX_OUTPUT]  # who still has to approve
                if st.state != StepState.AWAITING_APPROVAL:
                    st.state = StepState.AWAITING_APPROVAL
                    progress.events.append(
                        ("Normal", "ApprovalRequired",
                         f"{wait} ({step.action.type}): {_approval_hint(world, step)}")
                    )  # fmt: skip
                progress.outcome = "waiting"
                break
        st.state = StepState.SUCCEEDED if ok else StepState.FAILED
        st.output, st.finished_at = output[:MAX_OUTPUT], now
        on_success, on_failure = next_steps(spec.steps, i)
        following = on_success if ok else on_failure
        if following is None and not ok:
            progress.events.append(("Warning", "Escalated", f"step {step.id} failed with no onFailure: {output[:300]}"))
            _finish(progress, "escalated", now)
            break
        sop.current = following
    return progress
