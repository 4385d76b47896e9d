"""Which notices an Incident is due, and what the notifications controller records of a delivery."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime, timedelta

import pytest

from aiops.api import INCIDENT
from aiops.controllers.notifications import has_stage_to_hand_over, write_outcome
from aiops.notify import compose
from aiops.notify.delivery import Delivery
from aiops.notify.notice import Stage
from support.fakekube import FakeClient

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def incident(**status):
    return {
        "metadata": {"name": "checkout-latency", "namespace": "shop", "uid": "u-1", "labels": {"team": "payments"}},
        "spec": {
            "title": "checkout slow for 10.1.2.3",
            "severity": "high",
            "clusterRef": {"name": "eu-1"},
            "target": {"kind": "Deployment", "name": "checkout"},
        },  # fmt: skip
        "status": status,
    }


def diagnosed(minutes_ago: float = 5, causes=()):
    return {
        "diagnosedAt": (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "diagnosis": {
            "rootCause": "checkout OOMKilled; password=hunter2 in its env",
            "confidence": 80,
            "executionStatus": "COMPLETED",
            "evidence": [{"id": f"e{i}", "source": "kubernetes", "summary": f"evidence {i}"} for i in range(5)],
            "suspects": [
                {
                    "resource": "Deployment/checkout",
                    "failureMode": "RecentRollout",
                    "score": 0.8,
                    "reason": "r",
                    "causes": list(causes),
                }
            ],  # fmt: skip
        },
    }


def test_a_diagnosed_incident_is_due_one_redacted_notice():
    [n] = compose.due(incident(**diagnosed()), NOW)
    assert (n.stage, n.key, n.cluster, n.target) == (Stage.DIAGNOSED, "u-1:diagnosed", "eu-1", "Deployment/checkout")
    assert "hunter2" not in n.root_cause and "10.1.2.3" not in n.title  # the Redactor ran
    assert n.evidence == ["evidence 0", "evidence 1", "evidence 2"]
    assert n.labels == {"team": "payments"}


def test_a_shareable_cause_holds_the_diagnosis_until_a_parent_could_form():
    image = [{"kind": "image", "value": "shop/checkout:2"}]
    assert compose.due(incident(**diagnosed(minutes_ago=0.2, causes=image)), NOW) == []
    assert [n.stage for n in compose.due(incident(**diagnosed(minutes_ago=1, causes=image)), NOW)] == ["diagnosed"]
    # Held, but still a stage to hand over: the timer keeps coming back for it.
    assert compose.reached(incident(**diagnosed(minutes_ago=0.2, causes=image)))


def test_children_of_a_fleet_parent_are_due_nothing():
    child = incident(**diagnosed(), parentRef={"name": "fleet-x", "namespace": "aiops-system"})
    assert compose.due(child, NOW) == [] and compose.reached(child) == []


def test_each_step_awaiting_approval_and_the_resolution_are_notices_of_their_own():
    steps = [{"id": "rollback", "title": "Roll back", "state": "AwaitingApproval"}, {"id": "scale", "state": "Pending"}]
    inc = incident(
        **diagnosed(), sop={"name": "oom", "steps": steps}, phase="Resolved", resolvedAt="2026-12-06T10:00:00Z"
    )
    notices = compose.due(inc, NOW)
    assert [n.key for n in notices] == ["u-1:diagnosed", "u-1:awaiting-approval:rollback", "u-1:resolved"]
    approval = notices[1]
    assert approval.next_step == "rollback: Roll back" and approval.sop == "oom"
    assert approval.approve_command.startswith("kubectl -n shop patch incident checkout-latency --type=merge -p ")


@pytest.mark.parametrize("existing", [[], [{"step": "drain", "approvedBy": "ana"}]])
def test_the_approve_command_is_one_valid_shell_line_for_kubectl(existing):
    inc = incident()
    inc["spec"]["approvals"] = existing
    argv = shlex.split(compose.approve_command(inc, "rollback"))
    assert argv[:6] == ["kubectl", "-n", "shop", "patch", "incident", "checkout-latency"]
    entry = {"step": "rollback", "approvedBy": "YOUR-KUBERNETES-USERNAME"}
    body = json.loads(argv[argv.index("-p") + 1])
    if existing:  # appended, so the approvals already given stay
        assert argv[6] == "--type=json" and body == [{"op": "add", "path": "/spec/approvals/-", "value": entry}]
    else:
        assert argv[6] == "--type=merge" and body == {"spec": {"approvals": [entry]}}


def test_the_timer_runs_only_while_a_stage_is_not_handed_over(monkeypatch):
    from aiops.controllers import notifications

    monkeypatch.setattr(notifications, "_runtime", object())
    inc = incident(**diagnosed())
    assert has_stage_to_hand_over(inc)
    inc["metadata"]["annotations"] = {notifications.NOTIFIED_ANNOTATION: "diagnosed"}
    assert not has_stage_to_hand_over(inc)


def test_outcomes_land_in_status_with_a_notified_condition():
    client = FakeClient()
    client.put(INCIDENT, incident(**diagnosed()))
    uid = client.get(INCIDENT, "checkout-latency", "shop")["metadata"]["uid"]

    def outcome(channel, state, error=None, attempts=1):
        d = Delivery("shop/checkout-latency", uid, channel, "diagnosed", state, attempts, error, NOW)
        write_outcome(client, d)
        return client.get(INCIDENT, "checkout-latency", "shop")["status"]

    st = outcome("slack", "pending", "HTTP 503")
    assert [c["reason"] for c in st["conditions"] if c["type"] == "Notified"] == ["DeliveryPending"]
    st = outcome("slack", "sent", attempts=2)
    assert st["notifications"] == [{"channel": "slack", "stage": "diagnosed", "state": "Sent", "attempts": 2,
                                    "at": "2026-12-06T10:00:00Z"}]  # fmt: skip
    st = outcome("mail", "dead", "550 mailbox unavailable", attempts=1)
    [cond] = [c for c in st["conditions"] if c["type"] == "Notified"]
    assert cond["reason"] == "DeliveryFailed" and "550" in cond["message"]
    writes = len(client.writes)
    outcome("mail", "dead", "550 mailbox unavailable", attempts=1)
    assert len(client.writes) == writes  # the same outcome again writes nothing
    write_outcome(client, Delivery("shop/checkout-latency", "another-uid", "slack", "diagnosed", "sent", 1, None, NOW))
    assert len(client.writes) == writes  # a re-created Incident is not written with the old one's outcome
