"""Pure helpers for status: conditions, the timeline and the minimal status patch.

Everything here works on the wire form (camelCase dicts) and takes the clock as an
argument, so tests control time and nothing here talks to a cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

READY = "Ready"


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 timestamps as the API server writes them (`2024-05-01T10:00:00Z`, MicroTime too)."""
    return datetime.fromisoformat(value) if value else None


def find_condition(conditions: list[dict], type_: str) -> dict | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def set_condition(
    conditions: list[dict],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> tuple[list[dict], bool]:
    """Returns the new conditions and whether this one transitioned (status or reason changed).

    lastTransitionTime moves only when the status flips, as the API conventions ask.
    """
    old = find_condition(conditions, type_)
    new = {"type": type_, "status": status, "reason": reason, "message": message}
    if generation is not None:
        new["observedGeneration"] = generation
    flipped = old is None or old.get("status") != status
    new["lastTransitionTime"] = rfc3339(now) if flipped else old["lastTransitionTime"]
    changed = flipped or old.get("reason") != reason
    out = [new if c.get("type") == type_ else c for c in conditions]
    if old is None:
        out.append(new)
    return out, changed


def append_timeline(timeline: list[dict], reason: str, message: str, now: datetime, limit: int) -> list[dict]:
    """Appends an entry and keeps the newest `limit` ones."""
    entry = {"time": rfc3339(now), "reason": reason, "message": message[:1024]}
    return (list(timeline) + [entry])[-limit:]


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The top-level status fields of `new` that differ from `old`: empty when nothing changed."""
    old = old or {}
    return {k: v for k, v in new.items() if old.get(k) != v}
