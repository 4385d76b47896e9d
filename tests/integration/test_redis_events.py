"""The event stream on a real redis-server: events kept for consumers that were not running, `aiops watch`
resuming where it stopped, consumer groups and claims, MAXLEN, dedup keys, rate-limit counters, the pub/sub
copy, Redis going away."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis

from aiops.core.events import Bus, Event, EventType
from aiops.settings import from_env
from aiops.stores import eventstream
from aiops.stores.eventconsumer import GroupConsumer, Reader, trimmed_after
from aiops.stores.eventstream import CHANNEL, STATS, STREAM, RedisSink, channel
from harness import wait_for
from support.servers import RedisServer

INCIDENT = {"metadata": {"uid": "u-1", "generation": 1}}


@pytest.fixture
def server():
    s = RedisServer().start()
    yield s
    s.close()


@pytest.fixture
def client(server):
    c = redis.Redis.from_url(server.url, decode_responses=True)
    yield c
    c.close()


def watcher(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aiops.cli", "watch", "--redis-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


def watching(proc: subprocess.Popen) -> str:
    """The watch's first line on stderr: once it is out, whatever is appended next is read."""
    line = proc.stderr.readline()
    assert line.startswith("watching aiops:events on "), line
    return line


def finish(proc: subprocess.Popen, timeout: float = 20) -> tuple[list[str], str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out, err)
    return out.splitlines(), err


