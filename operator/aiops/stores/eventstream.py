"""The event stream: every operator event appended to the Redis stream `aiops:events` (read it with
aiops.stores.eventconsumer or `aiops watch`).

Pub/sub dropped every event published while nobody listened; a stream keeps them, so a consumer that
was down reads what it missed, and a consumer group hands each entry to one member until it is
acknowledged (docs/operations.md, "Event stream"). Each entry has two fields: `type` (the EventType,
so that consumers can filter without parsing) and `event` (`Event.wire()` as JSON: id, type, at, key,
uid, generation, data). There is one stream for all types, not one per type: one total order, one
place for consumer groups and trimming, half the writes; at the operator's rates (bounded by the
per-object rate limit) a consumer of one type loses nothing by skipping the others on the `type` field.

The stream is capped at about AIOPS_EVENTS_STREAM_MAXLEN entries (XADD MAXLEN ~: Redis trims whole
macro nodes, so a few more may stay; exact trimming would cost a trim on every append). Before appending,
the sink

- claims a dedup key (SET NX with a TTL) named by the event's fingerprint, so that a replay of an event
  (a handler that ran again publishes it again with a new id) is not appended twice;
- counts the event in a per-minute counter per object and type (INCR + EXPIRE); over the limit it is
  skipped and counted, and leaves no dedup key, so that a later replay may go out.

All of it, and the copy on pub/sub, runs as one Lua script: atomic, one round trip, and safe to retry. The
dedup key holds this attempt's claim and the entry's id, so a retry after a lost reply finds its own
append and does not append again.

Compatibility: for one release the sink also PUBLISHes each event, as before, on `aiops:events` and
`aiops:events:<TYPE>` (AIOPS_EVENTS_PUBSUB, default true); pub/sub goes in the next release.

Without AIOPS_REDIS_URL nothing is appended. With Redis down an append is retried a few times; then the event
is held, with every event after it, in a bounded backlog that a thread of the sink appends, in order, once
Redis answers again (a restart loses nothing, and the bus's other sinks are never held up by it); only events
beyond the backlog are logged, counted and lost. The operator goes on either way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import redis

from aiops.core.events import BUS, Event, EventType, fingerprint

log = logging.getLogger(__name__)

PREFIX = "aiops:"
STREAM = f"{PREFIX}events"  # the stream's key (keys and pub/sub channels are separate name spaces)
CHANNEL = f"{PREFIX}events"  # pub/sub, every type: deprecated, see AIOPS_EVENTS_PUBSUB
STATS = f"{PREFIX}events:stats"  # a hash: published, deduplicated, rate_limited
RATE_WINDOW_TTL_S = 120  # a per-minute counter outlives its minute, then goes
BACKLOG = 10_000  # events held while Redis is away (about 0.8 KB each)
MAX_BACKOFF_S = 5.0  # between the backlog's tries while Redis is away

# KEYS: dedup, rate counter, stream, stats.
# ARGV: claim, dedup TTL, rate limit, MAXLEN, type, payload, pub/sub ("1"/"0"), type channel, all-types channel,
#       rate counter TTL.
# Returns {"ok", id} (appended now or by an earlier attempt of this claim), {"dup"} or {"rate", count}.
_APPEND = """
local held = redis.call('GET', KEYS[1])
if held then
  local mine = ARGV[1] .. '|'
  if string.sub(held, 1, #mine) == mine then
    return {'ok', string.sub(held, #mine + 1)}
  end
  redis.call('HINCRBY', KEYS[4], 'deduplicated', 1)
  return {'dup'}
end
local count = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[10])
if count > tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[4], 'rate_limited', 1)
  return {'rate', count}
end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', ARGV[5], 'event', ARGV[6])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. id, 'EX', ARGV[2])
if ARGV[7] == '1' then
  redis.call('PUBLISH', ARGV[8], ARGV[6])
  redis.call('PUBLISH', ARGV[9], ARGV[6])
end
redis.call('HINCRBY', KEYS[4], 'published', 1)
return {'ok', id}
"""


def channel(type_: EventType | str | None = None) -> str:
    """The deprecated pub/sub channel of one type (or of every type)."""
    return f"{CHANNEL}:{EventType(type_).value}" if type_ else CHANNEL


def connect(url: str, timeout_s: float | None = 2.0) -> redis.Redis:
    """A client for the stream; `timeout_s` bounds each reply, so it must exceed any BLOCK of a read."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=5, health_check_interval=30, decode_responses=True
    )


def where(client: redis.Redis) -> str:
    """host:port/db (or socket/db) of a client, for messages and file names (never the password)."""
    kw = client.connection_pool.connection_kwargs
    place = kw.get("path") or f"{kw.get('host')}:{kw.get('port')}"
    return f"{place}/{kw.get('db', 0)}"


