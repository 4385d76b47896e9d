"""The admission review of approval writes, with canned SubjectAccessReview answers (the real API server's are in
tests/integration/test_approvals.py): who may add what, append-only, the seal the mutating webhook makes and the
validating webhook checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aiops.api.incident import Approval
from aiops.clusters.reviews import Caller
from aiops.core import kube
from aiops.sops import attestation

KEY = b"a-key-of-at-least-thirty-two-characters"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALICE = Caller("alice", "u-1", ("sre-leads", "system:authenticated"))  # holds approve
BOB = Caller("bob", "u-2", ("system:authenticated",))  # may patch, not approve
FIRST = {"step": "rollback", "approvedBy": "carol", "approvedAt": "2026-11-23T11:00:00Z"}


@pytest.fixture
def reviews(monkeypatch) -> list[dict]:
    """SubjectAccessReviews asked, answered: alice may approve, nobody else."""
    asked = []

    def request(api, method, path, query=None, body=None, content_type=None, timeout=10):
        assert path == "/apis/authorization.k8s.io/v1/subjectaccessreviews", path
        asked.append(body["spec"])
        allowed = body["spec"]["user"] == "alice" and body["spec"]["resourceAttributes"]["verb"] == "approve"
        return json.dumps({"status": {"allowed": allowed}}).encode()

    monkeypatch.setattr(kube, "request", request)
    return asked


def write(new: list[dict], user: Caller = ALICE, old: list[dict] | None = None, op: str = "UPDATE"):
    old = [FIRST] if old is None else old
    return attestation.Write(op, "shop", "checkout", "" if op == "CREATE" else "uid-1", user, old, new)


def refused(w: attestation.Write) -> str:
    with pytest.raises(attestation.Refused) as caught:
        attestation.review(None, w)
    return str(caught.value)


def test_writes_that_leave_the_approvals_alone_pass_without_a_review(reviews):
    assert attestation.review(None, write([FIRST], BOB)) == []
    assert attestation.review(None, write([], BOB, old=[], op="CREATE")) == []
    assert reviews == []


def test_an_approval_of_ones_own_with_the_verb_is_added_and_sealed(reviews):
    w = write([FIRST, {"step": "rollback", "approvedBy": "alice", "approvedAt": "2020-01-01T00:00:00Z"}])
    added = attestation.review(None, w)
    assert [(i, a.approved_by) for i, a in added] == [(1, "alice")]
    [sar] = reviews
    assert sar["user"] == "alice" and sar["groups"] == ["sre-leads", "system:authenticated"]
    assert sar["resourceAttributes"] == {
        "namespace": "shop", "verb": "approve", "group": "aiops.dev", "resource": "incidents", "name": "checkout"
    }  # fmt: skip
    stamped = attestation.seal(KEY, w, added, NOW)
    assert stamped[0] == FIRST  # the existing entry exactly as it was
    new = Approval.model_validate(stamped[1])
    assert new.approved_at == NOW  # the webhook's time, not the claimed one
    assert new.verification.groups == ["sre-leads", "system:authenticated"]
    assert attestation.verified(KEY, "uid-1", new) and not attestation.verified(KEY, "uid-2", new)
    sealed = write(stamped)
    attestation.check_sealed(KEY, sealed, attestation.review(None, sealed))


@pytest.mark.parametrize(
    ("w", "words"),
    [
        (
            write([FIRST, {"step": "rollback", "approvedBy": "bob"}], BOB),
            "spec.approvals[1]: bob may not approve incidents.aiops.dev shop/checkout: grant the verb 'approve'",
        ),
        (
            write([FIRST, {"step": "rollback", "approvedBy": "alice"}], BOB),
            "spec.approvals[1].approvedBy: 'alice' is not who is asking: the API server authenticated this request as "
            "'bob'. An approval is your own: set approvedBy to 'bob'",
        ),
        (
            write([FIRST, {"step": "rollback", "approvedBy": "carol"}], ALICE),
            "spec.approvals[1].approvedBy: 'carol' is not who is asking",
        ),
        (
            write([{**FIRST, "comment": "never mind"}], ALICE),
            "spec.approvals[0]: approvals are append-only, and alice would change the approval of step 'rollback' by "
            "carol",
        ),
        (write([{**FIRST, "approvedBy": "alice"}], ALICE), "spec.approvals[0]: approvals are append-only"),
        (write([], ALICE), "spec.approvals: approvals are append-only, and alice would remove 1 of 1"),
        (
            write([{"step": "rollback", "approvedBy": "alice"}], ALICE, old=[], op="CREATE"),
            "spec.approvals: an Incident is created without approvals (alice sent 1)",
        ),
        (
            write([FIRST, {"step": "rollback", "approvedBy": "alice"}, {"step": "rollback", "approvedBy": "alice"}]),
            "spec.approvals[2]: alice already approved step 'rollback' in spec.approvals[1]",
        ),
        (write([FIRST, {"step": "Roll Back", "approvedBy": "alice"}]), "spec.approvals[1].step: String should match"),
    ],
)
def test_refusals_name_the_field_the_user_and_what_to_do(reviews, w, words):
    assert words in refused(w)


def test_the_validating_webhook_refuses_an_added_entry_the_mutating_one_did_not_seal(reviews):
    claimed = {"step": "rollback", "approvedBy": "alice", "verification": {"groups": ["sre-leads"], "seal": "v1:x"}}
    w = write([FIRST, claimed])
    with pytest.raises(attestation.Refused, match=r"spec.approvals\[1\].verification: not sealed by this operator"):
        attestation.check_sealed(KEY, w, attestation.review(None, w))
    # A seal made for alice does not pass for bob's request, nor with groups other than the requester's.
    sealed = attestation.seal(KEY, write([FIRST, {"step": "rollback", "approvedBy": "alice"}]), [
        (1, Approval(step="rollback", approved_by="alice"))], NOW)  # fmt: skip
    fewer = write(sealed, Caller("alice", "u-1", ("system:authenticated",)))
    with pytest.raises(attestation.Refused, match="not sealed"):
        attestation.check_sealed(KEY, fewer, attestation.review(None, fewer))