def kill(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def gpu(i: int) -> Event:
    return Event(type=EventType.GPU_UPDATE, key=f"hub-{i}", data={"gpus": i})


def stream(client) -> list[dict]:
    return [json.loads(fields["event"]) | {"_type": fields["type"]} for _, fields in client.xrange(STREAM)]


def test_aiops_watch_prints_the_events_published_through_the_bus(server, tmp_path):
    everything = watcher(server.url, "--count", "3", "--state", str(tmp_path / "all.id"))
    diagnosed_only = watcher(server.url, "--type", "DIAGNOSED", "--count", "1", "--no-resume")
    sink = RedisSink(server.url)
    bus = Bus()
    bus.register(sink)
    try:
        assert "from now, after 0-0" in watching(everything)
        watching(diagnosed_only)
        target = {"kind": "Deployment", "name": "checkout"}
        bus.publish(EventType.INCIDENT_CREATED, "shop/oom", {"title": "checkout restarting", "severity": "critical",
                                                             "target": target}, INCIDENT)  # fmt: skip
        diagnosis = {"rootCause": "memory limit\ntoo low", "confidence": 85, "model": "qwen", "suspects": []}
        bus.publish(EventType.DIAGNOSED, "shop/oom", diagnosis, INCIDENT)
        bus.publish(EventType.CLUSTER_STATUS_CHANGED, "spoke-1", {"phase": "Unreachable", "previous": "Ready"})
        bus.flush()
        lines, _ = finish(everything)
        assert len(lines) == 3, lines
        assert lines[0].split()[1:3] == ["INCIDENT_CREATED", "shop/oom"]
        assert lines[0].endswith("critical: checkout restarting on Deployment/checkout")
        assert lines[1].split()[1:3] == ["DIAGNOSED", "shop/oom"] and lines[1].endswith(
            "85% memory limit too low (qwen)"
        )
        assert lines[2].endswith("spoke-1 phase=Unreachable previous=Ready")
        assert all(line[:9].endswith("Z") and line[2] == ":" for line in lines)  # HH:MM:SSZ first
        lines, _ = finish(diagnosed_only)
        assert len(lines) == 1 and lines[0].split()[1] == "DIAGNOSED"
        assert sink.counters.published == 3 and (tmp_path / "all.id").read_text().strip() == sink.last_id
    finally:
        kill(everything, diagnosed_only)
        sink.close()


def test_events_appended_while_no_consumer_runs_are_read_later(server, client):
    group = GroupConsumer(server.url, "audit", "a-1", block_s=0.2)
    assert group.join() and not group.join()  # created once
    group.close()  # the consumer is gone; the group stays
    sink = RedisSink(server.url)
    try:
        for i in range(3):
            sink.handle(gpu(i))
        assert sink.counters.published == 3 and client.xlen(STREAM) == 3
        later = GroupConsumer(server.url, "audit", "a-2", block_s=0.2)
        entries = later.read()
        assert [e.event["key"] for e in entries] == ["hub-0", "hub-1", "hub-2"] and entries[0].type == "GPU_UPDATE"
        assert later.ack(*(e.id for e in entries)) == 3 and client.xpending(STREAM, "audit")["pending"] == 0
        later.close()
        reader = Reader(server.url, "0-0", block_s=0.2)  # no group: from the oldest event kept
        assert [e.event["key"] for e in reader.read(count=2)] == ["hub-0", "hub-1"]
        assert [e.event["key"] for e in reader.read()] == ["hub-2"] and reader.read() == []
        reader.close()
        lines, err = finish(watcher(server.url, "--from-start", "--count", "3", "--no-resume", "--json"))
        assert [json.loads(line)["key"] for line in lines] == ["hub-0", "hub-1", "hub-2"], err
    finally:
        sink.close()


def test_aiops_watch_resumes_after_the_last_event_it_printed(server, tmp_path):
    env = {"AIOPS_CACHE_DIR": str(tmp_path)}
    state = tmp_path / f"watch-127.0.0.1-{server.port}-0.id"
    sink = RedisSink(server.url)
    first = watcher(server.url, "--count", "2", env=env)
    try:
        watching(first)
        for i in range(2):
            sink.handle(gpu(i))
        lines, _ = finish(first)
        assert [line.split()[2] for line in lines] == ["hub-0", "hub-1"]
        assert state.read_text().strip() == sink.last_id
        for i in range(2, 5):  # while no watch runs
            sink.handle(gpu(i))
        second = watcher(server.url, "--count", "3", env=env)
        assert f"resuming ({state})" in watching(second)
        lines, err = finish(second)
        assert [line.split()[2] for line in lines] == ["hub-2", "hub-3", "hub-4"], err
        assert state.read_text().strip() == sink.last_id
        printed = sink.last_id
        fresh = watcher(server.url, "--no-resume", "--count", "1", env=env)  # from now, and no file kept
        watching(fresh)
        sink.handle(gpu(5))
        lines, _ = finish(fresh)
        assert lines[0].split()[2] == "hub-5" and state.read_text().strip() == printed
    finally:
        kill(first)
        sink.close()


def test_a_dead_group_members_entries_are_claimed_by_another(server, client):
    sink = RedisSink(server.url)
    dead = GroupConsumer(server.url, "actions", "dead", block_s=0.2)
    alive = GroupConsumer(server.url, "actions", "alive", claim_idle_s=2, block_s=0.2)
    try:
        dead.join()
        for i in range(4):
            sink.handle(gpu(i))
        taken = dead.read(count=3)  # ... and never acknowledged: the member dies
        assert [e.event["key"] for e in taken] == ["hub-0", "hub-1", "hub-2"]
        dead.close()
        assert client.xpending(STREAM, "actions")["consumers"] == [{"name": "dead", "pending": 3}]
        restarted = GroupConsumer(server.url, "actions", "dead", block_s=0.2)  # the same name gets its own again
        assert [e.id for e in restarted.read()] == [e.id for e in taken]
        restarted.close()
        fresh = alive.read()
        assert [e.event["key"] for e in fresh] == ["hub-3"]  # the dead member's are not idle long enough yet
        assert alive.ack(*(e.id for e in fresh)) == 1
        claimed = wait_for(alive.read, 10, "the dead member's entries to be claimed")
        assert [e.id for e in claimed] == [e.id for e in taken]
        assert alive.ack(*(e.id for e in claimed)) == 3
        assert client.xpending(STREAM, "actions")["pending"] == 0
        # `aiops watch --group` acknowledges what it prints; a second member gets only the rest
        for i in range(4, 7):
            sink.handle(gpu(i))
        member = watcher(server.url, "--group", "actions", "--consumer", "w-1", "--count", "3")
        lines, err = finish(member)
        assert [line.split()[2] for line in lines] == ["hub-4", "hub-5", "hub-6"], err
        assert "as w-1 of group actions" in err and client.xpending(STREAM, "actions")["pending"] == 0
    finally:
        alive.close()
        sink.close()


def test_a_group_lost_in_a_redis_restart_is_created_again_from_the_oldest_entry(server, client, caplog):
    member = GroupConsumer(server.url, "actions", "m-1", block_s=0.2)
    sink = RedisSink(server.url, backoff_s=0.05)
    try:
        member.join()
        server.stop()
        server.start()  # nothing persisted: no stream, no group
        sink.handle(gpu(1))  # appended before the member reads again, and not lost to it
        assert [e.event["key"] for e in member.read()] == ["hub-1"]
        assert "consumer group actions of aiops:events on 127.0.0.1:" in caplog.text
        assert "is gone; creating it again from the oldest entry" in caplog.text
    finally:
        member.close()
        sink.close()


def test_maxlen_bounds_the_stream_and_a_resumed_watch_says_what_was_trimmed(server, client, tmp_path):
    sink = RedisSink(server.url, maxlen=50)
    try:
        sink.handle(gpu(0))
        oldest = sink.last_id
        for i in range(1, 400):
            sink.handle(gpu(i))
        assert sink.counters.published == 400
        node = int(client.config_get("stream-node-max-entries")["stream-node-max-entries"])
        assert 50 <= client.xlen(STREAM) < 50 + node  # MAXLEN ~: whole nodes go, so a few more may stay
        assert json.loads(client.xrevrange(STREAM, count=1)[0][1]["event"])["key"] == "hub-399"
        kept = client.xrange(STREAM, count=1)[0][0]
        assert trimmed_after(client, oldest) == kept and trimmed_after(client, kept) is None
        (tmp_path / "w.id").write_text(oldest)
        lines, err = finish(watcher(server.url, "--state", str(tmp_path / "w.id"), "--count", "1"))
        assert f"the oldest event kept is {kept}: any after {oldest} and before it were trimmed" in err
        assert json.loads(client.xrange(STREAM, count=1)[0][1]["event"])["key"] == lines[0].split()[2]
    finally:
        sink.close()


def test_a_replayed_event_is_published_once(server, client):
    sink = RedisSink(server.url)
    try:
        event = Event(type=EventType.INCIDENT_CREATED, key="shop/a", uid="u-a", generation=1, data={"title": "a"})
        replay = Event(**{**event.model_dump(), "id": uuid.uuid4().hex})  # the handler ran again
        newer = Event(type=EventType.INCIDENT_CREATED, key="shop/a", uid="u-a", generation=2, data={"title": "a"})
        for e in (event, event, replay, newer):
            sink.handle(e)
        assert (sink.counters.published, sink.counters.deduplicated) == (2, 2)
        received = stream(client)
        assert [m["generation"] for m in received] == [1, 2] and {m.pop("_type") for m in received} == {
            "INCIDENT_CREATED"
        }
        assert received[0] == json.loads(event.model_dump_json(by_alias=True, exclude_none=True))
        dedup = f"aiops:dedup:{eventstream.fingerprint(event)}"
        assert 0 < client.ttl(dedup) <= 3600 and client.get(dedup).endswith("|" + client.xrange(STREAM)[0][0])
        assert client.hgetall(STATS) == {"published": "2", "deduplicated": "2"}
        # events without a generation (clusters) are only the same by their id
        for _ in range(2):
            sink.handle(Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 2}))
        assert sink.counters.published == 4 and client.xlen(STREAM) == 4
    finally:
        sink.close()


