"""History in a real PostgreSQL (Debian's postgresql-15): migrations, idempotent writes, the append-only
audit log, similar incidents, retention, PostgreSQL going away mid-run, and the operator end to end."""

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import redis

from aiops.core.events import Bus, Event, EventType
from aiops.settings import from_env
from aiops.stores import history
from aiops.stores.eventstream import STREAM
from aiops.stores.history import HistorySink, migrate
from harness import phase, wait_for
from support.servers import RedisServer, query


@pytest.fixture
def sink(dsn):
    s = HistorySink(dsn, attempts=3, backoff_s=0.1, retention_interval_s=0, timeout_s=3).start()
    yield s
    s.close()


def count(dsn, table, where="true", *args):
    return query(dsn, f"SELECT count(*) AS n FROM {table} WHERE {where}", *args)[0]["n"]


def event(type_, key="shop/checkout", uid="uid-checkout", generation=1, at=None, **data):
    extra = {"at": at} if at else {}
    return Event(type=type_, key=key, uid=uid, generation=generation, data=data, **extra)


def diagnosis(root_cause, *failure_modes, confidence=80):
    return {
        "rootCause": root_cause,
        "confidence": confidence,
        "executionStatus": "COMPLETED",
        "model": "qwen",
        "suspects": [
            {"resource": f"Pod/p{i}", "failureMode": m, "score": 0.9 - i / 10, "reason": f"{m} seen"}
            for i, m in enumerate(failure_modes)
        ],
    }


