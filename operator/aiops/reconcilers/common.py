"""What every reconciler shares: spec validation into the models and status building.

A handler parses the body, decides, and records the outcome in a StatusBuilder; the
builder emits an Event and a timeline entry only on a real transition and writes only
the status fields that changed, so running a handler twice changes nothing the second time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from .. import GROUP, VERSION
from ..api import Kind
from ..api.common import field_path
from ..status import READY, append_timeline, find_condition, now_utc, set_condition, status_patch

# Names of the objects we own become label values on what we create for them.
MAX_NAME = 63
INVALID_SPEC = "InvalidSpec"
MISSING_REFERENCE = "MissingReference"
MISSING_REFERENCE_RETRY_S = 15

Emit = Callable[[str, str, str], None]  # (type, reason, message)


class InvalidSpec(Exception):
    """Bad input: the first problem names its field; `problems` lists all of them."""

    def __init__(self, problems: list[str]):
        super().__init__(problems[0])
        self.problems = problems


class MissingReference(Exception):
    """A reference names an object that does not exist (yet)."""


def _describe(error: dict[str, Any], root: str) -> str:
    path = field_path((root, *error["loc"]))
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    # Model-level validators name the sub-field themselves ("steps[2].onSuccess: ...").
    head, sep, rest = msg.partition(": ")
    if sep and " " not in head:
        return f"{path}.{head}: {rest}"
    return f"{path}: {msg}"


def parse_spec(kind: Kind, body: kopf.Body | dict[str, Any]) -> BaseModel:
    name = body["metadata"]["name"]
    if len(name) > MAX_NAME:
        raise InvalidSpec(
            [
                f"metadata.name: {len(name)} characters; at most {MAX_NAME} are allowed, "
                "since the name becomes a label value on the objects created for it"
            ]
        )
    try:
        return kind.spec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        raise InvalidSpec([_describe(e, "spec") for e in exc.errors()]) from None


def kopf_emitter(body: kopf.Body) -> Emit:
    return lambda type_, reason, message: kopf.event(body, type=type_, reason=reason, message=message)


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

    def apply(self, patch: kopf.Patch | dict) -> dict[str, Any]:
        changes = status_patch(self.old, self.new)
        if changes:
            patch.setdefault("status", {})
            patch["status"].update(changes)
        return changes


def reject(
    builder: StatusBuilder, kind: Kind, err: InvalidSpec, patch: kopf.Patch | dict, failed_phase: str | None
) -> None:
    """Records bad input on the object and stops: no further work until the spec changes."""
    message = f"{kind.kind} spec is invalid: {err.problems[0]}"
    if len(err.problems) > 1:
        message += f" (and {len(err.problems) - 1} more)"
    builder.condition(READY, "False", INVALID_SPEC, message, event="Warning")
    if failed_phase:
        builder.phase(failed_phase, message, event="Warning")
    builder.apply(patch)
    raise kopf.PermanentError(message)


R = TypeVar("R")


def validated(
    kind: Kind,
    body: Any,
    patch: kopf.Patch | dict,
    builder: StatusBuilder,
    failed_phase: str | None = None,
    resolve: Callable[[Any], R] | None = None,
) -> tuple[Any, R | None]:
    """The parsed spec and what `resolve` found for it (referenced objects, a client).

    Bad input ends the handler through `reject`; a dangling reference through `wait_for_reference`.
    """
    try:
        spec = parse_spec(kind, body)
        return spec, resolve(spec) if resolve else None
    except InvalidSpec as err:
        reject(builder, kind, err, patch, failed_phase)
    except MissingReference as err:
        wait_for_reference(builder, err, patch)
    raise AssertionError("unreachable: reject and wait_for_reference raise")


def reconciler(kind: Kind, timeline_limit: int | None = None):
    """Registers `reconcile(body, patch, builder)` for creation, every change, and operator restarts."""

    def register(reconcile: Callable[[Any, Any, StatusBuilder], None]):
        def handler(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
            reconcile(body, patch, StatusBuilder(body, now_utc(), kopf_emitter(body), timeline_limit))

        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(GROUP, VERSION, kind.plural, id="reconcile")(handler)
        return reconcile

    return register


def wait_for_reference(builder: StatusBuilder, err: MissingReference, patch: kopf.Patch | dict) -> None:
    """Records a dangling reference and retries later (the object may be created after us)."""
    message = f"{err}; retrying every {MISSING_REFERENCE_RETRY_S}s"
    builder.condition(READY, "False", MISSING_REFERENCE, message, event="Warning")
    builder.apply(patch)
    raise kopf.TemporaryError(message, delay=MISSING_REFERENCE_RETRY_S)