def test_a_retry_after_a_lost_reply_does_not_append_twice(server, client):
    sink = RedisSink(server.url, backoff_s=0.01)
    append, calls = sink._append, []

    def reply_lost(**kwargs):
        calls.append(append(**kwargs))
        if len(calls) == 1:
            raise redis.ConnectionError("the reply was lost")
        return calls[-1]

    sink._append = reply_lost
    try:
        sink.handle(gpu(1))
        assert (sink.counters.published, sink.counters.retries, sink.counters.failed) == (1, 1, 0)
        assert calls[0] == calls[1] == ["ok", sink.last_id] and client.xlen(STREAM) == 1
    finally:
        sink.close()


def test_rate_limit_per_object_and_type_per_minute(server, client):
    while time.time() % 60 > 55:  # the counters are per clock minute: keep the test inside one
        time.sleep(0.5)
    sink = RedisSink(server.url, rate_limit=3)
    try:
        for generation in range(1, 6):
            sink.handle(Event(type=EventType.DIAGNOSED, key="shop/noisy", uid="u", generation=generation, data={}))
        sink.handle(Event(type=EventType.DIAGNOSED, key="shop/quiet", uid="q", generation=1, data={}))
        sink.handle(Event(type=EventType.INCIDENT_CREATED, key="shop/noisy", uid="u", generation=1, data={}))
        assert (sink.counters.published, sink.counters.rate_limited) == (5, 2)
        assert [(m["key"], m["generation"]) for m in stream(client)] == [
            ("shop/noisy", 1), ("shop/noisy", 2), ("shop/noisy", 3), ("shop/quiet", 1), ("shop/noisy", 1)
        ]  # fmt: skip
        minute = int(time.time() // 60)
        counter = f"aiops:rate:DIAGNOSED:shop/noisy:{minute}"
        assert client.get(counter) == "5" and 0 < client.ttl(counter) <= 120
        assert client.hget(STATS, "rate_limited") == "2"
        # a skipped event left no dedup key: once the window is over it can still go out
        skipped = Event(type=EventType.DIAGNOSED, key="shop/noisy", uid="u", generation=5, data={})
        assert not client.exists(f"aiops:dedup:{eventstream.fingerprint(skipped)}")
    finally:
        sink.close()


def test_pubsub_gets_a_copy_until_it_is_turned_off(server, client, caplog):
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL, channel(EventType.FEEDBACK))
    caplog.set_level("INFO", logger="aiops.stores.eventstream")
    bus = Bus()
    on = eventstream.start(from_env({"AIOPS_REDIS_URL": server.url, "AIOPS_EVENTS_STREAM_MAXLEN": "500"}), bus=bus)
    off = RedisSink(server.url, pubsub=False)
    try:
        assert (on.maxlen, on.pubsub) == (500, True) and bus.sinks == [on]
        assert f"stream aiops:events (MAXLEN ~500); also on pub/sub {CHANNEL}:* until AIOPS_EVENTS_PUBSUB=false" in (
            caplog.text
        )
        on.handle(Event(type=EventType.FEEDBACK, key="shop/a", data={"correct": True}))
        off.handle(Event(type=EventType.FEEDBACK, key="shop/b", data={"correct": True}))
        received = []

        def copies() -> bool:
            while message := pubsub.get_message(timeout=0.2):
                received.append(message)
            return len(received) >= 2

        wait_for(copies, 10, "the pub/sub copies")
        assert sorted(m["channel"] for m in received) == [CHANNEL, channel(EventType.FEEDBACK)]
        assert {json.loads(m["data"])["key"] for m in received} == {"shop/a"}
        assert pubsub.get_message(timeout=0.5) is None  # nothing of shop/b
        assert [m["key"] for m in stream(client)] == ["shop/a", "shop/b"]
    finally:
        pubsub.close()
        on.close()
        off.close()


