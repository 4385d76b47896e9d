"""The delivery worker: the outbox's due rows out through their channels, on the operator's asyncio loop.

Each channel has a lane of its own: its token bucket (`rate_per_minute`), its in-flight sends (at most
`concurrency`), its claims. A channel that is slow, hangs or fails therefore delays nobody else, and a row is
claimed only when a token and a slot are there for it, so no claimed row waits out its lease in a queue.

What a send comes to:
    Sent            the row is `sent`, with the channel's ref (the next notice of the incident updates it)
    Retry           due again after max(Retry-After, exponential backoff with jitter: 1 s, 2 s, ... 5 min);
                    after `max_attempts` sends it is a dead letter
    Failed          a dead letter at once, with the reason
A send that outlasts `send_timeout_s` is a Retry. Each outcome goes to `on_outcome` (the Incident's status)
and to the aiops_notifications counter.

Senders wake on PostgreSQL NOTIFY from `outbox.enqueue` (a listening connection held from the pool) and
poll every `poll_s` as well, for retries coming due and for a listener that lost its connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from pydantic import ValidationError

from aiops.core.metrics import NOTIFICATIONS, NOTIFICATIONS_PENDING
from aiops.notify import outbox
from aiops.notify.channels import Channel
from aiops.notify.notice import Failed, Retry, Sent
from aiops.notify.outbox import Claimed
from aiops.stores.history import migrate

log = logging.getLogger(__name__)

# What the database or its connection can throw at a lane; the lane logs it and tries again later.
DB_ERRORS = (*migrate.ERRORS, asyncio.TimeoutError)


@dataclass(frozen=True)
class Delivery:
    """What one send of one notice came to, for the Incident's status."""

    incident: str  # namespace/name
    uid: str
    channel: str
    stage: str
    state: str  # sent, pending (to be tried again), dead
    attempts: int
    error: str | None
    at: datetime


OnOutcome = Callable[[Delivery], Awaitable[None] | None]


class TokenBucket:
    """`rate_per_minute` tokens a minute, at most `burst` saved up (default: one second's worth, at least 1)."""

    def __init__(self, rate_per_minute: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_minute / 60.0
        self.burst = burst or max(1, int(self.rate))
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    def _fill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: int) -> int:
        """Up to `n` whole tokens, as many as there are now."""
        self._fill()
        got = max(0, min(n, int(self._tokens)))
        self._tokens -= got
        return got

    def refund(self, n: int) -> None:
        self._tokens = min(self.burst, self._tokens + n)

    def wait_s(self) -> float:
        """Seconds until a token is there."""
        self._fill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate


