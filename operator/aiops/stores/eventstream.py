"""The event stream on Redis pub/sub (`aiops watch` in aiops.cli.watch prints it live).

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

import logging
import time
import uuid
from dataclasses import dataclass

import redis

from aiops.core.events import BUS, Event, EventType, fingerprint

log = logging.getLogger(__name__)

PREFIX = "aiops:"
CHANNEL = f"{PREFIX}events"  # every type
STATS = f"{PREFIX}events:stats"  # a hash: published, deduplicated, rate_limited


def channel(type_: EventType | str | None = None) -> str:
    return f"{CHANNEL}:{EventType(type_).value}" if type_ else CHANNEL


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
