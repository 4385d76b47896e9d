"""The notifications outbox in PostgreSQL (table notification_outbox, migration 0002): what is to be sent,
what was, and what could not be.

Every function takes an asyncpg pool or connection; each is one statement, so none needs a transaction.

    enqueue(db, notice, channels)      one row per channel; a notice enqueued again changes nothing
    claim(db, channel, limit, lease_s) due rows, each to one sender: SELECT ... FOR UPDATE SKIP LOCKED
    mark_sent / mark_retry / mark_dead what the send came to, if the claim is still the sender's
    listing(db, states) / requeue(db, id)   the dead letters (and pending rows), for `aiops notifications`

A claim sets the row `sending` until now + lease and counts the attempt; a sender that dies mid-send leaves
the row to become due again when the lease ends. The attempt count doubles as the claim's fencing token:
a sender whose lease ran out and whose row was claimed again cannot overwrite the newer claim's outcome.
Delivery is at least once: a send that succeeded but was not recorded is sent again, with the same notice
key (the CloudEvents id, the Idempotency-Key) for the receiver to recognise it.

An Incident's notices on one channel are claimed in order, one at a time (a later one waits until the earlier
is sent or dead), so that the earlier's `ref` (a Slack message's ts) is there for the later to update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from aiops.notify.notice import Notice
from aiops.stores.history import migrate

LISTEN_CHANNEL = "aiops_notifications"  # NOTIFY payload: the channel name a row was enqueued for
States = tuple[str, ...]

_ENQUEUE = f"""
WITH ins AS (
    INSERT INTO notification_outbox (incident, incident_uid, channel, notice_key, stage, payload)
    SELECT $1, $2, c, $3, $4, $5::jsonb FROM unnest($6::text[]) AS c
    ON CONFLICT (notice_key, channel) DO NOTHING
    RETURNING channel
)
SELECT channel, pg_notify('{LISTEN_CHANNEL}', channel)::text AS notified FROM ins
"""

_CLAIM = """
WITH due AS (
    SELECT o.id FROM notification_outbox o
    WHERE o.channel = $1 AND o.state IN ('pending', 'sending') AND o.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM notification_outbox e
          WHERE e.incident_uid = o.incident_uid AND e.channel = o.channel AND e.id < o.id
            AND e.state IN ('pending', 'sending'))
    ORDER BY o.next_attempt_at, o.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_outbox o
SET state = 'sending', attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $3)
FROM due WHERE o.id = due.id
RETURNING o.id, o.incident, o.incident_uid, o.channel, o.stage, o.notice_key, o.payload, o.attempts,
    (SELECT p.ref FROM notification_outbox p
     WHERE p.incident_uid = o.incident_uid AND p.channel = o.channel AND p.state = 'sent' AND p.ref IS NOT NULL
     ORDER BY p.sent_at DESC, p.id DESC LIMIT 1) AS prior_ref
"""


@dataclass(frozen=True)
class Claimed:
    """A row this sender holds until its lease ends: send it, then mark what came of it."""

    id: int
    incident: str
    uid: str
    channel: str
    stage: str
    key: str
    payload: dict
    attempts: int  # including this one
    ref: str | None  # the latest ref of this incident's sent notices on this channel

    def notice(self) -> Notice:
        return Notice.model_validate(self.payload)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    incident: str
    channel: str
    stage: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime

    def line(self) -> str:
        """One line for `aiops notifications`."""
        due = f" next {self.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}" if self.state in ("pending", "sending") else ""
        error = f": {self.last_error}" if self.last_error else ""
        return (
            f"{self.id} {self.state} {self.incident} {self.channel} {self.stage} attempts={self.attempts}{due}{error}"
        )


async def open_pool(dsn: str, max_size: int = 4, timeout_s: float = 10.0) -> asyncpg.Pool:
    """A pool on the history database, its schema migrated (the outbox table comes with migration 0002)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, timeout=timeout_s, command_timeout=timeout_s)
    try:
        async with pool.acquire() as conn:
            await migrate.migrate(conn)
    except BaseException:
        await pool.close()
        raise
    return pool


