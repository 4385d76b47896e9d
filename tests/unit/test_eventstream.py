"""The event stream's and history's pure parts: fingerprints, stream entries, `aiops watch` lines, positions and
arguments, no server at all."""

import io
import json
import uuid
from pathlib import Path

import pytest

from aiops.cli import parser
from aiops.cli.watch import StateError, _keep, format_line, load_position, save_position, state_path, watch
from aiops.core.events import Bus, Event, EventType, fingerprint
from aiops.settings import cache_dir, from_env
from aiops.stores import history
from aiops.stores.eventconsumer import decode
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


def test_stream_entries_decode_and_foreign_ones_say_what_is_wrong():
    event = Event(type=EventType.FEEDBACK, key="shop/a", data={"correct": True})
    fields = {b"type": b"FEEDBACK", b"event": event.model_dump_json(by_alias=True, exclude_none=True).encode()}
    entry = decode("1733472000000-0", fields)
    assert (entry.id, entry.type, entry.problem) == ("1733472000000-0", "FEEDBACK", None)
    assert entry.event == json.loads(event.model_dump_json(by_alias=True, exclude_none=True))
    trimmed = decode("1-0", {})
    assert trimmed.event is None and trimmed.problem.startswith("no fields: deleted or trimmed")
    for foreign in ({"foo": "bar"}, {"type": "X", "event": "not json"}, {"event": "[1, 2]"}):
        entry = decode("2-0", foreign)
        assert entry.event is None and entry.problem.startswith("not an operator event"), foreign


def test_stream_settings_and_their_errors():
    conf = from_env({})
    assert (conf.events_stream_maxlen, conf.events_pubsub) == (100_000, True)
    conf = from_env({"AIOPS_EVENTS_STREAM_MAXLEN": "500", "AIOPS_EVENTS_PUBSUB": "false"})
    assert (conf.events_stream_maxlen, conf.events_pubsub) == (500, False)
    with pytest.raises(SystemExit, match="AIOPS_EVENTS_STREAM_MAXLEN=0: expected a positive integer"):
        from_env({"AIOPS_EVENTS_STREAM_MAXLEN": "0"})
    with pytest.raises(SystemExit, match="AIOPS_EVENTS_PUBSUB='maybe': expected true or false"):
        from_env({"AIOPS_EVENTS_PUBSUB": "maybe"})
    assert cache_dir({"AIOPS_CACHE_DIR": "/x"}) == Path("/x")
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/aiops-operator")


def test_watch_positions_are_per_redis_and_a_bad_state_file_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("AIOPS_CACHE_DIR", str(tmp_path))
    assert state_path("redis://:secret@redis.db.svc:6380/2") == tmp_path / "watch-redis.db.svc-6380-2.id"
    assert state_path("redis://127.0.0.1:6379") == tmp_path / "watch-127.0.0.1-6379-0.id"
    state = tmp_path / "deep" / "w.id"
    assert load_position(state) is None
    save_position(state, "1733472000000-3")
    assert load_position(state) == "1733472000000-3" and [p.name for p in state.parent.iterdir()] == ["w.id"]
    state.write_text("garbage")
    with pytest.raises(
        StateError, match=r"w.id holds 'garbage', not a stream id: delete the file, or pass --no-resume"
    ):
        load_position(state)
    err = io.StringIO()
    assert watch("redis://127.0.0.1:1/0", state=state, err=err) == 2 and "not a stream id" in err.getvalue()
    (tmp_path / "file").write_text("")
    assert _keep(tmp_path / "file" / "w.id", "1-0", err) is None  # the watch goes on, and says so
    assert f"cannot keep the position in {tmp_path}/file/w.id (File exists), so a restarted watch" in err.getvalue()
    assert watch("localhost:6379", resume=False, err=err) == 2 and "redis://" in err.getvalue()


def test_watch_arguments():
    args = parser().parse_args(["watch", "--since", "1733472000000-0", "--group", "g", "--type", "FEEDBACK"])
    assert (args.since, args.group, args.type, args.from_start, args.no_resume) == (
        "1733472000000-0",
        "g",
        ["FEEDBACK"],
        False,
        False,
    )
    assert args.consumer  # the host name by default
    for wrong in (["--since", "yesterday"], ["--since", "1-0", "--from-start"]):
        with pytest.raises(SystemExit):
            parser().parse_args(["watch", *wrong])