def test_events_published_while_redis_is_down_are_held_and_appended_in_order_once_it_is_back(server, client):
    sink = RedisSink(server.url, attempts=3, backoff_s=0.05, timeout_s=1, backlog=3)
    bus = Bus()
    bus.register(sink)
    bus.publish(EventType.INCIDENT_CREATED, "shop/a", {"title": "a"}, INCIDENT)
    bus.flush()
    assert sink.counters.published == 1
    server.stop()
    try:
        started = time.monotonic()
        bus.publish(EventType.DIAGNOSED, "shop/a", {"rootCause": "x"}, INCIDENT)  # does not raise, nor block
        assert time.monotonic() - started < 0.5
        for i in range(3):  # behind it, without trying Redis again: the backlog has room for two of them
            bus.publish(EventType.FEEDBACK, f"shop/{i}", {"correct": True}, INCIDENT)
        bus.flush()
        assert (sink.counters.held, sink.counters.failed, sink.counters.retries) == (3, 1, 2) and bus.failures == {}
        assert "ConnectionError" in sink.last_error and len(sink.backlog) == 3
    finally:
        server.start()  # nothing persisted across the restart: only what was held is in the stream after it
    wait_for(lambda: not sink.backlog, 10, "the held events appended")
    bus.publish(EventType.FEEDBACK, "shop/a", {"correct": True}, INCIDENT)
    bus.flush()
    try:
        assert sink.counters.published == 5 and sink.last_error is None
        assert [(m["type"], m["key"]) for m in stream(client)] == [
            ("DIAGNOSED", "shop/a"), ("FEEDBACK", "shop/0"), ("FEEDBACK", "shop/1"), ("FEEDBACK", "shop/a")
        ]  # fmt: skip
    finally:
        sink.close()


def test_without_redis_nothing_is_started(caplog):
    bus = Bus()
    caplog.set_level("INFO", logger="aiops.stores.eventstream")
    assert eventstream.start(from_env({}), bus=bus) is None and bus.sinks == []
    assert "event stream is off: AIOPS_REDIS_URL is not set" in caplog.text
    assert eventstream.start(from_env({"AIOPS_REDIS_URL": "localhost:6379"}), bus=bus) is None
    assert "event stream is off" in caplog.text and bus.sinks == []
    proc = subprocess.run([sys.executable, "-m", "aiops.cli", "watch"], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "AIOPS_REDIS_URL"})  # fmt: skip
    assert proc.returncode == 2 and "AIOPS_REDIS_URL" in proc.stderr


def test_aiops_watch_waits_for_redis_and_skips_foreign_entries():
    server = RedisServer()  # not started yet
    proc = watcher(server.url, "--count", "1", "--no-resume")
    client = None
    try:
        assert "Redis unreachable" in proc.stderr.readline()  # it retries, with backoff
        server.start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        wait_for(lambda: "watching" in proc.stderr.readline(), 30, "the watch to connect")
        client.xadd(STREAM, {"foo": "bar"})
        sink = RedisSink(server.url)
        sink.handle(Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 4, "product": "H100"}))
        sink.close()
        lines, err = finish(proc)
        assert lines[-1].endswith("GPU_UPDATE             hub gpus=4 product=H100"), lines
        assert "not an event at " in err and "not an operator event" in err
    finally:
        kill(proc)
        if client:
            client.close()
        server.close()
