"""Snapshot, verification and undo without a cluster: what can be decided before any object is read, the
verify block's rules, and the guard metrics' arithmetic. The changes themselves are in
tests/integration/test_undo.py, against a real API server."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from aiops.api.incident import Change, ChangeState, GuardReading, IncidentSpec
from aiops.api.sop import SOPSpec, Verification
from aiops.settings import ApprovalSettings
from aiops.sops import approvals as policy
from aiops.sops.remediation import actions, engine, guards
from aiops.sops.remediation.matching import Match

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RESTART = {"id": "restart", "type": "action", "title": "Restart", "action": {"type": "rolloutRestart"},
           "automation": "auto", "approvalRequired": False, "onFailure": "page",
           "verify": {"condition": "Available", "timeoutSeconds": 60, "settleSeconds": 0}}  # fmt: skip
PAGE = {"id": "page", "type": "escalate", "title": "Page the team"}


def test_an_action_with_nothing_to_act_on_is_audited_and_takes_its_failure_branch_without_a_snapshot():
    s = SOPSpec.model_validate({"title": "t", "steps": [RESTART, PAGE]})
    incident = IncidentSpec(title="t", severity="critical")
    world = engine.World(
        api=None,  # never reached: there is no Deployment to read
        prometheus=None,
        variables={"NAMESPACE": "shop"},
        targets=actions.Targets("shop"),
        approvals=policy.judge(incident, s, "uid", ApprovalSettings()),
        incident="shop/checkout",
    )
    p = engine.advance(engine.start(Match("x", 1.0, "r"), s, T0), s, world, T0)
    assert p.outcome == "escalated" and [st.state for st in p.sop.steps] == ["Failed", "Succeeded"]
    assert p.sop.changes == []  # nothing snapshotted: nothing could change
    [audit] = p.sop.audit
    assert audit.dry_run.startswith("not attempted: rolloutRestart: no deployment to act on")
    assert ("Warning", "ActionFailed") == p.events[0][:2]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ({**RESTART, "verify": {"settleSeconds": 90, "timeoutSeconds": 60}}, "settleSeconds: must not exceed"),
        ({**RESTART, "verify": {"guards": [{"name": "p99", "promql": "x"}] * 2}}, "repeated: p99"),
        ({**RESTART, "verify": {"condition": "available"}}, "String should match pattern"),
        ({"id": "c", "type": "check", "title": "c", "command": "kubectl get pods", "verify": {}},
         "steps[0].verify: only action steps are verified"),
    ],
)  # fmt: skip
def test_a_verify_block_that_cannot_work_is_refused_naming_the_field(step, error):
    with pytest.raises(ValidationError) as exc:
        SOPSpec.model_validate({"title": "t", "steps": [step]})
    assert error in str(exc.value)


def status(restarts=0, waiting=None, finished=None):
    cs = {"name": "app", "restartCount": restarts, "state": {"waiting": {"reason": waiting}} if waiting else {}}
    if finished:
        cs["lastState"] = {"terminated": {"finishedAt": finished.strftime("%Y-%m-%dT%H:%M:%SZ")}}
    return {"status": {"containerStatuses": [cs]}}


def test_restarting_counts_recent_restarts_and_crash_loops_not_old_ones():
    pods = [
        status(3, finished=T0 - timedelta(minutes=2)),  # restarted 2 minutes ago
        status(9, waiting="CrashLoopBackOff", finished=T0 - timedelta(hours=1)),  # waits to restart again
        status(5, finished=T0 - timedelta(minutes=30)),  # long ago: healthy since
        status(0),
    ]
    assert guards.restarting(pods, T0) == 2


def test_a_guard_is_worse_only_beyond_its_tolerance_and_margin_and_only_when_measured_twice():
    ratio = guards.GuardSpec("error-ratio", "x", tolerance=0.1, margin=0.01)
    assert not guards.worse(ratio, GuardReading(name="error-ratio", before=0.10, after=0.12))  # within 0.11 + 0.01
    assert guards.worse(ratio, GuardReading(name="error-ratio", before=0.10, after=0.13))
    assert not guards.worse(ratio, GuardReading(name="error-ratio", before=None, after=0.9))  # no baseline
    restarts = guards.BUILT_IN[0]
    assert guards.worse(restarts, GuardReading(name="restarts", before=0, after=1))  # any new restart
    assert not guards.worse(restarts, GuardReading(name="restarts", before=2, after=1))


def test_built_in_guards_apply_unless_a_step_declares_one_of_the_same_name():
    verify = Verification.model_validate(
        {"guards": [{"name": "latency-p99", "promql": "my_p99 > 0", "tolerance": 1}, {"name": "queue", "promql": "q"}]}
    )
    assert [g.name for g in guards.specs(verify, prometheus=False)] == ["restarts", "latency-p99", "queue"]
    both = guards.specs(verify, prometheus=True)
    assert [g.name for g in both] == ["restarts", "error-ratio", "latency-p99", "queue"]
    assert next(g for g in both if g.name == "latency-p99").promql == "my_p99 > 0"


def test_guard_readings_say_what_was_not_measured():
    readings = [
        GuardReading(name="restarts", before=0, after=2, note="pod status"),
        GuardReading(name="error-ratio", before=None, after=None, note="not measured: no series"),
    ]
    assert guards.describe(readings) == "restarts 0 -> 2, error-ratio not measured: no series"


def test_the_prometheus_selector_is_the_collectors_over_the_pods_the_guard_read():
    change = Change(step="s", action="rolloutRestart", target="Deployment/shop/checkout", path="/p",
                    state=ChangeState.VERIFYING, taken_at=T0)  # fmt: skip
    pods = [{"metadata": {"name": "checkout-7d9f-x2kqz"}}, {"metadata": {"name": "checkout-7d9f-a1b2c"}}]
    assert guards.selector(change, pods) == 'namespace="shop",pod=~"checkout-7d9f-a1b2c|checkout-7d9f-x2kqz"'
