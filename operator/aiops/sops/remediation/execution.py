"""An automatic SOP action's life: snapshot, change, verification, and undo when the change fails or harms.

Pass by pass (the remediation timer), an approved `automation: auto` step goes:
1. snapshot: the fields the action will change (undo.py) and the guards (guards.py) are recorded in
   `status.sop.changes`, and nothing else happens in that pass: once the status is written, an operator
   restart loses nothing;
2. change, on the next pass: if the object still holds the snapshot, the action runs (dry run, then for
   real; audited) and the changed fields are read again. If it does not, someone changed it in between, or
   this step did just before a restart and could not record it: the operator does not act twice, and escalates;
3. verify, when the step has `verify`: from settleSeconds after the change, every check it names must hold
   and no guard be worse than at the snapshot; until timeoutSeconds the step stays Running;
4. undo: a verification that runs out of time, or a worse guard, restores the snapshot (dry run first,
   audited), and the runbook escalates rather than take the step's failure branch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api.incident import SNAPSHOT_VALUE_MAX, AuditEntry, Change, ChangeState, GuardReading, MatchedSOP
from aiops.api.sop import SOPStep, Verification
from aiops.clusters.prometheus import PrometheusSource
from aiops.sops.remediation import actions, checks, guards, undo

SNAPSHOT_BUDGET = 262_144  # characters of snapshots one Incident keeps in status, well below etcd's object limit


class World(Protocol):
    """What a change reaches (the engine's World)."""

    api: client.ApiClient
    prometheus: PrometheusSource | None
    variables: dict[str, str]
    targets: actions.Targets


class Progress(Protocol):
    """Where a change is recorded (the engine's Progress): the runbook's state and the Events to post."""

    sop: MatchedSOP
    events: list[tuple[str, str, str]]


class Running(Exception):
    """The step stays Running: its snapshot is taken, or its change is being verified; the message says which."""


class Escalate(Exception):
    """The runbook stops and escalates: the change was undone, or was not safe to make; the message says why."""


def run(
    step: SOPStep, world: World, progress: Progress, now: datetime, who: str | None, allowed: str
) -> tuple[bool, str]:
    """(succeeded, output) once the change is made, or verified; raises Running while it is not yet, and
    Escalate when the runbook must stop (the change was undone, or was not safe to make)."""
    change = next((c for c in progress.sop.changes if c.step == step.id), None)
    if change is None:
        return _snapshot(step, world, progress, now, who, allowed)
    if change.state == ChangeState.SNAPSHOT_TAKEN:
        return _change(step, change, world, progress, now, who, allowed)
    if change.state == ChangeState.VERIFYING:
        return _verify(step, change, world, progress, now)
    # Finished before: reached only if the step's own state was lost, so say again what became of it.
    said = f"{step.action.type}: {change.state} {change.reason or ''}".strip()
    if change.state not in (ChangeState.APPLIED, ChangeState.VERIFIED):
        raise Escalate(said)
    return True, said


def _audit(progress: Progress, step: SOPStep, now: datetime, **entry) -> AuditEntry:
    audit = AuditEntry(at=now, step=step.id, action=str(step.action.type), **entry)
    progress.sop.audit.append(audit)
    return audit


def _not_attempted(
    step: SOPStep, progress: Progress, now: datetime, who: str | None, allowed: str, why: str
) -> tuple[bool, str]:
    """Nothing was changed: audited, and the step fails into its failure branch, as a refused dry run does."""
    _audit(progress, step, now, target="-", approved_by=who, dry_run=f"not attempted: {why}"[:1024], outcome=why)
    progress.events.append(("Warning", "ActionFailed", f"step {step.id}: {step.action.type} ({allowed}): {why}"))
    return False, f"{step.action.type} not attempted ({allowed}): {why}"


def _snapshot(
    step: SOPStep, world: World, progress: Progress, now: datetime, who: str | None, allowed: str
) -> tuple[bool, str]:
    try:
        target, path, fields = undo.snapshot(world.api, step.action, world.targets)
    except actions.ActionError as exc:
        return _not_attempted(step, progress, now, who, allowed, str(exc)[:1024])
    except ApiException as exc:
        why = f"cannot read what it would change, to snapshot it: {actions.refusal(exc)}"
        return _not_attempted(step, progress, now, who, allowed, why)
    size = sum(len(f.before or "") for f in fields)
    kept = sum(len(f.before or "") + len(f.after or "") for c in progress.sop.changes for f in c.fields)
    if any(len(f.before or "") > SNAPSHOT_VALUE_MAX for f in fields) or kept + 2 * size > SNAPSHOT_BUDGET:
        why = (
            f"the snapshot of {target} ({size} characters) does not fit in the Incident's status (at most "
            f"{SNAPSHOT_VALUE_MAX} a field, {SNAPSHOT_BUDGET} in all): no change is made that could not be undone"
        )
        return _not_attempted(step, progress, now, who, allowed, why)
    change = Change(
        step=step.id,
        action=str(step.action.type),
        target=target,
        path=path,
        fields=fields,
        state=ChangeState.SNAPSHOT_TAKEN,
        taken_at=now,
    )
    if step.verify is not None:
        specs = guards.specs(step.verify, world.prometheus is not None)
        readings = guards.read(world.api, world.prometheus, change, specs, world.variables, now)
        change.guards = [GuardReading(name=n, before=v, note=note) for n, (v, note) in readings.items()]
    progress.sop.changes.append(change)
    raise Running(f"snapshot of {target} ({', '.join(f.path for f in fields)}) taken; the change follows")


def _change(
    step: SOPStep, change: Change, world: World, progress: Progress, now: datetime, who: str | None, allowed: str
) -> tuple[bool, str]:
    try:
        values = undo.current(world.api, change)
    except ApiException as exc:  # most likely passing: tried again on the next pass
        raise Running(f"cannot read {change.target} again: {actions.refusal(exc)}") from None
    if values != [f.before for f in change.fields]:
        moved = ", ".join(f.path for f, v in zip(change.fields, values, strict=True) if v != f.before)
        why = (
            f"{change.target} changed after the snapshot and before the action ({moved}), by someone else or by "
            "this step just before an operator restart: not acting twice"
        )
        change.state, change.reason, change.finished_at = ChangeState.NOT_MADE, why[:1024], now
        progress.events.append(("Warning", "ActionFailed", f"step {step.id}: {step.action.type} ({allowed}): {why}"))
        raise Escalate(f"{step.action.type} not made: {why}")
    result = actions.run(world.api, step.action, world.targets)
    _audit(
        progress,
        step,
        now,
        target=result.target,
        approved_by=who,
        dry_run=result.dry_run[:1024],
        before=result.before,
        after=result.after,
        outcome=result.outcome[:1024],
    )
    progress.events.append(
        ("Normal" if result.succeeded else "Warning", "ActionExecuted" if result.succeeded else "ActionFailed",
         f"step {step.id}: {step.action.type} on {result.target} ({allowed}): {result.outcome}")
    )  # fmt: skip
    done = f"{step.action.type} {result.outcome} ({allowed})"
    if not result.succeeded:  # refused or failed: nothing to undo, the step's failure branch follows
        change.state, change.reason, change.finished_at = ChangeState.NOT_MADE, result.outcome[:1024], now
        return False, done
    change.applied_at = now
    done += f"; before: {result.before}; after: {result.after}"
    try:
        for f, value in zip(change.fields, undo.current(world.api, change), strict=True):
            f.after = value
    except ApiException as exc:
        change.state, change.finished_at = ChangeState.APPLIED, now
        change.reason = f"made, but not read back ({actions.refusal(exc)}): it can be neither verified nor undone"
        raise Escalate(f"{done}; {change.reason}") from None
    if step.verify is None:
        change.state, change.finished_at = ChangeState.APPLIED, now
        return True, done
    change.state = ChangeState.VERIFYING
    raise Running(f"{done}; verifying")


def _checks(verify: Verification, change: Change, world: World) -> tuple[bool, str]:
    """Whether every check the verification names holds now, and what they said."""
    results = []
    try:
        if verify.condition:
            # The condition is the Deployment's even when the change went through its scale subresource.
            results.append(checks.run_condition(world.api, change.path.removesuffix("/scale"), verify.condition))
        if verify.promql:
            results.append(checks.run_promql(verify.promql, world.prometheus, world.variables))
        if verify.command:
            results.append(checks.run_command(verify.command, world.variables))
    except checks.CheckError as exc:
        return False, f"could not run: {exc}"
    if not results:
        return True, "no check asked for, guards only"
    return all(r.passed for r in results), "; ".join(r.output for r in results)


def _verify(step: SOPStep, change: Change, world: World, progress: Progress, now: datetime) -> tuple[bool, str]:
    verify = step.verify
    elapsed = (now - change.applied_at).total_seconds()
    if elapsed < verify.settle_seconds:
        raise Running(f"verifying: the change settles for {verify.settle_seconds}s first")
    specs = {g.name: g for g in guards.specs(verify, world.prometheus is not None)}
    readings = guards.read(world.api, world.prometheus, change, list(specs.values()), world.variables, now)
    for reading in change.guards:
        if reading.name in readings:
            reading.after, note = readings[reading.name]
            if reading.before is not None:  # else its note keeps why it was not measured before
                reading.note = note
    worse = [r for r in change.guards if r.name in specs and guards.worse(specs[r.name], r)]
    if worse:
        _undo(step, change, world, progress, now, f"worse than before the change: {guards.describe(worse)}")
    held, said = _checks(verify, change, world)
    if held:
        change.state, change.finished_at = ChangeState.VERIFIED, now
        message = f"{said}; guards: {guards.describe(change.guards)}"
        progress.events.append(("Normal", "ChangeVerified", f"step {step.id}: {change.target}: {message}"[:1024]))
        return True, f"{step.action.type} on {change.target} done and verified: {message}"
    if elapsed >= verify.timeout_seconds:
        _undo(step, change, world, progress, now, f"verification failed within {verify.timeout_seconds}s: {said}")
    raise Running(f"verifying: not yet ({said})")


def _undo(step: SOPStep, change: Change, world: World, progress: Progress, now: datetime, why: str) -> None:
    """Restores the snapshot, audits it, and raises Escalate: whether undone or not, a person takes over."""
    result = undo.restore(world.api, change, step.action.type)
    made = next((a for a in reversed(progress.sop.audit) if a.step == step.id and not a.undo), None)
    taken = f"snapshot of {', '.join(f.path for f in change.fields)} taken {change.taken_at:%Y-%m-%dT%H:%M:%SZ}"
    _audit(
        progress,
        step,
        now,
        target=change.target,
        dry_run=result.dry_run[:1024],
        before=made.after if made else None,
        after=f"{taken}: {made.before if made else '-'}"[:2048],
        outcome=result.outcome[:1024],
        undo=True,
        reason=why[:1024],
    )
    change.reason, change.finished_at = why[:1024], now
    change.state = ChangeState.UNDONE if result.succeeded else ChangeState.NOT_UNDONE
    if result.succeeded:
        reason, message = "ActionUndone", f"step {step.id}: {step.action.type} on {change.target} undone: {why}"
        output = f"{step.action.type} on {change.target} undone: {why}"
    else:
        reason, message = "UndoFailed", f"step {step.id}: {change.target} not undone ({result.outcome}): {why}"
        output = f"{step.action.type} on {change.target} should be undone and was not ({result.outcome}): {why}"
    progress.events.append(("Warning", reason, message[:1024]))
    raise Escalate(output)
