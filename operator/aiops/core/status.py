"""Status: conditions, the timeline, the minimal status patch, and the StatusBuilder every writer uses.

The helpers work on the wire form (camelCase dicts) and take the clock as an argument, so tests
control time and nothing here talks to a cluster. A writer parses the body, decides, and records
the outcome in a StatusBuilder; the builder emits an Event and a timeline entry only on a real
transition and writes only the status fields that changed, so running a writer twice changes
nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aiops.api.common import Condition, ConditionStatus, Kind, Status, TimelineEntry, field_path
from aiops.core.kube import Client

READY = "Ready"
CONFLICT_RETRIES = 5  # conditional status writes refused (409) because the object changed, each decided again

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
    """The top-level status fields of `new` that differ from `old`, and null for those `new` dropped (a merge
    patch deletes them): empty when nothing changed."""
    old = old or {}
    changed = {k: _merged(old.get(k), v) for k, v in new.items() if old.get(k) != v}
    return changed | {k: None for k in old if k not in new}


def _merged(old: Any, new: Any) -> Any:
    """`new` as a merge patch over `old`: a merge patch keeps the keys of a nested object it does not name,
    so the keys `new` dropped (a finished runbook's `current` step) are sent as null."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    return {k: _merged(old.get(k), v) for k, v in new.items()} | {k: None for k in old if k not in new}


S = TypeVar("S", bound=Status)


class StatusUnreadable(ValueError):
    """The stored status does not fit the kind's status model (written by hand, or by an older operator)."""


class StatusBuilder(Generic[S]):
    """The new status of one object, as its typed model; `apply` puts only the changed fields into a patch.

    Writers change `builder.status` (the kind's pydantic status model, validated on assignment) and use
    `condition`, `phase` and `record` for what comes with an Event and a timeline entry. With `defer` the Events
    wait until `write` has stored the status they announce: a writer whose write fails and that runs again
    (an analysis after the API server came back) announces its transitions once, not once per try.
    """

    def __init__(self, kind: Kind, body: Any, now: datetime, emit: Emit, observe: bool = False, defer: bool = False):
        self.kind = kind
        self.now = now
        self.deferred: list[tuple[str, str, str]] = []
        self._post = emit
        self.emit: Emit = (lambda *event: self.deferred.append(event)) if defer else emit
        try:
            self.status: S = kind.status.model_validate(dict(body.get("status") or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = field_path(("status", *first["loc"]))
            raise StatusUnreadable(f"{kind.kind} {where}: {first['msg']}") from None
        self.old = self._wire()  # normalised, so that a re-serialisation alone is no change
        self.recorded: list[dict[str, Any]] = []  # the timeline entries this builder appended
        self.transitions: list[int] = []  # which of them record a phase transition (indexes into `recorded`)
        self.announced: list[tuple[str, str, str]] = []  # the Events of its phase transitions
        self.generation = body["metadata"].get("generation")
        if observe:  # only the kind's reconciler, which has looked at this generation of the spec
            self.status.observed_generation = self.generation
        timeline = kind.status.model_fields.get("timeline")
        self.timeline_limit = next((m.max_length for m in timeline.metadata if hasattr(m, "max_length")), None) if (
            timeline) else None  # fmt: skip

    def condition(
        self, type_: str, status: ConditionStatus | str, reason: str, message: str, event: str | None = None
    ) -> bool:
        """Sets a condition; on a transition emits an Event of type `event` (if given)."""
        status, reason = str(status), str(reason)  # enum members as their values, on the wire and in Events
        conditions, changed = set_condition(
            [c.wire() for c in self.status.conditions], type_, status, reason, message, self.generation, self.now
        )
        self.status.conditions = [Condition.model_validate(c) for c in conditions]
        if changed and event:
            self.emit(event, reason, message)
            self.record(reason, message)
        return changed

    def find(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type_), None)

    def phase(self, phase: str, message: str, event: str | None = "Normal") -> None:
        """Sets the phase; on a change records it in the timeline and, unless event is None, as an Event."""
        phase = str(phase)
        if self.status.phase != phase:
            self.status.phase = phase
            if event:
                self.emit(event, phase, message)
                self.announced.append((event, phase, message))
            before = len(self.recorded)
            self.record(phase, message)
            self.transitions += range(before, len(self.recorded))

    def record(self, reason: str, message: str) -> None:
        if self.timeline_limit:
            entries = append_timeline(
                [e.wire() for e in self.status.timeline], reason, message, self.now, self.timeline_limit
            )
            self.status.timeline = [TimelineEntry.model_validate(e) for e in entries]
            self.recorded.append(entries[-1])

    def ready_reason(self) -> str | None:
        cond = self.find(READY)
        return cond.reason if cond else None

    def _wire(self) -> dict[str, Any]:
        # Only what was stored or written: defaults nobody wrote stay off the object. A writer assigns a
        # nested object whole (a model's wire() form when it built one), never mutates one in place.
        return self.status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)

    def changes(self) -> dict[str, Any]:
        """The status fields to patch: empty when nothing changed."""
        return status_patch(self.old, self._wire())

    def flush(self) -> None:
        """Posts the Events deferred until the status was written."""
        events, self.deferred = self.deferred, []
        for event in events:
            self._post(*event)

    def apply(self, patch: dict) -> dict[str, Any]:
        """Puts the changed fields into kopf's patch (which kopf writes after the handler), and posts the Events."""
        changes = self.changes()
        if changes:
            patch.setdefault("status", {})
            patch["status"].update(changes)
        self.flush()
        return changes


def write(client: Client, builder: StatusBuilder, obj: dict, conditional: bool = False) -> dict:
    """Patches the status fields the builder changed on `obj`; the object as it now is. `conditional`: only if
    `obj` is still as read (else ApiException 409, and no Event is posted)."""
    changes = builder.changes()
    if not changes:
        builder.flush()
        return obj
    meta = obj["metadata"]
    version = meta.get("resourceVersion") if conditional else None
    stored = client.patch_status(builder.kind, meta["name"], meta.get("namespace"), changes, resource_version=version)
    builder.flush()
    return stored


def write_rebased(client: Client, builder: StatusBuilder, obj: dict) -> dict:
    """`write` for a writer that shares the conditions and the timeline with others (an Incident's): sent on `obj`'s
    resourceVersion, and when someone wrote the object meanwhile, the builder's changes are laid over the object as
    it is now (`rebased`) and sent again; the last try is sent regardless. A merge patch replaces a list whole, so
    a writer holding an older copy would otherwise drop the conditions and timeline entries written since (an
    alert resolved while a runbook's pass ran). The object as it now is."""
    changes = builder.changes()
    if not changes:
        builder.flush()
        return obj
    meta = obj["metadata"]
    for attempt in range(CONFLICT_RETRIES + 1):
        version = meta.get("resourceVersion") if attempt < CONFLICT_RETRIES else None
        try:
            stored = client.patch_status(builder.kind, meta["name"], meta.get("namespace"), changes, version)
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
        fresh = client.get(builder.kind, meta["name"], meta.get("namespace"))
        if fresh is None:  # deleted meanwhile: nothing left to write on
            builder.flush()
            return obj
        now = fresh.get("status") or {}
        if phase_moved(builder, now):  # its transitions are dropped (`rebased`), and so are their deferred Events
            builder.deferred = [e for e in builder.deferred if e not in builder.announced]
        meta, changes = fresh["metadata"], rebased(builder, now)
        if not changes:  # the other writer already wrote the same
            builder.flush()
            return fresh
    builder.flush()
    return stored


def phase_moved(builder: StatusBuilder, now: dict[str, Any]) -> bool:
    """Whether the builder moved the phase and another writer moved it too since the builder read it (`now`)."""
    return "phase" in builder.changes() and now.get("phase") != builder.old.get("phase")


def rebased(builder: StatusBuilder, now: dict[str, Any]) -> dict[str, Any]:
    """The builder's changes laid over the status as it is now: the conditions it set or removed replace or leave
    the current ones of their types, the others stay; its timeline entries follow the current timeline; its phase
    stands only if nobody moved the phase meanwhile; the other fields it changed (each has one writer) are its own."""
    new = builder._wire()
    fields = set(builder.changes())
    # The phase has several writers, each moving it on from the phase it read. When another moved it meanwhile,
    # that later decision stands: this builder's transitions, decided on the older phase, are dropped with their
    # timeline entries (an alert resolved before the reconciler's Triaging went through stays Resolved).
    moved = phase_moved(builder, now)
    if moved:
        fields.discard("phase")
    patch = status_patch(now, {**now, **{k: new.get(k) for k in fields}})
    if "conditions" in patch:
        before = {c["type"]: c for c in builder.old.get("conditions") or []}
        after = {c["type"]: c for c in new.get("conditions") or []}
        touched = {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}
        kept = [c for c in now.get("conditions") or [] if c.get("type") not in touched]
        patch["conditions"] = kept + [after[t] for t in after if t in touched]
    if "timeline" in patch:
        dropped = set(builder.transitions) if moved else set()
        entries = (now.get("timeline") or []) + [e for i, e in enumerate(builder.recorded) if i not in dropped]
        patch["timeline"] = entries[-builder.timeline_limit :] if builder.timeline_limit else entries
    return {k: v for k, v in patch.items() if now.get(k) != v}
