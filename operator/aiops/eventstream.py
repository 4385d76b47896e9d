"""The event stream on Redis pub/sub, and `aiops watch` that prints it live.

Each event is published as JSON (`Event.wire()`: id, type, at, key, uid, generation, data) on
`aiops:events:<TYPE>` and on `aiops:events` (all types). Before publishing, the sink

- claims a dedup key (SET NX with a TTL) named by the event's fingerprint, so a replay of an event
  (a handler that ran again publishes it again with a new id) is not published twice;
- counts the event in a per-minute counter per object and type (INCR + EXPIRE); over the limit it is
  skipped and counted.

Without AIOPS_REDIS_URL nothing is published. With Redis down a publish is retried a bounded number of
times, then logged and counted; the operator goes on either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import redis

from .events import BUS, Event, EventType

log = logging.getLogger(__name__)

PREFIX = "aiops:"
CHANNEL = f"{PREFIX}events"  # every type
STATS = f"{PREFIX}events:stats"  # a hash: published, deduplicated, rate_limited


def channel(type_: EventType | str | None = None) -> str:
    return f"{CHANNEL}:{EventType(type_).value}" if type_ else CHANNEL


def fingerprint(event: Event) -> str:
    """Equal for a replay of the same event (same object, type, generation and payload), else distinct.

    Events about objects without a generation (clusters, GPUs) are only ever the same by their id.
    """
    if event.generation is None:
        return f"{event.type}:{event.key}:id:{event.id}"
    payload = json.dumps(event.data, sort_keys=True, default=str, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return f"{event.type}:{event.key}:{event.uid or '-'}:{event.generation}:{digest}"


@dataclass
class Counters:
    published: int = 0
    deduplicated: int = 0
    rate_limited: int = 0
    retries: int = 0
    failed: int = 0  # Redis unreachable after the retries


class RedisSink:
    name = "redis"

    def __init__(
        self,
        url: str,
        rate_limit: int = 120,
        dedup_ttl_s: int = 3600,
        attempts: int = 3,
        backoff_s: float = 0.2,
        timeout_s: float = 2.0,
    ):
        self.url = url
        self.rate_limit = rate_limit
        self.dedup_ttl_s = dedup_ttl_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.counters = Counters()
        self.last_error: str | None = None
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
        )

    def handle(self, event: Event) -> None:
        """Publishes the event once; never raises for Redis being away."""
        payload = event.model_dump_json(by_alias=True, exclude_none=True)
        dedup_key = f"{PREFIX}dedup:{fingerprint(event)}"
        claim = f"{event.id}:{uuid.uuid4().hex[:8]}"  # recognises our own claim when a reply was lost
        minute = int(time.time() // 60)
        rate_key = f"{PREFIX}rate:{event.type}:{event.key}:{minute}"
        claimed = False
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                if not claimed:
                    if not self.client.set(dedup_key, claim, nx=True, ex=self.dedup_ttl_s):
                        if self.client.get(dedup_key) != claim.encode():
                            self.counters.deduplicated += 1
                            self.client.hincrby(STATS, "deduplicated", 1)
                            return
                    claimed = True
                pipe = self.client.pipeline(transaction=False)
                pipe.incr(rate_key)
                pipe.expire(rate_key, 120)
                count = pipe.execute()[0]
                if count > self.rate_limit:
                    self.counters.rate_limited += 1
                    # not published: a later replay may go out once the minute is over
                    self.client.pipeline(transaction=False).delete(dedup_key).hincrby(
                        STATS, "rate_limited", 1
                    ).execute()
                    if count == self.rate_limit + 1:  # once per object, type and minute
                        log.warning("events: %s %s over %d/min: skipped", event.type, event.key, self.rate_limit)
                    return
                pipe = self.client.pipeline(transaction=False)
                pipe.publish(channel(event.type), payload)
                pipe.publish(CHANNEL, payload)
                pipe.hincrby(STATS, "published", 1)
                pipe.execute()
                self.counters.published += 1
                self.last_error = None
                return
            except redis.RedisError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.attempts:
                    self.counters.retries += 1
                    time.sleep(delay)
                    delay *= 2
        self.counters.failed += 1
        log.warning(
            "events: %s %s not published after %d attempts: %s (%d not published so far)",
            event.type, event.key, self.attempts, self.last_error, self.counters.failed,
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()


_sink: RedisSink | None = None


def start(settings, bus=None) -> RedisSink | None:
    """Registers the Redis sink on the bus when AIOPS_REDIS_URL is set; logs either way. Never raises."""
    global _sink
    if not settings.redis_url:
        log.info("event stream is off: AIOPS_REDIS_URL is not set")
        return None
    try:
        sink = RedisSink(settings.redis_url, settings.events_rate_limit, settings.events_dedup_ttl_s)
    except ValueError as exc:  # an unparsable URL
        log.error("event stream is off: AIOPS_REDIS_URL: %s", exc)
        return None
    where = sink.client.connection_pool.connection_kwargs
    try:
        sink.client.ping()
        log.info("event stream is on: Redis %s:%s, channels %s:*", where.get("host"), where.get("port"), CHANNEL)
    except redis.RedisError as exc:
        log.warning("event stream: Redis %s:%s unreachable for now (%s); events are retried", where.get("host"),
                    where.get("port"), exc)  # fmt: skip
    (bus or BUS).register(sink)
    _sink = sink
    return sink


def start_sinks(settings) -> None:
    """History (PostgreSQL) and the event stream (Redis) on the event bus, each only when configured."""
    from . import history

    history.start(settings)
    start(settings)


# aiops watch


def _short(value: Any, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(event: dict[str, Any]) -> str:
    """A short, type-specific description of an event's payload."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event.get("type")
    if kind == EventType.INCIDENT_CREATED:
        target = data.get("target") if isinstance(data.get("target"), dict) else {}
        where = f" on {target.get('kind')}/{target.get('name')}" if target.get("name") else ""
        return _short(f"{data.get('severity') or '?'}: {data.get('title') or ''}{where}")
    if kind == EventType.DIAGNOSED:
        d = data.get("diagnosis") if isinstance(data.get("diagnosis"), dict) else data
        return _short(f"{d.get('confidence', '?')}% {d.get('rootCause') or ''} ({d.get('model') or '?'})")
    if kind == EventType.FEEDBACK:
        verdict = "correct" if data.get("correct") else "incorrect"
        by = f" by {data['by']}" if data.get("by") else ""
        return _short(f"diagnosis {verdict}{by}" + (f": {data['comment']}" if data.get("comment") else ""))
    if kind == EventType.SOP_ACTION:
        return _short(
            f"{data.get('sop')} {data.get('step')}: {data.get('action')} {data.get('target') or ''} "
            f"-> {data.get('outcome') or '?'}"
        )
    scalars = [f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float | bool)]
    return _short(" ".join(scalars[:6]) or json.dumps(data, default=str))


