"""Status: conditions, the timeline, the minimal status patch, and the StatusBuilder every writer uses.

The helpers work on the wire form (camelCase dicts) and take the clock as an argument, so tests
control time and nothing here talks to a cluster. A writer parses the body, decides, and records
the outcome in a StatusBuilder; the builder emits an Event and a timeline entry only on a real
transition and writes only the status fields that changed, so running a writer twice changes
nothing the second time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

READY = "Ready"

Emit = Callable[[str, str, str], None]  # (type, reason, message)


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


@dataclass
class StatusBuilder:
    """Accumulates the new status of one object; `apply` puts only the changes into kopf's patch."""

    body: Any
    now: datetime
    emit: Emit
    timeline_limit: int | None = None  # kinds with a timeline set this
    new: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.old = copy.deepcopy(dict(self.body.get("status") or {}))
        self.new = copy.deepcopy(self.old)
        self.generation = self.body["metadata"].get("generation")
        self.new["observedGeneration"] = self.generation

    def condition(self, type_: str, status: str, reason: str, message: str, event: str | None = None) -> bool:
        """Sets a condition; on a transition emits an Event of type `event` (if given)."""
        conditions, changed = set_condition(
            list(self.new.get("conditions") or []), type_, status, reason, message, self.generation, self.now
        )
        self.new["conditions"] = conditions
        if changed and event:
            self.emit(event, reason, message)
            self.record(reason, message)
        return changed

    def phase(self, phase: str, message: str, event: str | None = "Normal") -> None:
        """Sets the phase; on a change records it in the timeline and, unless event is None, as an Event."""
        if self.new.get("phase") != phase:
            self.new["phase"] = phase
            if event:
                self.emit(event, phase, message)
            self.record(phase, message)

    def record(self, reason: str, message: str) -> None:
        if self.timeline_limit:
            self.new["timeline"] = append_timeline(
                list(self.new.get("timeline") or []), reason, message, self.now, self.timeline_limit
            )

    def set(self, **fields: Any) -> None:
        self.new.update(fields)

    def ready_reason(self) -> str | None:
        cond = find_condition(self.new.get("conditions") or [], READY)
        return cond["reason"] if cond else None

    def apply(self, patch: dict) -> dict[str, Any]:
        changes = status_patch(self.old, self.new)
        if changes:
            patch.setdefault("status", {})
            patch["status"].update(changes)
        return changes