def backoff_s(attempts: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential in the attempts made, capped, with half of it random so that failed rows do not retry in step."""
    delay = min(cap_s, base_s * 2 ** min(max(attempts - 1, 0), 32))
    return delay / 2 + rng.uniform(0, delay / 2)


@dataclass
class _Lane:
    channel: Channel
    bucket: TokenBucket
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    inflight: set[asyncio.Task] = field(default_factory=set)


class Worker:
    """Delivers the outbox's rows for `channels`; several workers (processes) may share one outbox."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Iterable[Channel],
        on_outcome: OnOutcome | None = None,
        *,
        max_attempts: int = 8,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        lease_s: float = 300.0,
        send_timeout_s: float = 150.0,  # above any channel's own timeout (at most 120 s)
        concurrency: int = 8,
        poll_s: float = 2.0,
        gauge_interval_s: float = 15.0,
        rng: random.Random | None = None,
    ):
        if lease_s <= send_timeout_s:
            raise ValueError(f"lease_s ({lease_s}) must exceed send_timeout_s ({send_timeout_s})")
        self.pool = pool
        self.on_outcome = on_outcome
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.lease_s = lease_s
        self.send_timeout_s = send_timeout_s
        self.concurrency = max(1, concurrency)
        self.poll_s = poll_s
        self.gauge_interval_s = gauge_interval_s
        self.rng = rng or random.Random()
        self.last_error: str | None = None  # the latest database error a lane met, until a claim succeeds
        self._lanes = {c.name: _Lane(c, TokenBucket(c.rate_per_minute)) for c in channels}
        self._listener: asyncpg.Connection | None = None

    # one step, for tests and tools

    async def deliver_due(self, limit: int = 100) -> list[Delivery]:
        """Claims up to `limit` due rows of each channel (as its bucket allows) and sends them, all channels at
        once; the outcomes recorded (a claim another sender took over meanwhile is left out)."""

        async def lane_step(name: str, lane: _Lane) -> list[Delivery | None]:
            rows = await self._claim(name, lane, limit)
            return await asyncio.gather(*(self._deliver(lane, row) for row in rows))

        done = await asyncio.gather(*(lane_step(n, lane) for n, lane in self._lanes.items()))
        return [d for step in done for d in step if d is not None]

    # the long-running task

    async def run(self, stop: asyncio.Event) -> None:
        """Delivers until `stop` is set, then lets the sends under way finish (within `send_timeout_s`)."""
        lanes = [
            asyncio.create_task(self._lane_loop(n, lane, stop), name=f"notify-{n}") for n, lane in self._lanes.items()
        ]
        upkeep = asyncio.create_task(self._upkeep(stop), name="notify-upkeep")
        await stop.wait()
        for lane in self._lanes.values():
            lane.wake.set()
        await asyncio.gather(*lanes, return_exceptions=True)
        upkeep.cancel()
        inflight = [t for lane in self._lanes.values() for t in lane.inflight]
        if inflight:
            _, late = await asyncio.wait(inflight, timeout=self.send_timeout_s + 5)
            for task in late:  # their rows come due again when the lease ends
                task.cancel()
        await self._unlisten()

    async def _lane_loop(self, name: str, lane: _Lane, stop: asyncio.Event) -> None:
        while not stop.is_set():
            lane.wake.clear()
            free = self.concurrency - len(lane.inflight)
            rows = await self._claim(name, lane, free) if free > 0 else []
            for row in rows:
                task = asyncio.create_task(self._deliver(lane, row), name=f"notify-{name}-{row.id}")
                lane.inflight.add(task)
                task.add_done_callback(lambda t, lane=lane: self._settled(lane, t))
            if rows and len(rows) == free:
                continue  # a full batch: there may be more due as soon as a slot frees
            timeout = self.poll_s if self.last_error is None else max(self.poll_s, 5.0)
            if lane.bucket.wait_s() > 0:
                timeout = min(timeout, lane.bucket.wait_s())
            try:
                await asyncio.wait_for(lane.wake.wait(), timeout)
            except TimeoutError:
                pass

    def _settled(self, lane: _Lane, task: asyncio.Task) -> None:
        lane.inflight.discard(task)
        lane.wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("notify: recording a delivery failed: %s: %s (the row is sent again when its lease ends)",
                        type(exc).__name__, exc)  # fmt: skip

    async def _claim(self, name: str, lane: _Lane, limit: int) -> list[Claimed]:
        n = lane.bucket.take(limit)
        if not n:
            return []
        try:
            rows = await outbox.claim(self.pool, name, n, self.lease_s)
        except DB_ERRORS as exc:
            lane.bucket.refund(n)
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:
                log.warning("notify: cannot claim notifications for %s: %s", name, error)
            self.last_error = error
            return []
        self.last_error = None
        lane.bucket.refund(n - len(rows))
        return rows

    async def _deliver(self, lane: _Lane, row: Claimed) -> Delivery | None:
        if row.attempts > self.max_attempts:
            # Only a lease that ran out gets here: the sender of the last allowed attempt died mid-send.
            return await self._dead(row, f"no outcome of attempt {row.attempts - 1}: its sender stopped mid-send")
        try:
            notice = row.notice()
        except ValidationError as exc:
            return await self._dead(row, f"unreadable notice in the outbox: {exc.errors()[0]['msg']}")
        try:
            outcome = await asyncio.wait_for(lane.channel.send(notice, row.ref), self.send_timeout_s)
        except TimeoutError:
            outcome = Retry(f"no answer within {self.send_timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001  (a channel must not raise; if one does, it is one failed send)
            log.exception("notify: channel %s raised sending %s", row.channel, row.key)
            outcome = Retry(f"{type(exc).__name__}: {exc}")
        if isinstance(outcome, Sent):
            if not await outbox.mark_sent(self.pool, row, outcome.ref):
                return None
            return await self._report(row, "sent", None)
        if isinstance(outcome, Failed):
            return await self._dead(row, outcome.reason)
        if row.attempts >= self.max_attempts:
            return await self._dead(row, f"gave up after {row.attempts} attempts: {outcome.reason}")
        delay = max(outcome.after_s or 0.0, backoff_s(row.attempts, self.backoff_base_s, self.backoff_cap_s, self.rng))
        if not await outbox.mark_retry(self.pool, row, outcome.reason, delay):
            return None
        return await self._report(row, "pending", outcome.reason)

    async def _dead(self, row: Claimed, error: str) -> Delivery | None:
        if not await outbox.mark_dead(self.pool, row, error):
            return None
        log.warning("notify: %s to %s is a dead letter (row %d): %s", row.key, row.channel, row.id, error)
        return await self._report(row, "dead", error)

    async def _report(self, row: Claimed, state: str, error: str | None) -> Delivery:
        NOTIFICATIONS.labels(row.channel, "retry" if state == "pending" else state).inc()
        delivery = Delivery(
            row.incident, row.uid, row.channel, row.stage, state, row.attempts, error, datetime.now(UTC)
        )
        if self.on_outcome is not None:
            try:
                result = self.on_outcome(delivery)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001  (the status write is the caller's; delivery goes on)
                log.exception("notify: on_outcome failed for %s on %s", row.key, row.channel)
        return delivery

    # upkeep: the pending gauge, and the NOTIFY listener (re-established when its connection is lost)

    async def _upkeep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._listen()
                NOTIFICATIONS_PENDING.set(await outbox.pending(self.pool))
            except DB_ERRORS as exc:
                log.debug("notify: upkeep: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.gauge_interval_s)

    async def _listen(self) -> None:
        await self._unlisten()
        conn = await self.pool.acquire()
        try:
            await conn.add_listener(outbox.LISTEN_CHANNEL, self._notified)
        except BaseException:
            await self.pool.release(conn)
            raise
        self._listener = conn

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await conn.remove_listener(outbox.LISTEN_CHANNEL, self._notified)
        except DB_ERRORS:
            pass  # released below all the same; the pool replaces a broken connection
        await self.pool.release(conn)

    def _notified(self, _conn, _pid, _channel, payload: str) -> None:
        lane = self._lanes.get(payload)
        if lane is not None:
            lane.wake.set()
