"""Who must approve an SOP action, and whether an Incident's approvals are enough.

`requirement`: a step's `approvalRequired: false` keeps meaning what it always did, automatic; otherwise the
first rule that matches the step's action type and the Incident's severity decides, from the SOP's
spec.approvalPolicy, then the cluster's default (AIOPS_APPROVAL_POLICY), else one approver. `approvalRequired:
true` asks for at least one. An action the operator does not run itself (automation suggest or manual) needs
at least one approval whatever the rule: the approval records that a person did it.

`evaluate`: counts the distinct people whose approvals of the step qualify: verified (the admission webhook's
seal holds, sops/attestation.py), or unverified where AIOPS_APPROVALS=unverified-allowed says so, and in the
rule's group when it names one (the groups the webhook saw, so an unverified approval is in none). Its message
says who still has to approve, and why an approval did not count.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.api.incident import Approval, IncidentSpec, Severity
from aiops.api.sop import ApprovalPolicy, ApprovalRule, Approvers, Automation, SOPSpec, SOPStep, StepType
from aiops.settings import ApprovalSettings
from aiops.sops import attestation

COUNTS = {Approvers.AUTOMATIC: 0, Approvers.ONE: 1, Approvers.TWO: 2}
APPROVER = "YOUR-KUBERNETES-USERNAME"  # in the approval commands shown to people: the webhook wants exactly that
UNVERIFIED = "unverified"  # the mark an approval nobody vouched for carries in messages and the audit log


@dataclass(frozen=True)
class Requirement:
    count: int  # distinct approvers
    group: str | None
    source: str  # where it comes from, in words


@dataclass(frozen=True)
class Verdict:
    satisfied: bool
    approvers: tuple[str, ...]  # the people counted, an unverified one marked: "jane (unverified)"
    message: str
    source: str  # the requirement's
    unverified: bool = False  # satisfied, and an approval counted is unverified
    refused_unverified: bool = False  # an approval did not count because it is unverified


def judge(incident: IncidentSpec, sop: SOPSpec, uid: str, conf: ApprovalSettings) -> dict[str, Verdict]:
    """The verdict on each action step of the runbook, for this Incident (its severity, approvals and uid)."""
    return {
        step.id: evaluate(
            step, requirement(step, incident.severity, sop.approval_policy, conf.policy), incident.approvals, uid, conf
        )
        for step in sop.steps
        if step.type == StepType.ACTION
    }


def requirement(
    step: SOPStep, severity: Severity, policy: ApprovalPolicy | None, default: ApprovalPolicy | None
) -> Requirement:
    if step.approval_required is False:
        found = Requirement(0, None, "approvalRequired: false")
    else:
        found = Requirement(1, None, "one approver by default")
        for where, rules in (("spec.approvalPolicy", policy), ("AIOPS_APPROVAL_POLICY", default)):
            i, rule = next(
                ((i, r) for i, r in enumerate(rules.rules if rules else []) if _matches(r, step, severity)),
                (None, None),
            )
            if rule is not None:
                found = Requirement(COUNTS[Approvers(rule.approvers)], rule.group, f"{where} rules[{i}]")
                break
    floor = 1 if step.approval_required or step.automation != Automation.AUTO else 0
    if found.count < floor:
        found = Requirement(floor, found.group, f"{found.source}; at least one, as {_floor_reason(step)}")
    return found


def _floor_reason(step: SOPStep) -> str:
    if step.automation != Automation.AUTO:
        return f"automation {step.automation or 'manual'} means a person does it"
    return "approvalRequired: true"


def _matches(rule: ApprovalRule, step: SOPStep, severity: Severity) -> bool:
    action = step.action.type if step.action else None
    return (not rule.actions or action in rule.actions) and (not rule.severities or severity in rule.severities)


def evaluate(step: SOPStep, need: Requirement, approvals: list[Approval], uid: str, conf: ApprovalSettings) -> Verdict:
    counted: list[str] = []
    not_counted: list[str] = []
    refused_unverified = unverified = False
    for a in approvals:  # IncidentSpec holds one approval per person and step
        if a.step != step.id:
            continue
        sealed = attestation.verified(conf.key, uid, a)
        why = _unverified_why(a) if not sealed else ""
        if not sealed and not conf.unverified_allowed:
            not_counted.append(f"{a.approved_by}: {why}; only approvals through the admission webhook count")
            refused_unverified = True
        elif need.group and not (sealed and need.group in a.verification.groups):
            known = f"not in group {need.group}" if sealed else f"{why}, so not known to be in group {need.group}"
            not_counted.append(f"{a.approved_by}: {known}")
        else:
            counted.append(a.approved_by if sealed else f"{a.approved_by} ({UNVERIFIED})")
            unverified = unverified or not sealed
    satisfied = len(counted) >= need.count
    if satisfied:
        message = f"step {step.id} " + (
            f"approved by {', '.join(counted)}" if counted else f"needs no approval ({need.source})"
        )
    else:
        missing = need.count - len(counted)
        message = f"step {step.id} needs {missing}{' more' if counted else ''} approval{'s' if missing > 1 else ''}"
        if need.count > 1:
            message += f" ({need.count} distinct people)"
        if need.group:
            message += f" from group {need.group}"
        if counted:
            message += f" (approved by {', '.join(counted)})"
        if not_counted:
            message += f"; not counted: {'; '.join(not_counted)}"
    return Verdict(satisfied, tuple(counted), message, need.source, unverified and satisfied, refused_unverified)


def _unverified_why(a: Approval) -> str:
    if a.verification is None:
        return f"{UNVERIFIED} (no seal of the admission webhook)"
    return f"{UNVERIFIED} (its seal does not hold: not made by this operator's webhook for this Incident)"
