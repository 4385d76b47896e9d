"""Conditions, timeline and status patches behave as the API conventions ask."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import RunPhase
from aiops.core.status import (
    StatusBuilder,
    StatusUnreadable,
    append_timeline,
    set_condition,
    status_patch,
    write,
    write_rebased,
)
from support.fakekube import FakeClient

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_transition_time_moves_only_when_status_flips():
    conds, changed = set_condition([], "Ready", "False", "MissingReference", "m1", 1, T0)
    assert changed and conds[0]["lastTransitionTime"] == "2026-11-23T20:00:00Z"
    conds, changed = set_condition(conds, "Ready", "False", "InvalidSpec", "m2", 2, T1)
    assert changed, "a new reason is a transition worth an Event"
    assert conds[0]["lastTransitionTime"] == "2026-11-23T20:00:00Z"
    assert conds[0]["observedGeneration"] == 2 and conds[0]["message"] == "m2"
    conds, changed = set_condition(conds, "Ready", "True", "Valid", "ok", 2, T1)
    assert changed and conds[0]["lastTransitionTime"] == "2026-11-23T20:05:00Z"
    again, changed = set_condition(conds, "Ready", "True", "Valid", "ok", 2, T1 + timedelta(hours=1))
    assert not changed and again == conds


def test_other_conditions_are_kept_in_place():
    conds, _ = set_condition([], "Ready", "True", "Valid", "", 1, T0)
    conds, _ = set_condition(conds, "Diagnosed", "False", "Waiting", "", 1, T0)
    conds, _ = set_condition(conds, "Ready", "False", "InvalidSpec", "", 2, T1)
    assert [c["type"] for c in conds] == ["Ready", "Diagnosed"]


def test_timeline_is_bounded_to_the_newest_entries():
    timeline = []
    for i in range(7):
        timeline = append_timeline(timeline, f"R{i}", "m", T0 + timedelta(seconds=i), limit=5)
    assert [e["reason"] for e in timeline] == ["R2", "R3", "R4", "R5", "R6"]


def test_status_patch_holds_only_changes():
    assert status_patch({"phase": "New", "x": 1}, {"phase": "New", "x": 2}) == {"x": 2}
    assert status_patch(None, {"phase": "New"}) == {"phase": "New"}
    assert status_patch({"phase": "New"}, {"phase": "New"}) == {}
    assert status_patch({"phase": "New", "queuePosition": 2}, {"phase": "New"}) == {"queuePosition": None}


def test_status_patch_deletes_nested_keys_a_field_dropped():
    """A merge patch keeps what it does not name: a finished runbook must not keep showing its last step."""
    old = {"sop": {"name": "r", "current": "rollback", "steps": [{"id": "a"}]}}
    new = {"sop": {"name": "r", "steps": [{"id": "a", "state": "Succeeded"}]}}
    assert status_patch(old, new) == {
        "sop": {"name": "r", "current": None, "steps": [{"id": "a", "state": "Succeeded"}]}
    }


def test_builder_is_idempotent():
    events = []
    emit = lambda *e: events.append(e)  # noqa: E731
    body = {"metadata": {"generation": 3}, "status": {}}

    first = StatusBuilder(INCIDENT, body, T0, emit, observe=True)
    first.phase("Triaging", "started")
    first.condition("Ready", "True", "AnalysisScheduled", "ok", event="Normal")
    patch = {}
    first.apply(patch)
    assert patch["status"]["observedGeneration"] == 3 and len(events) == 2
    assert [e["reason"] for e in patch["status"]["timeline"]] == ["Triaging", "AnalysisScheduled"]

    second = StatusBuilder(INCIDENT, {"metadata": {"generation": 3}, "status": patch["status"]}, T1, emit, observe=True)
    second.phase("Triaging", "started")
    second.condition("Ready", "True", "AnalysisScheduled", "ok", event="Normal")
    again = {}
    assert second.apply(again) == {} and again == {} and len(events) == 2


def test_builder_writes_typed_fields_in_their_wire_form():
    body = {"metadata": {"generation": 1}, "status": {"phase": "Pending", "attempts": 1}}
    b = StatusBuilder(ANALYSIS_RUN, body, T0, lambda *e: None)
    b.status.attempts += 1
    b.status.tokens = {"prompt": 10, "completion": 2}  # validated into TokenUsage on assignment
    b.status.completed_at = T1
    b.phase(RunPhase.SUCCEEDED, "done", event=None)
    assert b.changes() == {
        "attempts": 2,
        "tokens": {"prompt": 10, "completion": 2},
        "completedAt": "2026-11-23T20:05:00Z",
        "phase": "Succeeded",
    }
    with pytest.raises(ValidationError, match="attempts"):
        b.status.attempts = -1


def test_a_stored_status_that_does_not_fit_is_named():
    body = {"metadata": {"generation": 1}, "status": {"phase": "Sleeping"}}
    with pytest.raises(StatusUnreadable, match=r"AnalysisRun status.phase: Input should be"):
        StatusBuilder(ANALYSIS_RUN, body, T0, lambda *e: None)


def test_deferred_events_wait_for_the_write_and_a_failed_write_posts_none():
    """A run whose status write failed is run again (the API server was away): its Events go out once."""

    class Down(FakeClient):
        def patch_status(self, *args, **kwargs):
            raise ConnectionError("the API server is away")

    body = {"metadata": {"name": "r", "namespace": "shop", "generation": 1}, "status": {}}
    events = []
    for client in (Down(), FakeClient()):
        client.put(ANALYSIS_RUN, body)
        b = StatusBuilder(ANALYSIS_RUN, body, T0, lambda *e: events.append(e), defer=True)
        b.phase(RunPhase.FAILED, "gave up", event="Warning")
        assert events == [] and b.deferred == [("Warning", "Failed", "gave up")]
        try:
            write(client, b, body)
        except ConnectionError:
            assert events == []
    assert events == [("Warning", "Failed", "gave up")]


def test_a_shared_writer_on_an_older_copy_keeps_what_others_wrote_meanwhile():
    client = FakeClient()
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Valid",
        "message": "ok",
        "lastTransitionTime": "2026-12-06T00:00:00Z",
    }
    diagnosed = {"time": "2026-12-06T00:00:00Z", "reason": "Diagnosed", "message": "d"}
    status = {"phase": "Remediating", "timeline": [diagnosed], "conditions": [ready]}
    old = client.put(INCIDENT, {"metadata": {"name": "checkout", "namespace": "shop"}, "status": status})
    # Another writer (the Alertmanager receiver) changes the object after `old` was read ...
    b = StatusBuilder(INCIDENT, old, T0, lambda *_: None)
    b.condition("AlertFiring", "False", "ResolvedDuringRemediation", "alert resolved")
    b.record("ResolvedDuringRemediation", "alert resolved")
    write(client, b, old)
    # ... and this one, holding `old`, sets a condition and records a step.
    mine = StatusBuilder(INCIDENT, old, T1, client.emitter(INCIDENT, old))
    mine.condition("Approved", "False", "AwaitingApproval", "waiting for jane", event="Normal")
    mine.status.sop = None
    stored = write_rebased(client, mine, old)

    status = client.get(INCIDENT, "checkout", "shop")["status"]
    assert stored["status"] == status
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Ready": "Valid", "AlertFiring": "ResolvedDuringRemediation", "Approved": "AwaitingApproval"}  # fmt: skip
    assert [e["reason"] for e in status["timeline"]] == ["Diagnosed", "ResolvedDuringRemediation", "AwaitingApproval"]
    assert [e[2] for e in client.events] == ["AwaitingApproval"]  # its Event once, after the write went through
    assert len(client.writes) == 2  # the receiver's, and this one's second try (the first was refused)

    unchanged = StatusBuilder(INCIDENT, client.get(INCIDENT, "checkout", "shop"), T1, lambda *_: None)
    write_rebased(client, unchanged, client.get(INCIDENT, "checkout", "shop"))
    assert len(client.writes) == 2  # nothing changed: nothing written


def test_a_shared_writer_whose_change_another_already_wrote_sends_nothing_more():
    client = FakeClient()
    old = client.put(
        INCIDENT, {"metadata": {"name": "checkout", "namespace": "shop"}, "status": {"phase": "Remediating"}}
    )
    first = StatusBuilder(INCIDENT, old, T0, lambda *_: None)
    first.condition("AlertFiring", "False", "ResolvedDuringRemediation", "alert resolved")
    write(client, first, old)
    same = StatusBuilder(INCIDENT, old, T0, lambda *_: None)  # the same change, from the older copy
    same.condition("AlertFiring", "False", "ResolvedDuringRemediation", "alert resolved")
    stored = write_rebased(client, same, old)
    assert len(client.writes) == 1  # refused on the old resourceVersion, then nothing left to send
    assert stored == client.get(INCIDENT, "checkout", "shop")


def test_a_phase_another_writer_moved_meanwhile_stands_over_a_transition_decided_on_the_older_one():
    client = FakeClient()
    new = client.put(INCIDENT, {"metadata": {"name": "checkout", "namespace": "shop"}, "status": {}})
    # The reconciler reads the Incident as filed ...
    mine = StatusBuilder(INCIDENT, new, T1, client.emitter(INCIDENT, new), defer=True)
    mine.phase("New", "Incident filed", event=None)
    mine.phase("Triaging", "AnalysisRun checkout-rca opened")
    mine.status.analysis_run_ref = {"name": "checkout-rca"}
    mine.condition("Ready", "True", "AnalysisScheduled", "AnalysisRun checkout-rca holds the root-cause analysis")
    # ... and before its write goes through, the alert resolves it (the Alertmanager receiver).
    receiver = StatusBuilder(INCIDENT, new, T0, lambda *_: None)
    receiver.phase("Resolved", "alert resolved in Alertmanager", event=None)
    write(client, receiver, new, conditional=True)
    write_rebased(client, mine, new)

    status = client.get(INCIDENT, "checkout", "shop")["status"]
    assert status["phase"] == "Resolved"
    assert [e["reason"] for e in status["timeline"]] == ["Resolved"]  # no New, no Triaging after it
    assert status["analysisRunRef"] == {"name": "checkout-rca"}
    assert [c["reason"] for c in status["conditions"]] == ["AnalysisScheduled"]
    assert client.events == [], "no Event announces the dropped Triaging"
