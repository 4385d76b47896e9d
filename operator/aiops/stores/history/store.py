"""Writes events into the history tables, finds similar past incidents, applies retention.

Every function takes an asyncpg connection; the sink (aiops.stores.history.sink) owns the pool and the loop.
Writes are idempotent: delivering an event twice, or a replay of it with a new event id (a handler that
ran again), leaves the tables as one delivery does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from aiops.core.events import Event, EventType, fingerprint

log = logging.getLogger(__name__)
MAX_QUERY_CHARS = 20_000


def clean(value: Any) -> Any:
    """The JSON value without NUL characters, which PostgreSQL's text and jsonb refuse."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {clean(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean(str(value))


def _text(value: Any, limit: int = 65_536) -> str | None:
    if value is None:
        return None
    return clean(value if isinstance(value, str) else json.dumps(value, default=str))[:limit]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _time(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return default


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def incident_id(event: Event) -> str:
    """The incident's uid; an event without one is keyed by its namespace/name."""
    return event.uid or f"key:{event.key}"


async def write(conn: asyncpg.Connection, event: Event) -> bool:
    """Records one event; False when it had been recorded before (a duplicate delivery or replay)."""
    data = clean(event.data)
    async with conn.transaction():
        new = await conn.fetchval(
            """INSERT INTO audit_log (fingerprint, event_id, type, key, uid, generation, at, data)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
               ON CONFLICT (fingerprint) DO NOTHING RETURNING true""",
            fingerprint(event),
            event.id,
            str(event.type),
            clean(event.key),
            event.uid,
            event.generation,
            event.at,
            json.dumps(data),
        )
        writer = _WRITERS.get(event.type)
        if writer:
            await writer(conn, event, data)
    return bool(new)


async def _incident(conn: asyncpg.Connection, event: Event, data: dict) -> None:
    alert = _dict(data.get("alert"))
    annotations = _dict(alert.get("annotations"))
    description = data.get("description") or annotations.get("description") or annotations.get("summary") or ""
    await conn.execute(
        """INSERT INTO incidents (uid, key, generation, title, description, severity, source, cluster, target, alert,
                                  stub, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, false, $11, $11)
           ON CONFLICT (uid) DO UPDATE SET
               generation = excluded.generation, title = excluded.title, description = excluded.description,
               severity = excluded.severity, source = excluded.source, cluster = excluded.cluster,
               target = excluded.target, alert = excluded.alert, stub = false,
               created_at = least(incidents.created_at, excluded.created_at),
               updated_at = greatest(incidents.updated_at, excluded.updated_at)
           WHERE incidents.stub""",
        incident_id(event),
        clean(event.key),
        event.generation,
        _text(data.get("title"), 1024) or "",
        _text(description, 16_384),
        _text(data.get("severity"), 64),
        _text(data.get("source"), 64),
        _text(_dict(data.get("clusterRef")).get("name"), 253),
        json.dumps(data.get("target")),
        json.dumps(data.get("alert")),
        event.at,
    )


async def _touch(conn: asyncpg.Connection, event: Event) -> str:
    """Makes sure the incident row exists (a stub when history missed its creation); returns its id."""
    uid = incident_id(event)
    await conn.execute(
        """INSERT INTO incidents (uid, key, generation, stub, created_at, updated_at) VALUES ($1, $2, $3, true, $4, $4)
           ON CONFLICT (uid) DO UPDATE SET updated_at = greatest(incidents.updated_at, excluded.updated_at)""",
        uid,
        clean(event.key),
        event.generation,
        event.at,
    )
    return uid


def suspects_text(suspects: list[dict]) -> str:
    parts = []
    for s in suspects:
        if isinstance(s, dict):
            parts += [str(s.get(k) or "") for k in ("failureMode", "resource", "reason")]
    return " ".join(p for p in parts if p)[:16_384]


async def _diagnosed(conn: asyncpg.Connection, event: Event, data: dict) -> None:
    d = _dict(data.get("diagnosis")) or data
    suspects = (
        [s for s in d.get("suspects") or [] if isinstance(s, dict)] if isinstance(d.get("suspects"), list) else []
    )
    uid = await _touch(conn, event)
    await conn.execute(
        """INSERT INTO analyses (incident_uid, generation, event_id, at, root_cause, confidence, execution_status,
                                 model, prompt_version, suspects, suspects_text, diagnosis)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12::jsonb)
           ON CONFLICT (incident_uid, generation) DO UPDATE SET
               event_id = excluded.event_id, at = excluded.at, root_cause = excluded.root_cause,
               confidence = excluded.confidence, execution_status = excluded.execution_status,
               model = excluded.model, prompt_version = excluded.prompt_version, suspects = excluded.suspects,
               suspects_text = excluded.suspects_text, diagnosis = excluded.diagnosis
           WHERE analyses.at <= excluded.at""",
        uid,
        event.generation or 0,
        event.id,
        event.at,
        _text(d.get("rootCause"), 8192) or "",
        _int(d.get("confidence")),
        _text(d.get("executionStatus"), 64),
        _text(d.get("model"), 253),
        _text(d.get("promptVersion"), 64),
        json.dumps(suspects),
        suspects_text(suspects),
        json.dumps(d),
    )


async def _sop_action(conn: asyncpg.Connection, event: Event, data: dict) -> None:
    uid = await _touch(conn, event)
    await conn.execute(
        """INSERT INTO sop_actions (incident_uid, sop, step, action, at, target, approved_by, dry_run, before, after,
                                    outcome, event_id, undo, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (incident_uid, step, action, at) DO NOTHING""",
        uid,
        _text(data.get("sop"), 253),
        _text(data.get("step"), 63) or "?",
        _text(data.get("action"), 64) or "?",
        _time(data.get("at"), event.at),
        _text(data.get("target"), 512),
        _text(data.get("approvedBy"), 253),
        _text(data.get("dryRun"), 1024),
        _text(data.get("before"), 2048),
        _text(data.get("after"), 2048),
        _text(data.get("outcome"), 1024),
        event.id,
        data.get("undo") is True,
        _text(data.get("reason"), 1024),
    )


async def _feedback(conn: asyncpg.Connection, event: Event, data: dict) -> None:
    if not isinstance(data.get("correct"), bool):
        raise ValueError(f"FEEDBACK without a boolean 'correct': {data.get('correct')!r}")
    uid = await _touch(conn, event)
    await conn.execute(
        """INSERT INTO feedback (incident_uid, generation, at, correct, by_whom, comment, model, sop, event_id,
                                 root_cause)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (incident_uid, generation) DO UPDATE SET
               at = excluded.at, correct = excluded.correct, by_whom = excluded.by_whom, comment = excluded.comment,
               model = excluded.model, sop = excluded.sop, event_id = excluded.event_id,
               root_cause = excluded.root_cause
           WHERE feedback.at <= excluded.at""",
        uid,
        event.generation or 0,
        event.at,
        data["correct"],
        _text(data.get("by"), 253),
        _text(data.get("comment"), 2048),
        _text(data.get("model"), 253),
        _text(data.get("sop"), 253),
        event.id,
        _text(data.get("rootCause"), 400),
    )


_WRITERS = {
    EventType.INCIDENT_CREATED: _incident,
    EventType.DIAGNOSED: _diagnosed,
    EventType.SOP_ACTION: _sop_action,
    EventType.FEEDBACK: _feedback,
}


@dataclass(frozen=True)
class PastIncident:
    """A past incident like the one at hand, with what was concluded and what came of it."""

    uid: str
    key: str  # namespace/name
    title: str
    severity: str | None
    created_at: datetime
    rank: float  # ts_rank of the match; higher is closer
    root_cause: str | None = None  # the latest diagnosis, if there was one
    confidence: int | None = None
    model: str | None = None
    failure_modes: list[str] = field(default_factory=list)  # of the ranked suspects, best first
    correct: bool | None = None  # the engineer's verdict on that diagnosis, if given
    feedback: str | None = None
    actions: list[str] = field(default_factory=list)  # SOP actions taken: "step: action target -> outcome"

    def summary(self) -> str:
        """One paragraph for a prompt."""
        parts = [f"{self.created_at:%Y-%m-%d} {self.key} ({self.severity or 'unknown severity'}): {self.title}"]
        if self.root_cause:
            parts.append(f"root cause ({self.confidence}% confidence): {self.root_cause}")
        if self.failure_modes:
            parts.append(f"failure modes: {', '.join(self.failure_modes)}")
        if self.correct is not None:
            verdict = "confirmed correct" if self.correct else "judged INCORRECT"
            parts.append(f"diagnosis {verdict} by an engineer" + (f": {self.feedback}" if self.feedback else ""))
        if self.actions:
            parts.append(f"actions: {'; '.join(self.actions)}")
        return "; ".join(parts)


# Any of the words of $1, as a tsquery: the query side of the history's full-text searches.
ANY_WORD_CTE = r"""
WITH q AS (
    SELECT to_tsquery('simple', string_agg(
        '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''', ' | ')) AS query
    FROM unnest(to_tsvector('english', $1))
)
"""

# A PastIncident's columns: the incident, its latest diagnosis and verdict, the SOP actions taken. RANK and JOIN
# are filled in by the two queries below.
_PAST_SQL = r"""
SELECT i.uid, i.key, i.title, i.severity, i.created_at, i.description, i.stub, RANK AS rank,
       concat_ws('|', i.updated_at, a.event_id, f.event_id,
                 (SELECT count(*) FROM sop_actions s WHERE s.incident_uid = i.uid)) AS version,
       a.root_cause, a.confidence, a.model, a.suspects, f.correct, f.comment,
       (SELECT coalesce(array_agg(s.step || ': ' || s.action || ' ' || coalesce(s.target, '') || ' -> '
                                  || coalesce(s.outcome, '?') ORDER BY s.at), '{}')
        FROM sop_actions s WHERE s.incident_uid = i.uid) AS actions
FROM incidents i
JOIN
LEFT JOIN LATERAL (SELECT * FROM analyses WHERE incident_uid = i.uid ORDER BY generation DESC, at DESC LIMIT 1) a
       ON true
LEFT JOIN LATERAL (SELECT * FROM feedback WHERE incident_uid = i.uid ORDER BY generation DESC, at DESC LIMIT 1) f
       ON true
"""

SIMILAR_SQL = (
    ANY_WORD_CTE
    + _PAST_SQL.replace("RANK", "ts_rank(i.search || coalesce(a.search, ''::tsvector), q.query)").replace(
        "\nJOIN\n", "\nCROSS JOIN q\n"
    )
    + r"""WHERE q.query IS NOT NULL
  AND (i.search || coalesce(a.search, ''::tsvector)) @@ q.query
  AND ($3::text IS NULL OR i.uid <> $3)
ORDER BY rank DESC, i.created_at DESC
LIMIT $2
"""
)

# Every incident with what it is made of; `version` changes with each event about it (event times are whole
# seconds: not enough on their own).
PAST_ROWS_SQL = _PAST_SQL.replace("RANK", "0.0").replace("\nJOIN\n", "\n")
PASTS_SQL = PAST_ROWS_SQL + "WHERE i.uid = ANY($1::text[])\n"


# The incidents about one workload (its kind, namespace and name; on one cluster, None: the local one), newest first.
ON_TARGET_SQL = (
    PAST_ROWS_SQL
    + r"""WHERE i.target->>'kind' = $1 AND i.target->>'name' = $3
  AND coalesce(i.target->>'namespace', split_part(i.key, '/', 1)) = $2
  AND i.cluster IS NOT DISTINCT FROM $4 AND i.created_at >= $5
ORDER BY i.created_at DESC
LIMIT $6
"""
)


async def on_target(
    conn: asyncpg.Connection, kind: str, namespace: str, name: str, cluster: str | None, since: datetime, limit: int
) -> list[PastIncident]:
    """Past incidents whose target is this workload, created since `since`, newest first."""
    rows = await conn.fetch(ON_TARGET_SQL, kind, namespace, name, cluster, since, limit)
    return [_past(r) for r in rows]


async def similar(
    conn: asyncpg.Connection, text: str, limit: int = 5, exclude_uid: str | None = None
) -> list[PastIncident]:
    """Past incidents whose title, description, root cause or suspects share words with `text`, best first."""
    text = clean(text or "")[:MAX_QUERY_CHARS]
    if not text.strip() or limit < 1:
        return []
    rows = await conn.fetch(SIMILAR_SQL, text, min(limit, 100), exclude_uid)
    return [_past(r) for r in rows]


def _past(r: asyncpg.Record) -> PastIncident:
    suspects = json.loads(r["suspects"]) if r["suspects"] else []
    return PastIncident(
        uid=r["uid"],
        key=r["key"],
        title=r["title"],
        severity=r["severity"],
        created_at=r["created_at"],
        rank=float(r["rank"]),
        root_cause=r["root_cause"],
        confidence=r["confidence"],
        model=r["model"],
        failure_modes=[str(s.get("failureMode")) for s in suspects if s.get("failureMode")],
        correct=r["correct"],
        feedback=r["comment"],
        actions=list(r["actions"]),
    )


async def pasts(conn: asyncpg.Connection, uids: list[str]) -> list[tuple[PastIncident, str, str]]:
    """The incidents of `uids` that exist, in that order, each with its description and its version (what the
    knowledge index re-indexes on); rank 0."""
    by_uid = {r["uid"]: r for r in await conn.fetch(PASTS_SQL, uids)}
    return [(_past(by_uid[u]), by_uid[u]["description"], by_uid[u]["version"]) for u in uids if u in by_uid]


async def apply_retention(conn: asyncpg.Connection, days: int) -> dict[str, int]:
    """Deletes incidents (with their analyses, actions and feedback) and audit entries older than `days`."""
    async with conn.transaction():
        await conn.execute("SET LOCAL aiops.retention = 'on'")  # the audit log's trigger lets this one through
        incidents = await conn.fetchval(
            "WITH d AS (DELETE FROM incidents WHERE updated_at < now() - make_interval(days => $1) RETURNING 1) "
            "SELECT count(*) FROM d",
            days,
        )
        audit = await conn.fetchval(
            "WITH d AS (DELETE FROM audit_log WHERE at < now() - make_interval(days => $1) RETURNING 1) "
            "SELECT count(*) FROM d",
            days,
        )
    return {"incidents": incidents, "audit_log": audit}
