"""aiops.core.background: the operator's own loops end with its cleanup, not after kopf's 5 s wait for hung tasks."""

from __future__ import annotations

import asyncio

from aiops.core import background


def test_cancel_all_ends_every_loop_and_forgets_it():
    ended = []

    async def forever(name: str) -> None:
        try:
            while True:
                await asyncio.sleep(5)
        finally:
            ended.append(name)

    async def main() -> None:
        tasks = [background.spawn(forever(n), n) for n in ("heartbeat", "sweeper")]
        done = background.spawn(asyncio.sleep(0), "short")
        await asyncio.sleep(0.01)
        assert done.done()
        await asyncio.wait_for(background.cancel_all(), 1)
        assert all(t.cancelled() for t in tasks)

    asyncio.run(main())
    assert sorted(ended) == ["heartbeat", "sweeper"]
    assert not background._tasks
