"""The history sink: the event bus's events into PostgreSQL, from an asyncio loop of its own.

`handle()` only queues (the bus's thread is never held up by a slow or absent database); a writer
coroutine drains the queue, applying the migrations before the first write. A write that fails for a
connection reason is retried with exponential backoff, a bounded number of times; what still cannot be
written is logged and counted. Data the database refuses is logged and counted without retries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from aiops.core.events import Event
from aiops.stores.history import migrate, store

log = logging.getLogger(__name__)

TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,  # the connection went away under us
    asyncpg.InternalClientError,  # ... in the middle of a commit (the writes are idempotent: retried)
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57P0x: shutting down, starting up
)


def describe(dsn: str) -> str:
    """host:port/database of a DSN, without the user's password."""
    try:
        parts = urlsplit(dsn)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"
    except ValueError:
        return "an unparsable DSN"


@dataclass
class Counters:
    written: int = 0  # events recorded
    duplicates: int = 0  # delivered again or replayed: nothing new written
    retries: int = 0
    failed: int = 0  # not written after the retries, or refused by the database
    dropped: int = 0  # the sink's own queue was full
    retention_runs: int = 0


class HistorySink:
    name = "history"

    def __init__(
        self,
        dsn: str,
        retention_days: int = 90,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        retention_interval_s: float = 3600.0,
        timeout_s: float = 10.0,
        queue_size: int = 10_000,
    ):
        self.dsn = dsn
        self.retention_days = retention_days
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retention_interval_s = retention_interval_s
        self.timeout_s = timeout_s
        self.counters = Counters()
        self.last_error: str | None = None
        self.schema_version: int | None = None
        self._queue_size = queue_size
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aiops-history", daemon=True)
        self._pool: asyncpg.Pool | None = None
        self._queue: asyncio.Queue[Event] | None = None
        self._pending = 0
        self._lock = threading.Lock()

    # lifecycle

    def start(self) -> HistorySink:
        self._thread.start()
        self._submit(self._setup()).result(timeout=5)
        return self

    async def _setup(self) -> None:
        self._queue = asyncio.Queue(maxsize=self._queue_size)
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=0, max_size=2, timeout=self.timeout_s, command_timeout=self.timeout_s
        )
        asyncio.get_running_loop().create_task(self._writer(), name="history-writer")
        asyncio.get_running_loop().create_task(self._connect(), name="history-connect")
        if self.retention_interval_s > 0:
            asyncio.get_running_loop().create_task(self._retention_loop(), name="history-retention")

    def close(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        self.flush(timeout)

        async def shutdown() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            if self._pool is not None:
                await self._pool.close()

        try:
            self._submit(shutdown()).result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            log.debug("history: closing: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def _submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # the Sink protocol

    def handle(self, event: Event) -> None:
        """Queues the event for the writer; never blocks the bus."""
        with self._lock:
            self._pending += 1
        self._loop.call_soon_threadsafe(self._enqueue, event)

    def _enqueue(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.counters.dropped += 1
            self._done()
            log.warning("history: queue full (%d): %s %s not recorded", self._queue.maxsize, event.type, event.key)

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Waits until every handled event has been written or given up on; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pending == 0:
                return True
            time.sleep(0.02)
        return self._pending == 0

    # writing

    async def _writer(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._write(event)
            except Exception:  # noqa: BLE001  (the writer must outlive any bug in one event's write)
                self.counters.failed += 1
                log.exception("history: %s %s not recorded", event.type, event.key)
            finally:
                self._done()

    async def _ready(self) -> None:
        if self.schema_version is None:
            async with self._pool.acquire(timeout=self.timeout_s) as conn:
                try:
                    applied = await migrate.migrate(conn)
                except asyncpg.PostgresError as exc:  # e.g. no right to create tables: history cannot work
                    if isinstance(exc, TRANSIENT):
                        raise
                    self.last_error = f"migrations failed: {type(exc).__name__}: {exc}"
                    raise
                self.schema_version = await migrate.current_version(conn)
                self.last_error = None
            if applied:
                names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
                log.info("history: applied migrations %s (schema version %s)", names, self.schema_version)

    async def _connect(self) -> None:
        """Migrates at start, so that status() tells early whether PostgreSQL is there."""
        try:
            await self._ready()
        except Exception as exc:  # noqa: BLE001  (writes retry on their own)
            self.last_error = self.last_error or f"{type(exc).__name__}: {exc}"
            log.warning("history: PostgreSQL %s not usable at start: %s; writes will retry", describe(self.dsn), exc)

    async def _write(self, event: Event) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                await self._ready()
                async with self._pool.acquire(timeout=self.timeout_s) as conn:
                    new = await store.write(conn, event)
            except TRANSIENT as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt == self.attempts:
                    break
                self.counters.retries += 1
                log.info(
                    "history: PostgreSQL unavailable (%s); %s %s: attempt %d of %d in %.1fs",
                    self.last_error, event.type, event.key, attempt + 1, self.attempts, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except (asyncpg.PostgresError, ValueError, TypeError) as exc:
                self.counters.failed += 1
                log.warning(
                    "history: %s %s refused, not retried: %s: %s", event.type, event.key, type(exc).__name__, exc
                )
                return
            self.last_error = None
            if new:
                self.counters.written += 1
            else:
                self.counters.duplicates += 1
            return
        self.counters.failed += 1
        log.warning(
            "history: %s %s not recorded after %d attempts: %s (%d not recorded so far)",
            event.type, event.key, self.attempts, self.last_error, self.counters.failed,
        )  # fmt: skip

    # queries and retention, callable from any thread

    def call(self, fn, *args: Any, timeout: float | None = None) -> Any:
        """Runs `await fn(conn, *args)` on a pooled connection in the sink's loop and returns the result."""

        async def run() -> Any:
            await self._ready()
            async with self._pool.acquire(timeout=self.timeout_s) as conn:
                return await fn(conn, *args)

        return self._submit(run()).result(timeout=timeout or self.timeout_s * 2)

    def similar(self, text: str, limit: int = 5, exclude_uid: str | None = None) -> list[store.PastIncident]:
        return self.call(store.similar, text, limit, exclude_uid)

    def retention(self) -> dict[str, int]:
        return self.call(store.apply_retention, self.retention_days)

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self._ready()
                async with self._pool.acquire(timeout=self.timeout_s) as conn:
                    deleted = await store.apply_retention(conn, self.retention_days)
                self.counters.retention_runs += 1
                if any(deleted.values()):
                    log.info("history: retention (%d days) deleted %s", self.retention_days, deleted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (next time, then)
                log.warning("history: retention failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.retention_interval_s)
