"""The commands' connection to the history database: connect, do the work, close, and say what failed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from aiops.stores.history.migrate import ERRORS


def run(
    command: str,
    dsn: str,
    work: Callable[[asyncpg.Connection], Awaitable[int]],
    also: tuple[type[BaseException], ...] = (),
) -> int:
    """`work`'s exit status on a connection to `dsn`; 1, with the error on stderr, when the database (or one of the
    errors `also` names) fails it."""

    async def main() -> int:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except (*ERRORS, *also) as exc:
        print(f"aiops {command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
