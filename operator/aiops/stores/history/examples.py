"""Labelled examples: feedback that corrects a diagnosis's root cause, with the incident and the diagnosis it corrects.

They are read two ways: `corrections()` finds those of incidents like the one being diagnosed (the root-cause
prompt shows them as PAST CORRECTIONS), `examples()` lists them all for `aiops export feedback`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from aiops.stores.history.store import ANY_WORD_CTE, MAX_QUERY_CHARS, clean


@dataclass(frozen=True)
class Example:
    """One corrected diagnosis: what the incident looked like, what the operator said, what was true."""

    uid: str
    key: str  # namespace/name
    title: str
    description: str
    severity: str | None
    alert_labels: dict[str, str]
    at: datetime  # when the feedback was given
    corrected_root_cause: str
    comment: str | None
    by: str | None
    diagnosis: dict = field(default_factory=dict)  # the corrected diagnosis as the operator wrote it (wire form)

    def correction(self) -> str:
        """One paragraph for a prompt: the incident, the wrong root cause, the right one."""
        said = self.diagnosis.get("rootCause") or "(no diagnosis recorded)"
        parts = [
            f"{self.at:%Y-%m-%d} {self.key} ({self.severity or 'unknown severity'}): {self.title}",
            f"the diagnosis said: {said}",
            f"an engineer corrected the root cause to: {self.corrected_root_cause}",
        ]
        if self.comment:
            parts.append(f"their comment: {self.comment}")
        return "; ".join(parts)


_SELECT = """
SELECT i.uid, i.key, i.title, i.description, i.severity, i.alert, f.at, f.root_cause, f.comment, f.by_whom,
       a.diagnosis
FROM feedback f
JOIN incidents i ON i.uid = f.incident_uid
LEFT JOIN LATERAL (
    SELECT diagnosis FROM analyses WHERE incident_uid = i.uid ORDER BY generation DESC, at DESC LIMIT 1
) a ON true
"""

# The latest feedback of each incident counts: a later verdict replaces an earlier one.
_LATEST = "f.generation = (SELECT max(generation) FROM feedback WHERE incident_uid = f.incident_uid)"

CORRECTIONS_SQL = (
    ANY_WORD_CTE
    + _SELECT
    + f"""CROSS JOIN q
WHERE f.root_cause IS NOT NULL AND {_LATEST}
  AND q.query IS NOT NULL
  AND (i.search || coalesce(f.search, ''::tsvector)) @@ q.query
  AND ($3::text IS NULL OR i.uid <> $3)
ORDER BY ts_rank(i.search || coalesce(f.search, ''::tsvector), q.query) DESC, f.at DESC
LIMIT $2
"""
)

EXAMPLES_SQL = _SELECT + f"WHERE f.root_cause IS NOT NULL AND {_LATEST}\nORDER BY f.at, i.uid"


def _example(r: asyncpg.Record) -> Example:
    alert = json.loads(r["alert"]) if r["alert"] else None
    labels = alert.get("labels") if isinstance(alert, dict) else None
    return Example(
        uid=r["uid"],
        key=r["key"],
        title=r["title"],
        description=r["description"],
        severity=r["severity"],
        alert_labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        at=r["at"],
        corrected_root_cause=r["root_cause"],
        comment=r["comment"],
        by=r["by_whom"],
        diagnosis=json.loads(r["diagnosis"]) if r["diagnosis"] else {},
    )


async def corrections(
    conn: asyncpg.Connection, text: str, limit: int = 3, exclude_uid: str | None = None
) -> list[Example]:
    """Corrected diagnoses of past incidents that share words with `text`, closest first."""
    text = clean(text or "")[:MAX_QUERY_CHARS]
    if not text.strip() or limit < 1:
        return []
    return [_example(r) for r in await conn.fetch(CORRECTIONS_SQL, text, min(limit, 20), exclude_uid)]


async def examples(conn: asyncpg.Connection) -> list[Example]:
    """Every labelled example, oldest feedback first."""
    return [_example(r) for r in await conn.fetch(EXAMPLES_SQL)]
