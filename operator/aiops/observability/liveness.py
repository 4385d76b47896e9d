"""What keeps a kopf process (the operator, an analysis worker) at its work through API server and etcd outages.

- kopf retries a failed API request (5xx, refused, timed out) for 54 s by default, and a watch request that gives
  up ends kopf's watcher of that resource for good: kopf never starts it again, and the process would go on
  running without seeing one more object of that kind. Here kopf retries for AIOPS_API_RETRY_S (720 s: an API
  server upgrade or an etcd restore fits in it).
- A restarted API server answers "404 page not found" (a path it does not serve, not a Status naming a missing
  object) for custom resources until it has loaded their definitions again. kopf takes that for a resource that is
  gone and ends the watcher, and with it the process; here it is retried like a 5xx (`_route_missing_is_retried`).
- Past that, the heartbeat notices the watcher that ended and stops the process (exit status 1), so that a
  restart (the Deployment's) lists and watches everything anew. When kopf's orchestrator of watchers fails with it,
  kopf stops on its own. Either way kopf can wedge on its way out: before its cleanup (waiting without end for a
  task of its own that was cancelled; the heartbeat beats on) or after it (the heartbeat cancelled). Once a stop is
  asked for, or the cleanup has run, a thread ends the process if kopf has not STOP_GRACE_S later.
- The heartbeat is beaten from kopf's event loop: a stuck loop turns /healthz red, and a thread of its own ends the
  process (exit status 1) once the heartbeat is HEARTBEAT_STALE_S old, for where no liveness probe would.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import kopf
from kopf._cogs.clients import errors as kopf_errors

from aiops import settings as config
from aiops.core import background
from aiops.observability.server import HEALTH, HEARTBEAT_STALE_S

log = logging.getLogger(__name__)
KOPF_WATCHER = "watcher for "  # how kopf names the task that watches one resource
BEAT_S = 5
# kopf's stop waits for the handlers under way, then 5 s for its own tasks; it takes under a second when idle
STOP_GRACE_S = 30.0
_stop: asyncio.Future | None = None  # kopf's stop flag in the running process
_stop_by: float | None = None  # when (time.monotonic) kopf should have stopped, once it was asked to


class Backoffs:
    """kopf's delays between the tries of a failed API request: kopf's own (1, 1, 2, 3, 5, 8, 13, 21 s), then one
    every 30 s, until they add up to `total_s`."""

    FIRST = (1, 1, 2, 3, 5, 8, 13, 21)
    THEN = 30

    def __init__(self, total_s: float):
        self.delays: list[float] = []
        for delay in itertools.chain(self.FIRST, itertools.repeat(self.THEN)):
            if sum(self.delays) + delay > total_s:
                break
            self.delays.append(delay)

    def __iter__(self) -> Iterator[float]:
        return iter(self.delays)

    def __len__(self) -> int:  # kopf's log lines then say "attempt #9/31"
        return len(self.delays)


def _route_missing_is_retried(check):
    """kopf's response check, with a 404 on a resource's path whose body is no Status (the server does not serve
    that path yet) raised as a server error, which kopf retries, instead of a missing object, which ends a watcher.
    A group's or version's own path (/apis/<group>/<version>, /api/v1) is left alone: kopf's discovery reads a 404
    there as the group gone, and stops watching its resources (which cancels their retries)."""

    async def check_response(response) -> None:
        try:
            await check(response)
        except kopf_errors.APINotFoundError as exc:
            parts = response.url.path.strip("/").split("/")
            discovery = len(parts) <= (2 if parts[0] == "api" else 3)
            if exc.code is not None or discovery:
                raise  # a Status (the object is missing, which its handler deals with) or a group gone
            raise kopf_errors.APIServerError(str(exc) or None, status=exc.status, headers=exc.headers) from exc

    check_response.wrapped = check  # type: ignore[attr-defined]
    return check_response


def configure(settings: kopf.OperatorSettings) -> None:
    settings.networking.error_backoffs = Backoffs(config.current().api_retry_s)
    if not hasattr(kopf_errors.check_response, "wrapped"):  # once per process
        kopf_errors.check_response = _route_missing_is_retried(kopf_errors.check_response)
    # Bounded watch requests, so that a silently dropped connection is noticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def failed_watchers(known: dict[str, asyncio.Task]) -> list[str]:
    """The kopf watchers that ended other than by cancellation (kopf cancels them when it stops), each as
    "resource: why"; `known` keeps every watcher task seen so far, the finished ones too."""
    for task in asyncio.all_tasks():
        if task.get_name().startswith(KOPF_WATCHER):
            known[task.get_name()] = task
    failed = []
    for name, task in known.items():
        if task.done() and not task.cancelled():
            why = task.exception()
            failed.append(f"{name.removeprefix(KOPF_WATCHER)} ({type(why).__name__}: {why})" if why else name)
    return failed


def start_heartbeat() -> None:
    """From a startup handler: beats HEALTH every few seconds and stops the process when a watcher has ended."""

    async def beat() -> None:
        known: dict[str, asyncio.Task] = {}
        while True:
            HEALTH.beat = time.monotonic()
            if (failed := failed_watchers(known)) and _stop is not None and not _stop.done():
                log.critical("kopf stopped watching %s; exiting so that a restart watches it again", "; ".join(failed))
                _stop.set_result("a watch ended")
                _expect_stop()
            await asyncio.sleep(BEAT_S)

    background.spawn(beat(), "aiops-heartbeat")


def _expect_stop() -> None:
    global _stop_by
    if _stop_by is None:
        _stop_by = time.monotonic() + STOP_GRACE_S


def _watchdog(done: threading.Event) -> None:
    while not done.wait(BEAT_S):
        now = time.monotonic()
        if HEALTH.beat and now - HEALTH.beat > HEARTBEAT_STALE_S:
            _end("the event loop's heartbeat is %.0fs old (kopf stopped or is stuck): exiting", now - HEALTH.beat)
        if _stop_by is not None and now > _stop_by:
            _end("kopf has not stopped %gs after it was asked to (wedged on its way out): exiting", STOP_GRACE_S)


def _end(why: str, *args: object) -> None:
    log.critical(why, *args)
    logging.shutdown()
    os._exit(1)


async def operate(**kwargs: Any) -> bool:
    """kopf.operator(**kwargs) until SIGINT/SIGTERM or a watcher ends; True for the latter (exit with an error)."""
    global _stop, _stop_by
    _stop, _stop_by = asyncio.get_running_loop().create_future(), None
    done = threading.Event()
    threading.Thread(target=_watchdog, args=(done,), name="aiops-watchdog", daemon=True).start()
    try:
        await kopf.operator(**kwargs, stop_flag=_stop)
    finally:
        done.set()
    return _stop.done() and not _stop.cancelled()


def release() -> None:
    """For the cleanup handlers: when a signal stops kopf, kopf leaves its task that awaits the stop flag pending,
    then waits 5 s for it before cancelling it. Every SIGTERM took 5 s longer (a leader's handover, a rollout, each
    restart in the tests); cancelling the flag ends that task at once."""
    if _stop is not None and not _stop.done():
        _stop.cancel()
    _expect_stop()
