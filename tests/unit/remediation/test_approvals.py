"""The approval policy: which rule decides for a step, and whether an Incident's approvals satisfy it (distinct
people, a group known from the webhook's seal, unverified approvals refused or marked)."""

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aiops.api.incident import Approval, IncidentSpec
from aiops.api.sop import ApprovalPolicy, SOPSpec
from aiops.clusters.reviews import Caller
from aiops.settings import ApprovalSettings, from_env
from aiops.sops import approvals, attestation

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = b"a-key-of-at-least-thirty-two-characters"
UID = "5d1e-incident"
VERIFIED = ApprovalSettings(key=KEY)
DEV = ApprovalSettings(unverified_allowed=True, key=KEY)

ROLLBACK = {"id": "rollback", "type": "action", "title": "Roll back", "action": {"type": "rollbackDeployment"},
            "automation": "auto"}  # fmt: skip
RESTART = {"id": "restart", "type": "action", "title": "Restart", "action": {"type": "restartPod"},
           "automation": "auto"}  # fmt: skip
POLICY = {
    "rules": [
        {"actions": ["rollbackDeployment"], "severities": ["critical"], "approvers": "two", "group": "sre-leads"},
        {"actions": ["restartPod"], "approvers": "automatic"},
    ]
}


def sop(*steps, policy=None) -> SOPSpec:
    return SOPSpec.model_validate({"title": "t", "steps": list(steps), "approvalPolicy": policy})


def need(step: dict, severity="critical", policy=None, default=None) -> tuple[int, str | None, str]:
    s = sop(step, policy=policy)
    default = ApprovalPolicy.model_validate(default) if default else None
    r = approvals.requirement(s.steps[0], severity, s.approval_policy, default)
    return r.count, r.group, r.source


def sealed(step: str, who: str, groups: tuple[str, ...] = (), uid: str = UID) -> Approval:
    write = attestation.Write("UPDATE", "shop", "checkout", uid, Caller(who, groups=groups), [], [
        {"step": step, "approvedBy": who}])  # fmt: skip
    [wire] = attestation.seal(KEY, write, [(0, Approval.model_validate(write.new[0]))], T0)
    return Approval.model_validate(wire)


def verdict(step: dict, given: list[Approval], conf=VERIFIED, policy=POLICY, severity="critical"):
    s = sop(step, policy=policy)
    incident = IncidentSpec(title="t", severity=severity, approvals=given)
    return approvals.judge(incident, s, UID, conf)[step["id"]]


def test_without_a_policy_an_action_needs_one_approver():
    assert need(ROLLBACK) == (1, None, "one approver by default")


def test_approval_required_false_stays_automatic_whatever_the_rules():
    assert need({**ROLLBACK, "approvalRequired": False}, policy=POLICY) == (0, None, "approvalRequired: false")


def test_the_first_rule_matching_action_and_severity_decides():
    assert need(ROLLBACK, "critical", POLICY) == (2, "sre-leads", "spec.approvalPolicy rules[0]")
    assert need(RESTART, "warning", POLICY) == (0, None, "spec.approvalPolicy rules[1]")
    # rollback at warning matches no SOP rule: the cluster default, then the built-in one approver
    cluster = {"rules": [{"severities": ["warning", "low"], "approvers": "one", "group": "oncall"}]}
    assert need(ROLLBACK, "warning", POLICY, cluster) == (1, "oncall", "AIOPS_APPROVAL_POLICY rules[0]")
    assert need(ROLLBACK, "high", POLICY, cluster) == (1, None, "one approver by default")
    # the SOP's own rule wins over the cluster's
    assert need(RESTART, "warning", POLICY, cluster)[0] == 0


def test_a_person_must_still_confirm_what_the_operator_does_not_run_itself():
    count, _, source = need({**RESTART, "automation": "suggest"}, "warning", POLICY)
    assert count == 1 and source.endswith("at least one, as automation suggest means a person does it")
    count, _, source = need({**RESTART, "approvalRequired": True}, "warning", POLICY)
    assert count == 1 and source == "spec.approvalPolicy rules[1]; at least one, as approvalRequired: true"


def test_an_automatic_rule_with_a_group_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="group: an automatic rule has no approvers to be in a group"):
        sop(ROLLBACK, policy={"rules": [{"approvers": "automatic", "group": "sre"}]})


