"""Approvals bound to the person who wrote them: the admission webhook's review, its seal, and the check of it.

An entry of an Incident's spec.approvals is a claim that anyone who may patch Incidents could write. The
operator's admission webhook (controllers/admission.py) turns it into a fact:

- `review`: a write that adds approvals must come from the person each new entry names (`approvedBy` is the
  requester's username in the AdmissionReview's userInfo), who must hold the custom verb `approve` on
  incidents in that namespace (a SubjectAccessReview for the requester as the API server authenticated
  them); entries already there can be neither changed nor removed; an Incident is created without approvals
  (they approve steps of the runbook the operator matches after it exists);
- `seal` (the mutating webhook): stamps each new entry with the time, the requester's groups and an HMAC over
  them, the approver, the step, the comment and the Incident's uid, keyed with the operator's secret
  (AIOPS_APPROVAL_KEY). The validating webhook then refuses a new entry whose seal does not hold;
- `verified` (the operator, before it counts an approval): the seal holds. Nobody without the key can write
  one, an entry copied to another Incident or step fails it, and an approval written while the webhook was
  down or missing has none: it is unverified, whatever its `verification` says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from aiops.api.common import field_path
from aiops.api.incident import Approval, ApprovalVerification
from aiops.clusters.reviews import Caller, Forbidden, authorize

SEAL_VERSION = "v1"
MAX_GROUPS = 100  # ApprovalVerification.groups' bound; a group beyond it is not known to the policy


class Refused(Exception):
    """The write may not add or change these approvals; the message names the field, the user and what to do."""


@dataclass(frozen=True)
class Write:
    """One admission request for an Incident, reduced to what the approvals review needs."""

    operation: str  # CREATE | UPDATE
    namespace: str
    name: str
    uid: str  # the stored Incident's (an UPDATE's old object); empty on CREATE
    user: Caller
    old: list[dict[str, Any]]  # spec.approvals before, as stored
    new: list[dict[str, Any]]  # spec.approvals as the requester would have them


def _mac(key: bytes, uid: str, approval: Approval, groups: list[str]) -> str:
    at = approval.approved_at.astimezone(UTC).isoformat() if approval.approved_at else ""
    payload = json.dumps(
        [uid, approval.step, approval.approved_by, at, approval.comment, groups], separators=(",", ":")
    )
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{SEAL_VERSION}:{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def verified(key: bytes, uid: str, approval: Approval) -> bool:
    """Whether the approval carries a seal this operator's webhook made for this Incident."""
    v = approval.verification
    return bool(key and uid and v) and hmac.compare_digest(v.seal, _mac(key, uid, approval, v.groups))


def review(api: client.ApiClient, write: Write) -> list[tuple[int, Approval]]:
    """The approvals the write adds, with their indexes, after every check; Refused naming the first that fails.
    A write that leaves spec.approvals as it was is none of this review's business."""
    if write.new == write.old:
        return []
    you = write.user.username
    if write.operation == "CREATE":
        raise Refused(
            f"spec.approvals: an Incident is created without approvals ({you} sent {len(write.new)}): approve a step "
            "of the runbook the operator matched once the Incident exists, by patching spec.approvals"
        )
    for i, (before, after) in enumerate(zip(write.old, write.new, strict=False)):
        if before != after:
            raise Refused(
                f"spec.approvals[{i}]: approvals are append-only, and {you} would change the approval of step "
                f"{before.get('step')!r} by {before.get('approvedBy')}: add a new entry at the end instead "
                "(kubectl patch --type json with op add, path /spec/approvals/-)"
            )
    if len(write.new) < len(write.old):
        gone = len(write.old) - len(write.new)
        raise Refused(
            f"spec.approvals: approvals are append-only, and {you} would remove {gone} of {len(write.old)}: a merge "
            "patch replaces the whole list, so append with kubectl patch --type json (op add, path /spec/approvals/-)"
        )
    added: list[tuple[int, Approval]] = []
    for i, raw in enumerate(write.new[len(write.old) :], len(write.old)):
        try:
            approval = Approval.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise Refused(f"spec.approvals[{i}].{field_path(err['loc'])}: {err['msg']}") from None
        if approval.approved_by != you:
            raise Refused(
                f"spec.approvals[{i}].approvedBy: {approval.approved_by!r} is not who is asking: the API server "
                f"authenticated this request as {you!r}. An approval is your own: set approvedBy to {you!r}"
            )
        twice = next((j for j, a in enumerate(write.new[:i]) if (a.get("step"), a.get("approvedBy")) == (
            approval.step, you)), None)  # fmt: skip
        if twice is not None:
            raise Refused(
                f"spec.approvals[{i}]: {you} already approved step {approval.step!r} in spec.approvals[{twice}]: "
                "a second approval must come from someone else"
            )
        added.append((i, approval))
    try:
        authorize(api, write.user, "approve", "incidents", write.namespace, write.name)
    except Forbidden as exc:
        raise Refused(f"spec.approvals[{added[0][0]}]: {exc}") from None
    return added


def seal(key: bytes, write: Write, added: list[tuple[int, Approval]], now: datetime) -> list[dict[str, Any]]:
    """spec.approvals with the added entries stamped: the webhook's time, the requester's groups, the seal.
    Whatever `approvedAt` or `verification` the requester wrote is replaced."""
    groups = list(write.user.groups[:MAX_GROUPS])
    out = list(write.new)
    for i, approval in added:
        stamped = approval.model_copy(update={"approved_at": now, "verification": None})
        stamped.verification = ApprovalVerification(groups=groups, seal=_mac(key, write.uid, stamped, groups))
        out[i] = stamped.wire()
    return out


def check_sealed(key: bytes, write: Write, added: list[tuple[int, Approval]]) -> None:
    """Refused unless every added entry carries the seal the mutating webhook makes for this requester."""
    groups = list(write.user.groups[:MAX_GROUPS])
    for i, approval in added:
        if not verified(key, write.uid, approval) or approval.verification.groups != groups:
            raise Refused(
                f"spec.approvals[{i}].verification: not sealed by this operator's mutating webhook for "
                f"{write.user.username}: the MutatingWebhookConfiguration of the approvals webhook is missing, or "
                "another webhook changed the entry after it; see docs/security.md"
            )