async def enqueue(db, notice: Notice, channels: list[str]) -> list[str]:
    """Adds `notice` for each channel; the channels it was new for (none when it was enqueued before).

    Wakes the senders listening on LISTEN_CHANNEL when the insert commits."""
    if not channels:
        return []
    rows = await db.fetch(
        _ENQUEUE,
        notice.incident,
        notice.uid,
        notice.key,
        str(notice.stage),
        json.dumps(notice.wire()),
        list(dict.fromkeys(channels)),
    )
    return [r["channel"] for r in rows]


async def claim(db, channel: str, limit: int, lease_s: float) -> list[Claimed]:
    """Up to `limit` due rows of `channel`, now `sending` for this caller until the lease ends; oldest due first.

    Concurrent callers never get the same row: a row another holds locked is skipped, not waited for."""
    if limit < 1:
        return []
    rows = await db.fetch(_CLAIM, channel, limit, float(lease_s))
    return [
        Claimed(
            id=r["id"],
            incident=r["incident"],
            uid=r["incident_uid"],
            channel=r["channel"],
            stage=r["stage"],
            key=r["notice_key"],
            payload=json.loads(r["payload"]),
            attempts=r["attempts"],
            ref=r["prior_ref"],
        )
        for r in sorted(rows, key=lambda r: r["id"])
    ]


async def mark_sent(db, row: Claimed, ref: str | None) -> bool:
    """Sent, whichever claim sent it (the message is out either way); False when the row was already settled."""
    done = await db.fetchval(
        """UPDATE notification_outbox SET state = 'sent', ref = $2, sent_at = now(), last_error = NULL
           WHERE id = $1 AND state = 'sending' RETURNING id""",
        row.id,
        ref,
    )
    return done is not None


async def mark_retry(db, row: Claimed, error: str, after_s: float) -> bool:
    """Due again in `after_s`; False when this claim is no longer the row's latest."""
    done = await db.fetchval(
        """UPDATE notification_outbox
           SET state = 'pending', last_error = $3, next_attempt_at = now() + make_interval(secs => $4)
           WHERE id = $1 AND state = 'sending' AND attempts = $2 RETURNING id""",
        row.id,
        row.attempts,
        error,
        float(after_s),
    )
    return done is not None


async def mark_dead(db, row: Claimed, error: str) -> bool:
    """A dead letter: never tried again unless requeued; False when this claim is no longer the row's latest."""
    done = await db.fetchval(
        """UPDATE notification_outbox SET state = 'dead', last_error = $3
           WHERE id = $1 AND state = 'sending' AND attempts = $2 RETURNING id""",
        row.id,
        row.attempts,
        error,
    )
    return done is not None


async def listing(db, states: States = ("dead",), limit: int = 1000) -> list[OutboxRow]:
    rows = await db.fetch(
        """SELECT id, incident, channel, stage, state, attempts, last_error, next_attempt_at, created_at
           FROM notification_outbox WHERE state = ANY($1::text[]) ORDER BY id LIMIT $2""",
        list(states),
        limit,
    )
    return [OutboxRow(**dict(r)) for r in rows]


async def requeue(db, row_id: int) -> OutboxRow | None:
    """A dead row back to pending, due now, with its attempts counted afresh; None when `row_id` is not dead."""
    r = await db.fetchrow(
        f"""WITH back AS (
                UPDATE notification_outbox SET state = 'pending', attempts = 0, next_attempt_at = now()
                WHERE id = $1 AND state = 'dead'
                RETURNING id, incident, channel, stage, state, attempts, last_error, next_attempt_at, created_at
            )
            SELECT back.*, pg_notify('{LISTEN_CHANNEL}', channel)::text AS notified FROM back""",
        row_id,
    )
    if r is None:
        return None
    return OutboxRow(**{k: v for k, v in dict(r).items() if k != "notified"})


async def pending(db) -> int:
    """Rows not yet sent nor dead (pending, or being sent)."""
    return await db.fetchval("SELECT count(*) FROM notification_outbox WHERE state IN ('pending', 'sending')")