@dataclass
class Counters:
    published: int = 0
    deduplicated: int = 0
    rate_limited: int = 0
    retries: int = 0
    held: int = 0  # waited in the backlog for Redis to come back
    failed: int = 0  # lost: the backlog was full (or the sink closed with events still held)


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
        maxlen: int = 100_000,
        pubsub: bool = True,
        backlog: int = BACKLOG,
    ):
        self.url = url
        self.rate_limit = rate_limit
        self.dedup_ttl_s = dedup_ttl_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.maxlen = maxlen
        self.pubsub = pubsub
        self.counters = Counters()
        self.last_error: str | None = None
        self.last_id: str | None = None  # the stream id of the last event appended
        self.client = connect(url, timeout_s)
        self._append = self.client.register_script(_APPEND)
        self.backlog: deque[Event] = deque()  # events waiting for Redis, oldest first
        self.backlog_size = backlog
        self._lock = threading.Lock()
        self._drainer: threading.Thread | None = None

    def handle(self, event: Event) -> None:
        """Appends the event once, or holds it until Redis is back; never raises for Redis being away."""
        with self._lock:
            if self._drainer is not None:  # Redis is away: behind the events held before it, in order
                self._hold(event)
                return
        if not self._send(event, self.attempts):
            with self._lock:
                self._hold(event)

    def _hold(self, event: Event) -> None:
        if len(self.backlog) >= self.backlog_size:
            self.counters.failed += 1
            log.warning(
                "events: %s %s not appended: Redis %s is away and %d events wait already (%d lost so far)",
                event.type, event.key, where(self.client), len(self.backlog), self.counters.failed,
            )  # fmt: skip
            return
        self.backlog.append(event)
        self.counters.held += 1
        if self._drainer is None:
            log.warning("events: Redis %s unreachable (%s); holding events until it is back", where(self.client),
                        self.last_error)  # fmt: skip
            self._drainer = threading.Thread(target=self._drain, name="aiops-events-backlog", daemon=True)
            self._drainer.start()

    def _drain(self) -> None:
        """Appends the held events in order, waiting longer between tries while Redis stays away."""
        delay, sent = self.backoff_s, 0
        while True:
            with self._lock:
                if not self.backlog:
                    self._drainer = None
                    log.info("events: Redis %s is back; %d held events appended", where(self.client), sent)
                    return
                event = self.backlog[0]
            if self._send(event, 1):
                with self._lock:
                    self.backlog.popleft()
                sent, delay = sent + 1, self.backoff_s
                continue
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _send(self, event: Event, attempts: int) -> bool:
        """Appends the event (or finds it appended already); False when Redis did not answer `attempts` times."""
        payload = event.model_dump_json(by_alias=True, exclude_none=True)
        minute = int(time.time() // 60)
        keys = [
            f"{PREFIX}dedup:{fingerprint(event)}",
            f"{PREFIX}rate:{event.type}:{event.key}:{minute}",
            STREAM,
            STATS,
        ]
        claim = f"{event.id}:{uuid.uuid4().hex[:8]}"  # recognises our own append when a reply was lost
        args = [claim, self.dedup_ttl_s, self.rate_limit, self.maxlen, str(event.type), payload,
                "1" if self.pubsub else "0", channel(event.type), CHANNEL, RATE_WINDOW_TTL_S]  # fmt: skip
        delay = self.backoff_s
        for attempt in range(1, attempts + 1):
            try:
                outcome, *rest = self._append(keys=keys, args=args)
            except redis.RedisError as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt < attempts:
                    self.counters.retries += 1
                    time.sleep(delay)
                    delay *= 2
                continue
            self.last_error = None
            if outcome == "ok":
                self.counters.published += 1
                self.last_id = rest[0]
            elif outcome == "dup":
                self.counters.deduplicated += 1
            else:
                self.counters.rate_limited += 1
                if rest[0] == self.rate_limit + 1:  # once per object, type and minute
                    log.warning("events: %s %s over %d/min: skipped", event.type, event.key, self.rate_limit)
            return True
        return False

    def close(self) -> None:
        with self._lock:
            if self.backlog:
                self.counters.failed += len(self.backlog)
                log.warning("events: closing with %d events held for Redis %s: not appended", len(self.backlog),
                            where(self.client))  # fmt: skip
                self.backlog.clear()
        self.client.close()


_sink: RedisSink | None = None


def start(settings, bus=None) -> RedisSink | None:
    """Registers the Redis sink on the bus when AIOPS_REDIS_URL is set; logs either way. Never raises."""
    global _sink
    if not settings.redis_url:
        log.info("event stream is off: AIOPS_REDIS_URL is not set")
        return None
    try:
        sink = RedisSink(
            settings.redis_url,
            settings.events_rate_limit,
            settings.events_dedup_ttl_s,
            maxlen=settings.events_stream_maxlen,
            pubsub=settings.events_pubsub,
        )
    except ValueError as exc:  # an unparsable URL
        log.error("event stream is off: AIOPS_REDIS_URL: %s", exc)
        return None
    copy = f"; also on pub/sub {CHANNEL}:* until AIOPS_EVENTS_PUBSUB=false" if sink.pubsub else ""
    try:
        sink.client.ping()
        log.info("event stream is on: Redis %s, stream %s (MAXLEN ~%d)%s", where(sink.client), STREAM,
                 sink.maxlen, copy)  # fmt: skip
    except redis.RedisError as exc:
        log.warning("event stream: Redis %s unreachable for now (%s); events are retried", where(sink.client), exc)
    (bus or BUS).register(sink)
    _sink = sink
    return sink