def test_migrations_apply_once_and_again_change_nothing(dsn):
    async def run():
        conn = await asyncpg.connect(dsn)
        try:
            first = await migrate.migrate(conn)
            second = await migrate.migrate(conn)
            return first, second, await migrate.current_version(conn)
        finally:
            await conn.close()

    first, second, version = asyncio.run(run())
    assert [m.version for m in first] == [m.version for m in migrate.migrations()] and second == []
    assert version == migrate.migrations()[-1].version
    assert count(dsn, "schema_migrations") == len(first)
    tables = {r["tablename"] for r in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"incidents", "analyses", "sop_actions", "feedback", "audit_log", "schema_migrations"} <= tables
    # the CLI against a current schema: nothing applied, the version printed
    proc = subprocess.run(
        [sys.executable, "-m", "aiops.cli", "history", "migrate", "--dsn", dsn], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"schema version {version}", proc.stderr


def test_an_event_delivered_twice_or_replayed_is_written_once(dsn, sink):
    created = event(EventType.INCIDENT_CREATED, title="checkout OOMKilled", severity="critical")
    diagnosed = event(EventType.DIAGNOSED, **diagnosis("memory limit too low", "OOMKilled"))
    replay = Event(**{**created.model_dump(), "id": uuid.uuid4().hex})  # a handler that ran again
    for e in (created, created, replay, diagnosed, diagnosed):
        sink.handle(e)
    assert sink.flush()
    assert (sink.counters.written, sink.counters.duplicates, sink.counters.failed) == (2, 3, 0)
    assert count(dsn, "incidents") == 1 and count(dsn, "analyses") == 1 and count(dsn, "audit_log") == 2
    # a new diagnosis of the same generation replaces the analysis; a new generation adds one
    sink.handle(event(EventType.DIAGNOSED, **diagnosis("memory leak in the cart cache", "OOMKilled")))
    sink.handle(event(EventType.DIAGNOSED, generation=2, **diagnosis("bad rollout", "RolloutRegression")))
    action = {"sop": "oom", "at": "2025-01-01T00:00:00Z", "step": "restart", "action": "restartPod", "outcome": "ok"}
    for _ in range(2):
        sink.handle(event(EventType.SOP_ACTION, **action))
        sink.handle(event(EventType.FEEDBACK, generation=3, correct=True, by="alice"))
    assert sink.flush()
    rows = query(dsn, "SELECT generation, root_cause FROM analyses ORDER BY generation")
    assert [(r["generation"], r["root_cause"]) for r in rows] == [
        (1, "memory leak in the cart cache"),
        (2, "bad rollout"),
    ]
    assert count(dsn, "sop_actions") == 1 and count(dsn, "feedback") == 1
    assert count(dsn, "audit_log") == 6


def test_an_undo_is_an_audited_row_of_its_own_with_its_reason(dsn, sink):
    made = {"sop": "oom", "at": "2025-01-01T00:00:00Z", "step": "rollback", "action": "rollbackDeployment",
            "outcome": "done"}  # fmt: skip
    undone = {**made, "at": "2025-01-01T00:01:00Z", "outcome": "undone: the snapshot is restored", "undo": True,
              "reason": "worse than before the change: restarts 0 -> 3"}  # fmt: skip
    for data in (made, undone):
        sink.handle(event(EventType.SOP_ACTION, **data))
    assert sink.flush()
    rows = query(dsn, "SELECT outcome, undo, reason FROM sop_actions ORDER BY at")
    assert [(r["outcome"], r["undo"], r["reason"]) for r in rows] == [
        ("done", False, None),
        ("undone: the snapshot is restored", True, "worse than before the change: restarts 0 -> 3"),
    ]


def test_the_audit_log_is_append_only(dsn, sink):
    sink.handle(event(EventType.INCIDENT_CREATED, title="t", severity="low"))
    assert sink.flush() and count(dsn, "audit_log") == 1
    for sql in ("UPDATE audit_log SET key = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            query(dsn, sql)
    assert query(dsn, "SELECT key FROM audit_log")[0]["key"] == "shop/checkout"


def test_similar_ranks_the_past_incident_like_this_one_first(dsn, sink):
    past = [
        ("shop/checkout", "u-oom", "checkout pods restarting", diagnosis("memory limit 256Mi too low", "OOMKilled")),
        ("pay/api", "u-img", "payments api not starting", diagnosis("image tag does not exist", "ImagePullBackOff")),
        ("ops/node", "u-disk", "node disk pressure", diagnosis("log volume full on node-3", "NodeDiskPressure")),
    ]
    for key, uid, title, d in past:
        sink.handle(event(EventType.INCIDENT_CREATED, key=key, uid=uid, title=title, severity="high"))
        sink.handle(event(EventType.DIAGNOSED, key=key, uid=uid, **d))
    step = {"sop": "oom", "at": "2025-01-01T00:00:00Z", "step": "raise", "action": "patchMemory", "outcome": "ok"}
    sink.handle(event(EventType.SOP_ACTION, key="shop/checkout", uid="u-oom", target="Deployment/checkout", **step))
    sink.handle(event(EventType.FEEDBACK, key="shop/checkout", uid="u-oom", generation=2, correct=True, comment="yes"))
    assert sink.flush() and sink.counters.failed == 0

    found = sink.similar("cart pods OOMKilled again: memory limit reached, exit code 137", limit=3)
    assert found and found[0].uid == "u-oom", found
    top = found[0]
    assert (top.root_cause, top.failure_modes, top.correct) == ("memory limit 256Mi too low", ["OOMKilled"], True)
    assert top.actions == ["raise: patchMemory Deployment/checkout -> ok"]
    assert "confirmed correct" in top.summary() and "memory limit 256Mi" in top.summary()
    assert all(p.rank <= top.rank for p in found)
    assert sink.similar("image pull failed for payments", 3)[0].uid == "u-img"
    assert [p.uid for p in sink.similar("OOMKilled", 3, exclude_uid="u-oom")] == []
    assert sink.similar("", 3) == [] and sink.similar("   ", 3) == []
    assert sink.similar("it's a \\ back'slash & (odd) | query: *", 3) == []  # tsquery syntax is not the user's


def test_retention_removes_rows_older_than_the_setting(dsn, sink):
    old = datetime.now(UTC) - timedelta(days=100)
    for key, uid, at in (("a/old", "u-old", old), ("a/new", "u-new", None)):
        sink.handle(event(EventType.INCIDENT_CREATED, key=key, uid=uid, at=at, title=key, severity="low"))
        sink.handle(event(EventType.DIAGNOSED, key=key, uid=uid, at=at, **diagnosis("x", "OOMKilled")))
    assert sink.flush() and count(dsn, "incidents") == 2
    assert sink.retention() == {"incidents": 1, "audit_log": 2}
    assert [r["uid"] for r in query(dsn, "SELECT uid FROM incidents")] == ["u-new"]
    assert count(dsn, "analyses") == 1 and count(dsn, "audit_log") == 2
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # outside the retention job, still append-only
        query(dsn, "DELETE FROM audit_log")


def test_postgres_down_mid_run_is_retried_counted_and_recovers(dsn, postgres, monkeypatch):
    settings = from_env({"AIOPS_POSTGRES_DSN": dsn})
    bus = Bus()
    monkeypatch.setattr(history, "_sink", None)
    sink = history.start(settings, bus=bus)
    sink.attempts, sink.backoff_s, sink.timeout_s = 3, 0.1, 3
    try:
        bus.publish(
            EventType.INCIDENT_CREATED, "shop/a", {"title": "a", "severity": "low"}, {"metadata": {"uid": "u-a"}}
        )
        bus.flush()
        assert sink.flush() and count(dsn, "incidents") == 1
        assert history.status()[0] and "1 event(s) recorded" in history.status()[1]

        postgres.stop()
        try:
            bus.publish(EventType.INCIDENT_CREATED, "shop/b", {"title": "b"}, {"metadata": {"uid": "u-b"}})
            bus.flush()
            assert sink.flush(30)
            assert sink.counters.failed == 1 and sink.counters.retries == 2 and bus.failures == {}
            ok, message = history.status()
            assert not ok and "history is failing" in message and "1 event(s) not recorded" in message
            assert history.similar("anything") == []  # context for the model, never an exception
        finally:
            postgres.start()

        bus.publish(EventType.INCIDENT_CREATED, "shop/c", {"title": "c"}, {"metadata": {"uid": "u-c"}})
        # data the database cannot store as is (NUL characters, a confidence that is no number)
        bus.publish(EventType.DIAGNOSED, "shop/c", {"rootCause": "a\x00b", "confidence": "high", "suspects": "?"})
        # and a payload that is refused: counted, not retried
        bus.publish(EventType.FEEDBACK, "shop/c", {"correct": "maybe"}, {"metadata": {"uid": "u-c"}})
        bus.flush()
        assert sink.flush(30)
        assert [r["uid"] for r in query(dsn, "SELECT uid FROM incidents ORDER BY uid")] == ["key:shop/c", "u-a", "u-c"]
        assert tuple(query(dsn, "SELECT root_cause, confidence FROM analyses")[0]) == ("ab", None)
        assert sink.counters.failed == 2 and history.status()[0]
    finally:
        sink.close()


def test_history_is_off_without_a_dsn_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(history, "_sink", None)
    bus = Bus()
    assert history.start(from_env({}), bus=bus) is None and bus.sinks == []
    assert history.status() == (False, "history is off: AIOPS_POSTGRES_DSN is not set")
    assert history.similar("checkout OOMKilled") == []
    history.start(from_env({"AIOPS_POSTGRES_DSN_FILE": str(tmp_path / "missing")}), bus=bus)
    assert "cannot read AIOPS_POSTGRES_DSN_FILE" in history.status()[1] and bus.sinks == []
    (tmp_path / "dsn").write_text("mysql://nope\n")
    history.start(from_env({"AIOPS_POSTGRES_DSN_FILE": str(tmp_path / "dsn")}), bus=bus)
    assert history.status() == (False, "history is off: AIOPS_POSTGRES_DSN is not a postgresql:// URL")
    with pytest.raises(SystemExit, match="AIOPS_HISTORY_RETENTION_DAYS"):
        from_env({"AIOPS_HISTORY_RETENTION_DAYS": "0"})


@pytest.mark.cluster
def test_the_operator_records_incidents_and_streams_them(dsn, operator_env, kubectl, namespace, writer):
    from aiops_dev.eval import cases

    server = RedisServer().start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        operator = operator_env({"AIOPS_POSTGRES_DSN": dsn, "AIOPS_REDIS_URL": server.url})
        wait_for(
            lambda: "history is on" in (log := operator.log(since_start=True)) and "event stream is on" in log,
            30,
            "the operator to say history and the event stream are on",
        )
        cases.write("checkout-oomkilled", writer)
        manifest = {
            "apiVersion": "aiops.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": "oom"},
            "spec": {
                "title": "checkout restarting",
                "severity": "critical",
                "target": {"kind": "Deployment", "name": "checkout"},
                "analysis": {"llm": False},
            },
        }
        kubectl.apply(manifest, namespace)
        inc = kubectl.wait(
            "incident", "oom", namespace, until=lambda o: phase(o) in ("Diagnosed", "Failed"), timeout=90
        )
        key = f"{namespace}/oom"
        rows = wait_for(lambda: query(dsn, "SELECT * FROM incidents WHERE key = $1", key), 30, "the incident row")
        assert rows[0]["uid"] == inc["metadata"]["uid"] and rows[0]["title"] == "checkout restarting"
        assert rows[0]["severity"] == "critical"

        def got(type_):
            messages = [json.loads(fields["event"]) for _, fields in client.xrange(STREAM)]
            return [m for m in messages if m["type"] == type_ and m["key"] == key]

        created = wait_for(lambda: got("INCIDENT_CREATED"), 30, "INCIDENT_CREATED on the Redis stream")
        assert created[0]["uid"] == inc["metadata"]["uid"] and created[0]["data"]["severity"] == "critical"
        wait_for(lambda: got("DIAGNOSED"), 30, "DIAGNOSED on the Redis stream")
        analyses = wait_for(lambda: query(dsn, "SELECT * FROM analyses"), 30, "the analysis row")
        assert analyses[0]["root_cause"] == inc["status"]["diagnosis"]["rootCause"]
    finally:
        client.close()
        server.close()
