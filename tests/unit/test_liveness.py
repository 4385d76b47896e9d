"""A kopf process keeps watching through outages, and ends (to be restarted) when a watch ended anyway."""

from __future__ import annotations

import asyncio

import pytest

from aiops.core import background
from aiops.observability import liveness


def test_backoffs_outlast_kopfs_own_and_start_anew_for_every_request():
    backoffs = liveness.Backoffs()
    first, second = list(backoffs), list(backoffs)  # kopf iterates it once per request
    assert first == second
    assert first[: len(liveness.Backoffs.FIRST)] == [1, 1, 2, 3, 5, 8, 13, 21]  # kopf's default, 54 s
    assert 600 <= sum(first) <= 900 and max(first) == 30


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

    async def scenario() -> object:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(liveness, "_stop", loop.create_future())
        liveness.start_heartbeat()
        loop.create_task(_watcher(True), name="watcher for incidents.v1alpha1.aiops.dev@none")
        try:
            return await asyncio.wait_for(liveness._stop, 5)
        finally:
            await background.cancel_all()

    assert asyncio.run(scenario()) == "a watch ended"
    assert "kopf stopped watching incidents.v1alpha1.aiops.dev@none" in caplog.text
