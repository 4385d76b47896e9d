"""The step machine without a cluster: approvals, manual confirmation, timeouts, escalation, idempotence."""

from datetime import UTC, datetime, timedelta

from aiops.api.incident import Approval, IncidentSpec
from aiops.api.sop import SOPSpec
from aiops.clusters.reviews import Caller
from aiops.settings import ApprovalSettings
from aiops.sops import approvals as policy
from aiops.sops import attestation
from aiops.sops.remediation import actions, engine
from aiops.sops.remediation.matching import Match

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def spec(*steps, **extra) -> SOPSpec:
    return SOPSpec.model_validate({"title": "t", "steps": list(steps), **extra})


KEY = b"k" * 32
UID = "0b6c-incident-uid"


def sealed(step: str, who: str) -> dict:
    """An approval as the admission webhook leaves it: stamped and sealed for the Incident UID."""
    write = attestation.Write("UPDATE", "shop", "checkout", UID, Caller(who), [], [{"step": step, "approvedBy": who}])
    added = [(0, Approval.model_validate(write.new[0]))]
    return attestation.seal(KEY, write, added, T0)[0]


def world(s: SOPSpec, **approvals) -> engine.World:
    """The World of an Incident of severity critical whose steps `approvals` names were approved (verified)."""
    incident = IncidentSpec(title="t", severity="critical", approvals=[sealed(k, v) for k, v in approvals.items()])
    return engine.World(
        api=None,
        prometheus=None,
        variables={"NAMESPACE": "shop"},
        targets=actions.Targets("shop"),
        approvals=policy.judge(incident, s, UID, ApprovalSettings(key=KEY)),
        incident="shop/checkout",
    )


ROLLBACK = {"id": "rollback", "type": "action", "title": "Roll back", "action": {"type": "rollbackDeployment"},
            "automation": "suggest", "timeoutSeconds": 600}  # fmt: skip
PAGE = {"id": "page", "type": "escalate", "title": "Page the team"}


def states(progress) -> dict[str, str]:
    return {s.id: str(s.state) for s in progress.sop.steps}


def test_an_action_waits_for_approval_announces_it_once_and_is_idempotent():
    s = spec(ROLLBACK)
    sop = engine.start(Match("x", 1.0, "r"), s, T0)
    first = engine.advance(sop, s, world(s), T0)
    assert first.outcome == "waiting" and states(first) == {"rollback": "AwaitingApproval"}
    [(kind, reason, message)] = first.events
    assert reason == "ApprovalRequired" and "kubectl -n shop patch incident checkout" in message
    again = engine.advance(first.sop, s, world(s), T0 + timedelta(seconds=30))
    assert again.events == [] and again.sop == first.sop


def test_a_suggested_action_approved_is_recorded_as_done_by_hand_and_resolves():
    s = spec(ROLLBACK)
    waiting = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0).sop
    done = engine.advance(waiting, s, world(s, rollback="jane"), T0 + timedelta(minutes=1))
    assert done.outcome == "resolved" and states(done) == {"rollback": "Succeeded"}
    assert "confirmed by jane" in done.sop.steps[0].output and done.sop.audit == []  # the operator changed nothing
    assert done.sop.finished_at == T0 + timedelta(minutes=1)


def test_no_approval_in_time_follows_the_failure_branch_and_skips_the_rest():
    verify = {"id": "verify", "type": "check", "title": "Verify", "command": "kubectl get pods"}
    s = spec({**ROLLBACK, "onSuccess": "verify", "onFailure": "page"}, verify, PAGE,
             escalation={"contacts": ["sre-oncall"]})  # fmt: skip
    waiting = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0).sop
    late = engine.advance(waiting, s, world(s), T0 + timedelta(seconds=601))
    assert late.outcome == "escalated"
    assert states(late) == {"rollback": "Failed", "verify": "Skipped", "page": "Succeeded"}
    assert late.sop.steps[0].output == "no approval within 600s"
    assert ("Warning", "Escalated", "step page: Page the team sre-oncall") in late.events


def test_the_runbook_deadline_bounds_every_wait():
    s = spec({**ROLLBACK, "timeoutSeconds": None}, escalation={"afterMinutes": 30})
    waiting = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0).sop
    assert engine.advance(waiting, s, world(s), T0 + timedelta(minutes=29)).outcome == "waiting"
    late = engine.advance(waiting, s, world(s), T0 + timedelta(minutes=31))
    assert late.outcome == "escalated" and late.sop.steps[0].output == "no approval within 30 minutes"


def test_a_check_that_cannot_run_fails_into_its_branch():
    check = {"id": "errors", "type": "decision", "title": "Error rate up?", "promql": "rate(x[5m]) > 1",
             "onSuccess": "rollback", "onFailure": "page"}  # fmt: skip
    s = spec(check, ROLLBACK, PAGE)
    p = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0)
    assert states(p) == {"errors": "Failed", "rollback": "Skipped", "page": "Succeeded"}
    assert p.sop.steps[0].output.startswith("could not run: no Prometheus endpoint is configured")


def test_a_finished_runbook_is_left_alone():
    s = spec(PAGE)
    done = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0)
    assert done.outcome == "escalated"
    assert engine.advance(done.sop, s, world(s), T0 + timedelta(hours=1)).sop == done.sop


def test_only_reading_kubectl_commands_run():
    from aiops.sops.remediation.checks import CheckError, kubectl_argv

    v = {"NAMESPACE": "shop", "TARGET": "checkout", "POD": ""}
    assert kubectl_argv("kubectl -n $NAMESPACE get pods -l app=$TARGET -o name", v)[1:] == [
        "-n", "shop", "get", "pods", "-l", "app=checkout", "-o", "name"
    ]  # fmt: skip
    assert kubectl_argv("kubectl -n $NAMESPACE rollout history deployment/$TARGET", v)[-1] == "deployment/checkout"
    for bad, why in (
        ("kubectl -n shop delete pod x", "is not a read-only command"),
        ("kubectl rollout undo deployment/x", "is not a read-only command"),
        ("kubectl get pods | sh", "pipes"),
        ("kubectl --context=prod get pods", "no identity or cluster flags"),
        ("helm list", "only kubectl"),
        ("kubectl logs $POD", "$POD has no value"),
        ("kubectl get $WHAT", "unknown variable $WHAT"),
    ):
        try:
            kubectl_argv(bad, v)
        except CheckError as exc:
            assert why in str(exc), (bad, exc)
        else:
            raise AssertionError(f"{bad!r} was allowed")


def test_a_check_with_a_timeout_is_retried_until_it_holds_or_time_is_up():
    verify = {"id": "verify", "type": "check", "title": "Healthy again", "promql": "up == 1", "timeoutSeconds": 300}
    s = spec(verify)
    p = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world(s), T0)
    assert p.outcome == "waiting" and states(p) == {"verify": "Running"}
    assert p.sop.steps[0].output.startswith("not yet (could not run: no Prometheus endpoint")
    assert engine.advance(p.sop, s, world(s), T0 + timedelta(seconds=200)).outcome == "waiting"
    late = engine.advance(p.sop, s, world(s), T0 + timedelta(seconds=301))
    assert late.outcome == "escalated" and states(late) == {"verify": "Failed"}
