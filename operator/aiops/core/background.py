"""Background loops on kopf's event loop (heartbeats, sweepers, retries): each held by a reference so the loop
does not collect it, and all cancelled by the operator's cleanup. kopf itself would wait 5 s for such "hung" tasks
before cancelling them, on every shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_tasks: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def cancel_all() -> None:
    tasks = [t for t in _tasks if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