def format_line(event: dict[str, Any]) -> str:
    at = str(event.get("at") or "")
    try:
        at = datetime.fromisoformat(at.replace("Z", "+00:00")).strftime("%H:%M:%SZ")
    except ValueError:
        at = at[:9] or "?"
    return f"{at} {str(event.get('type')):<22} {event.get('key')} {summary(event)}"


def watch(
    url: str,
    types: list[str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    count: int | None = None,
    raw: bool = False,
) -> int:
    """Prints events as they are published until interrupted (or after `count` events)."""
    channels = [channel(t) for t in types] if types else [CHANNEL]
    client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    seen = 0
    delay = 0.5
    try:
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(*channels)
                print(f"watching {', '.join(channels)} on {url.rpartition('@')[2]}", file=err, flush=True)
                delay = 0.5
                for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                        line = json.dumps(event) if raw else format_line(event)
                    except (ValueError, TypeError, AttributeError):
                        print(f"not an event on {message.get('channel')!r}: {message.get('data')!r:.200}", file=err)
                        continue
                    print(line, file=out, flush=True)
                    seen += 1
                    if count and seen >= count:
                        return 0
            except redis.ConnectionError as exc:
                print(f"Redis unreachable ({exc}); retrying in {delay:.1f}s", file=err, flush=True)
                time.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                pubsub.close()
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
