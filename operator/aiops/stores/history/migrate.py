"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order, each once.

All pending migrations are applied in one transaction under an advisory lock, so two operators
starting at once do not race and a failing migration leaves the schema as it was.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

LOCK_ID = 0x41494F5053  # "AIOPS": pg_advisory_xact_lock key
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migrations shipped with the package, by version."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    if not found:
        raise RuntimeError("no migrations found in aiops/history/migrations (is the package data installed?)")
    return found


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Applies the pending migrations; returns those it applied (none when the schema is current)."""
    applied: list[Migration] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now()
               )"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in migrations():
            if m.version in done:
                continue
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
            applied.append(m)
    return applied


async def current_version(conn: asyncpg.Connection) -> int | None:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return None
    return await conn.fetchval("SELECT max(version) FROM schema_migrations")


# What a read or write of the history can raise: unreachable, refused, or a failed statement.
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def read_migrated(dsn: str, name: str, fn, *args):
    """`await fn(conn, *args)` on a fresh connection to `dsn` (for the command line, which has no sink); None when
    the schema does not have migration `name` yet. Raises what asyncpg raises."""

    async def read():
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            needed = next(m.version for m in migrations() if m.name == name)
            if (await current_version(conn) or 0) < needed:
                return None
            return await fn(conn, *args)
        finally:
            await conn.close()

    return asyncio.run(read())
