"""The event stream's and history's pure parts: fingerprints, `aiops watch` lines, no server at all."""

import uuid

from aiops.cli.watch import format_line
from aiops.core.events import Bus, Event, EventType, fingerprint
from aiops.settings import from_env
from aiops.stores import history
from aiops.stores.history.store import PastIncident, clean
from aiops_dev.controlplane import free_port
from harness import wait_for


def test_a_replay_has_the_fingerprint_of_the_original_and_a_change_does_not():
    e = Event(type=EventType.DIAGNOSED, key="shop/a", uid="u", generation=2, data={"rootCause": "x", "n": [1]})
    replay = Event(**{**e.model_dump(), "id": uuid.uuid4().hex, "data": {"n": [1], "rootCause": "x"}})
    assert fingerprint(replay) == fingerprint(e)
    for change in ({"generation": 3}, {"data": {"rootCause": "y"}}, {"type": EventType.FEEDBACK}, {"key": "shop/b"}):
        assert fingerprint(Event(**{**e.model_dump(), **change})) != fingerprint(e)
    gpu = Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 1})
    assert fingerprint(gpu) != fingerprint(Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 1}))


def test_watch_lines_are_short_and_one_per_event():
    at = "2025-03-01T09:14:03Z"
    sop = {
        "sop": "oom",
        "step": "rollback",
        "action": "rollbackDeployment",
        "target": "Deployment/shop/c",
        "outcome": "ok",
    }
    assert format_line({"type": "SOP_ACTION", "at": at, "key": "shop/c", "data": sop}) == (
        "09:14:03Z SOP_ACTION             shop/c oom rollback: rollbackDeployment Deployment/shop/c -> ok"
    )
    feedback = {"type": "FEEDBACK", "at": at, "key": "shop/c", "data": {"correct": False, "by": "bob"}}
    assert format_line(feedback).endswith("shop/c diagnosis incorrect by bob")
    long = {"type": "DIAGNOSED", "at": "garbage", "key": "k", "data": {"diagnosis": {"rootCause": "x\n" * 500}}}
    line = format_line(long)
    assert "\n" not in line and len(line) < 200 and line.startswith("garbage ")
    assert format_line({"type": "ANOMALY_DETECTED", "key": "k", "data": {"nested": {"a": 1}}}).endswith(
        '{"nested": {"a": 1}}'
    )


def test_nul_characters_are_dropped_before_postgres_sees_them():
    assert clean({"a\x00": ["b\x00c", 1, None, True, {"d": 2.5}]}) == {"a": ["bc", 1, None, True, {"d": 2.5}]}


def test_past_incident_summary_for_a_prompt():
    from datetime import UTC, datetime

    when = datetime(2025, 1, 2, tzinfo=UTC)
    p = PastIncident("u", "shop/c", "checkout restarting", "critical", when, 0.5, "limit too low", 80, "qwen",
                     ["OOMKilled"], False, "it was a leak", ["raise: patch -> ok"])  # fmt: skip
    assert p.summary() == (
        "2025-01-02 shop/c (critical): checkout restarting; root cause (80% confidence): limit too low; "
        "failure modes: OOMKilled; diagnosis judged INCORRECT by an engineer: it was a leak; "
        "actions: raise: patch -> ok"
    )


def test_postgres_unreachable_at_start_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(history, "_sink", None)
    bus = Bus()
    sink = history.start(from_env({"AIOPS_POSTGRES_DSN": f"postgresql://x:secret@127.0.0.1:{free_port()}/db"}), bus=bus)
    try:
        assert sink is not None and bus.sinks == [sink]
        ok, message = wait_for(lambda: (s := history.status()) and not s[0] and s, 15, "history to report failing")
        assert message.startswith("history is failing: PostgreSQL 127.0.0.1:") and "secret" not in message
    finally:
        sink.close()
