"""The event stream on a real redis-server: `aiops watch`, dedup keys, rate-limit counters, Redis going away."""

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
from aiops.stores.eventstream import CHANNEL, STATS, RedisSink, channel
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


def watcher(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aiops.cli", "watch", "--redis-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def drain(pubsub, seconds: float = 1.0) -> list[dict]:
    """The messages that arrive within `seconds` (get_message returns None for subscription replies too)."""
    received, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if message := pubsub.get_message(timeout=0.1):
            received.append(json.loads(message["data"]))
    return received


def subscribed(client, name: str, n: int = 1) -> None:
    wait_for(lambda: dict(client.pubsub_numsub(name)).get(name, 0) >= n, 20, f"a subscriber on {name}")


def test_aiops_watch_prints_the_events_published_through_the_bus(server, client):
    everything = watcher(server.url, "--count", "3")
    diagnosed_only = watcher(server.url, "--type", "DIAGNOSED", "--count", "1")
    sink = RedisSink(server.url)
    bus = Bus()
    bus.register(sink)
    try:
        subscribed(client, CHANNEL)
        subscribed(client, channel(EventType.DIAGNOSED))
        target = {"kind": "Deployment", "name": "checkout"}
        bus.publish(EventType.INCIDENT_CREATED, "shop/oom", {"title": "checkout restarting", "severity": "critical",
                                                             "target": target}, INCIDENT)  # fmt: skip
        diagnosis = {"rootCause": "memory limit\ntoo low", "confidence": 85, "model": "qwen", "suspects": []}
        bus.publish(EventType.DIAGNOSED, "shop/oom", diagnosis, INCIDENT)
        bus.publish(EventType.CLUSTER_STATUS_CHANGED, "spoke-1", {"phase": "Unreachable", "previous": "Ready"})
        bus.flush()
        out, err = everything.communicate(timeout=20)
        lines = out.splitlines()
        assert everything.returncode == 0 and len(lines) == 3, (out, err)
        assert lines[0].split()[1:3] == ["INCIDENT_CREATED", "shop/oom"]
        assert lines[0].endswith("critical: checkout restarting on Deployment/checkout")
        assert lines[1].split()[1:3] == ["DIAGNOSED", "shop/oom"] and lines[1].endswith(
            "85% memory limit too low (qwen)"
        )
        assert lines[2].endswith("spoke-1 phase=Unreachable previous=Ready")
        assert all(line[:9].endswith("Z") and line[2] == ":" for line in lines)  # HH:MM:SSZ first
        out, _ = diagnosed_only.communicate(timeout=20)
        assert diagnosed_only.returncode == 0 and out.split()[1] == "DIAGNOSED"
        assert sink.counters.published == 3
    finally:
        for proc in (everything, diagnosed_only):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        sink.close()


def test_a_replayed_event_is_published_once(server, client):
    sink = RedisSink(server.url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        event = Event(type=EventType.INCIDENT_CREATED, key="shop/a", uid="u-a", generation=1, data={"title": "a"})
        replay = Event(**{**event.model_dump(), "id": uuid.uuid4().hex})  # the handler ran again
        newer = Event(type=EventType.INCIDENT_CREATED, key="shop/a", uid="u-a", generation=2, data={"title": "a"})
        for e in (event, event, replay, newer):
            sink.handle(e)
        assert (sink.counters.published, sink.counters.deduplicated) == (2, 2)
        received = drain(pubsub)
        assert [m["generation"] for m in received] == [1, 2]
        assert received[0] == json.loads(event.model_dump_json(by_alias=True, exclude_none=True))
        ttl = client.ttl(f"aiops:dedup:{eventstream.fingerprint(event)}")
        assert 0 < ttl <= 3600
        assert client.hgetall(STATS) == {"published": "2", "deduplicated": "2"}
        # events without a generation (clusters) are only the same by their id
        for _ in range(2):
            sink.handle(Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 2}))
        assert sink.counters.published == 4
    finally:
        pubsub.close()
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
        minute = int(time.time() // 60)
        counter = f"aiops:rate:DIAGNOSED:shop/noisy:{minute}"
        assert client.get(counter) == "5" and 0 < client.ttl(counter) <= 120
        assert client.hget(STATS, "rate_limited") == "2"
        # a skipped event left no dedup key: once the window is over it can still go out
        skipped = Event(type=EventType.DIAGNOSED, key="shop/noisy", uid="u", generation=5, data={})
        assert not client.exists(f"aiops:dedup:{eventstream.fingerprint(skipped)}")
    finally:
        sink.close()


def test_redis_down_mid_run_is_retried_counted_and_recovers(server, client):
    sink = RedisSink(server.url, attempts=3, backoff_s=0.05, timeout_s=1)
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
        bus.flush()
        assert (sink.counters.failed, sink.counters.retries) == (1, 2) and bus.failures == {}
        assert "ConnectionError" in sink.last_error
    finally:
        server.start()
    client.ping()
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CHANNEL)
    try:
        bus.publish(EventType.FEEDBACK, "shop/a", {"correct": True}, INCIDENT)
        bus.flush()
        message = wait_for(lambda: pubsub.get_message(timeout=0.5), 10, "the event after Redis came back")
        assert json.loads(message["data"])["type"] == "FEEDBACK" and sink.counters.published == 2
    finally:
        pubsub.close()
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


def test_aiops_watch_waits_for_redis_and_skips_foreign_messages():
    server = RedisServer()  # not started yet
    proc = watcher(server.url, "--count", "1")
    client = None
    try:
        assert "Redis unreachable" in proc.stderr.readline()  # it retries, with backoff
        server.start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        subscribed(client, CHANNEL)
        client.publish(CHANNEL, "not json")
        sink = RedisSink(server.url)
        sink.handle(Event(type=EventType.GPU_UPDATE, key="hub", data={"gpus": 4, "product": "H100"}))
        sink.close()
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and out.strip().endswith("GPU_UPDATE             hub gpus=4 product=H100"), out
        assert "not an event" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if client:
            client.close()
        server.close()
