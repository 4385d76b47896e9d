"""A kopf process keeps watching through outages, and ends (to be restarted) when a watch ended anyway."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from aiops.core import background
from aiops.observability import liveness


def test_backoffs_outlast_kopfs_own_and_start_anew_for_every_request():
    backoffs = liveness.Backoffs(720)
    first, second = list(backoffs), list(backoffs)  # kopf iterates it once per request
    assert first == second and len(backoffs) == len(first)
    assert first[: len(liveness.Backoffs.FIRST)] == [1, 1, 2, 3, 5, 8, 13, 21]  # kopf's default, 54 s
    assert sum(first) == 714 and max(first) == 30
    assert list(liveness.Backoffs(5)) == [1, 1, 2]  # a budget shorter than kopf's own cuts it short


async def _watcher(fail: bool) -> None:
    await asyncio.sleep(0.01)
    if fail:
        raise RuntimeError("Request attempt #30 failed; escalating")
    await asyncio.sleep(60)


def test_failed_watchers_names_those_that_ended_not_those_cancelled_or_running():
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        known: dict[str, asyncio.Task] = {}
        failing = loop.create_task(_watcher(True), name="watcher for incidents.v1alpha1.aiops.dev@none")
        cancelled = loop.create_task(_watcher(False), name="watcher for sops.v1alpha1.aiops.dev@none")
        running = loop.create_task(_watcher(False), name="watcher for analysisruns.v1alpha1.aiops.dev@none")
        other = loop.create_task(_watcher(True), name="something else")
        assert liveness.failed_watchers(known) == []  # all seen while running
        cancelled.cancel()
        await asyncio.gather(failing, cancelled, other, return_exceptions=True)
        failed = liveness.failed_watchers(known)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return failed

    assert asyncio.run(scenario()) == [
        "incidents.v1alpha1.aiops.dev@none (RuntimeError: Request attempt #30 failed; escalating)"
    ]


def test_the_heartbeat_stops_the_process_once_a_watcher_ended(monkeypatch: pytest.MonkeyPatch, caplog):
    monkeypatch.setattr(liveness, "BEAT_S", 0.01)
    monkeypatch.setattr(liveness, "_stop_by", None)

    async def scenario() -> object:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(liveness, "_stop", loop.create_future())
        liveness.start_heartbeat()
        loop.create_task(_watcher(True), name="watcher for incidents.v1alpha1.aiops.dev@none")
        try:
            return await asyncio.wait_for(liveness._stop, 5)
        finally:
            await background.cancel_all()

    asked = time.monotonic()
    assert asyncio.run(scenario()) == "a watch ended"
    assert "kopf stopped watching incidents.v1alpha1.aiops.dev@none" in caplog.text
    # and the watchdog's deadline for kopf to be gone is set (kopf can wedge with the heartbeat beating on)
    assert asked + liveness.STOP_GRACE_S <= liveness._stop_by <= time.monotonic() + liveness.STOP_GRACE_S


def _watchdog_in_a_process(state: str) -> subprocess.CompletedProcess:
    code = (
        "import logging, threading, time\n"
        "from aiops.observability import liveness\n"
        "logging.basicConfig()\n"
        "liveness.BEAT_S = 0.01\n"
        "liveness.HEALTH.beat = time.monotonic()\n"
        f"{state}\n"
        "liveness._watchdog(threading.Event())\n"
        "print('not reached')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_stale_heartbeat_ends_the_process_with_status_1():
    """Where kopf wedged on its way out, its tasks (the heartbeat too) cancelled and no liveness probe to notice."""
    done = _watchdog_in_a_process("liveness.HEALTH.beat = time.monotonic() - liveness.HEARTBEAT_STALE_S - 1")
    assert done.returncode == 1 and "not reached" not in done.stdout
    assert "the event loop's heartbeat is 61s old (kopf stopped or is stuck): exiting" in done.stderr


def test_kopf_not_stopped_in_time_after_being_asked_ends_the_process_with_status_1():
    """kopf's own stop waited without end for a task of its own, the heartbeat still beating (seen in CI)."""
    done = _watchdog_in_a_process("liveness.STOP_GRACE_S = 0.05; liveness._expect_stop()")
    assert done.returncode == 1 and "not reached" not in done.stdout
    assert "kopf has not stopped 0.05s after it was asked to (wedged on its way out): exiting" in done.stderr


def test_a_path_the_api_server_does_not_serve_yet_is_retried_a_missing_object_or_group_is_not():
    """A restarted API server answers "404 page not found" (text) for custom resources until it has loaded their
    definitions: kopf would end the watcher. A 404 Status (an object that is missing) stays what it is, and so does
    a 404 on a group's own path, which kopf's discovery reads as the group gone."""
    from aiohttp import ClientSession, web
    from kopf._cogs.clients import errors as kopf_errors

    async def route_missing(_request):
        return web.Response(status=404, text="404 page not found\n")

    async def object_missing(_request):
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                  "message": 'incidents.aiops.dev "x" not found'}  # fmt: skip
        return web.json_response(status, status=404)

    async def scenario() -> list[BaseException]:
        app = web.Application()
        app.router.add_get("/apis/aiops.dev/v1alpha1/incidents", route_missing)
        app.router.add_get("/apis/aiops.dev/v1alpha1", route_missing)
        app.router.add_get("/apis/aiops.dev/v1alpha1/namespaces/shop/incidents/x", object_missing)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        check = liveness._route_missing_is_retried(kopf_errors.check_response)
        raised = []
        try:
            async with ClientSession() as session:
                for path in (
                    "/apis/aiops.dev/v1alpha1/incidents",
                    "/apis/aiops.dev/v1alpha1/namespaces/shop/incidents/x",
                    "/apis/aiops.dev/v1alpha1",
                ):
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                        with pytest.raises(kopf_errors.APIError) as caught:
                            await check(response)
                        raised.append(caught.value)
        finally:
            await runner.cleanup()
        return raised

    route, missing, group = asyncio.run(scenario())
    assert isinstance(route, kopf_errors.APIServerError) and route.status == 404  # kopf retries these
    assert "page not found" in str(route)
    assert isinstance(missing, kopf_errors.APINotFoundError) and missing.code == 404
    assert isinstance(group, kopf_errors.APINotFoundError) and group.code is None  # discovery: the group is gone