def test_two_distinct_approvers_from_the_group_and_who_is_still_missing():
    leads = ("system:authenticated", "sre-leads")
    one = verdict(ROLLBACK, [sealed("rollback", "alice", leads)])
    assert not one.satisfied
    assert (
        one.message
        == "step rollback needs 1 more approval (2 distinct people) from group sre-leads (approved by alice)"
    )
    outsider = verdict(ROLLBACK, [sealed("rollback", "alice", leads), sealed("rollback", "bob", ("sre",))])
    assert not outsider.satisfied and outsider.message.endswith("; not counted: bob: not in group sre-leads")
    two = verdict(ROLLBACK, [sealed("rollback", "alice", leads), sealed("rollback", "carol", leads)])
    assert two.satisfied and two.approvers == ("alice", "carol") and not two.unverified
    assert two.message == "step rollback approved by alice, carol"
    none = verdict(ROLLBACK, [])
    assert none.message == "step rollback needs 2 approvals (2 distinct people) from group sre-leads"


def test_one_person_cannot_approve_one_step_twice():
    with pytest.raises(
        ValidationError, match=r"approvals\[1\]: alice already approved step 'rollback' in approvals\[0\]"
    ):
        IncidentSpec(
            title="t", severity="critical", approvals=[sealed("rollback", "alice"), sealed("rollback", "alice")]
        )


def test_an_approval_without_the_webhooks_seal_does_not_count_unless_allowed_and_then_is_marked():
    claim = Approval(step="rollback", approved_by="jane")
    refused = verdict(ROLLBACK, [claim], policy=None)
    assert not refused.satisfied and refused.refused_unverified
    assert refused.message == (
        "step rollback needs 1 approval; not counted: jane: unverified (no seal of the admission webhook); "
        "only approvals through the admission webhook count"
    )
    allowed = verdict(ROLLBACK, [claim], conf=DEV, policy=None)
    assert allowed.satisfied and allowed.unverified and allowed.approvers == ("jane (unverified)",)
    # A group rule cannot be met by an approval whose groups nobody vouched for.
    grouped = verdict(ROLLBACK, [claim, sealed("rollback", "alice", ("sre-leads",))], conf=DEV)
    assert not grouped.satisfied and "jane: unverified (no seal of the admission webhook), so not known to be in " \
        "group sre-leads" in grouped.message  # fmt: skip


@pytest.mark.parametrize(
    "tamper",
    [
        {"approvedBy": "mallory"},  # the name changed after the webhook sealed it
        {"comment": "rolled back by mallory"},
        {"verification": {"groups": ["sre-leads"], "seal": "v1:made-up"}},
    ],
)
def test_a_seal_that_does_not_hold_is_unverified(tamper):
    forged = Approval.model_validate({**sealed("rollback", "alice").wire(), **tamper})
    result = verdict(ROLLBACK, [forged], policy=None)
    assert not result.satisfied and "its seal does not hold" in result.message


def test_a_seal_for_another_incident_or_another_key_does_not_hold():
    copied = sealed("rollback", "alice", uid="another-incident")
    assert not verdict(ROLLBACK, [copied], policy=None).satisfied
    other_key = ApprovalSettings(key=b"another-key-of-thirty-two-characters!")
    assert not verdict(ROLLBACK, [sealed("rollback", "alice")], conf=other_key, policy=None).satisfied
    assert not verdict(ROLLBACK, [sealed("rollback", "alice")], conf=ApprovalSettings(), policy=None).satisfied
    assert verdict(ROLLBACK, [sealed("rollback", "alice")], policy=None).satisfied


def test_settings_read_the_mode_the_key_and_the_cluster_policy(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - severities: [critical]\n    approvers: two\n")
    conf = from_env({"AIOPS_APPROVAL_POLICY": str(policy), "AIOPS_APPROVAL_KEY": "k" * 32}).approvals
    assert not conf.unverified_allowed and conf.key == b"k" * 32
    assert conf.policy.rules[0].approvers == "two"
    assert from_env({"AIOPS_APPROVALS": "unverified-allowed"}).approvals.unverified_allowed
    policy.write_text("rules:\n  - approvers: three\n")
    for env, words in (
        ({"AIOPS_APPROVAL_POLICY": str(policy)}, "policy.yaml': rules[0].approvers: Input should be"),
        ({"AIOPS_APPROVALS": "trust-me"}, "AIOPS_APPROVALS='trust-me': expected one of verified, unverified-allowed"),
        ({"AIOPS_APPROVAL_KEY": "short"}, "AIOPS_APPROVAL_KEY: expected at least 32 characters"),
        ({"AIOPS_ADMISSION_ADDR": ":8443"}, "the admission webhook seals the approvals it checks"),
        (
            {"AIOPS_ADMISSION_ADDR": ":8443", "AIOPS_APPROVAL_KEY": "k" * 32, "AIOPS_ADMISSION_MANAGED": "approvals"},
            "AIOPS_ADMISSION_MANAGED='approvals': expected a DNS name with a dot",
        ),
    ):
        with pytest.raises(SystemExit, match=re.escape(words)):
            from_env(env)
