"""What every reconciler shares: spec validation into the models and status building.

A handler parses the body, decides, and records the outcome in a StatusBuilder; the
builder emits an Event and a timeline entry only on a real transition and writes only
the status fields that changed, so running a handler twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ValidationError

from aiops import GROUP, VERSION
from aiops.api import Kind
from aiops.api.common import ConditionStatus, field_path
from aiops.api.conditions import ConditionType, Reason
from aiops.core.status import Emit, StatusBuilder, now_utc

log = logging.getLogger(__name__)

# Names of the objects we own become label values on what we create for them.
MAX_NAME = 63
MISSING_REFERENCE_RETRY_S = 15
MAX_PROBLEM = 1024  # characters of a spec problem in the Ready condition, the phase message and the Event


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


def reject(
    builder: StatusBuilder, kind: Kind, err: InvalidSpec, patch: kopf.Patch | dict, failed_phase: str | None
) -> None:
    """Records bad input on the object and stops: no further work until the spec changes."""
    # A field path holds map keys, which may be of any length; a condition's message may not.
    first = err.problems[0] if len(err.problems[0]) <= MAX_PROBLEM else err.problems[0][:MAX_PROBLEM] + "…"
    message = f"{kind.kind} spec is invalid: {first}"
    if len(err.problems) > 1:
        message += f" (and {len(err.problems) - 1} more)"
    builder.condition(ConditionType.READY, ConditionStatus.FALSE, Reason.INVALID_SPEC, message, event="Warning")
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


def reconciler(kind: Kind, retries: bool = False, executor: Executor | None = None):
    """Registers `reconcile(body, patch, builder)` for creation, every change, and operator restarts; with
    `retries`, `reconcile(body, patch, builder, retry)`: how many times in a row it raised kopf.TemporaryError.
    With `executor`, it runs there instead of in kopf's handler pool: for slow work (embedding a burst of
    runbooks at start) that must not hold up the handlers of the other kinds."""

    def register(reconcile: Callable[..., None]):
        def handler(body: kopf.Body, patch: kopf.Patch, retry: int = 0, **_: Any) -> None:
            builder = StatusBuilder(kind, body, now_utc(), kopf_emitter(body), observe=True, defer=True)
            with unless_namespace_terminating(kind, body, patch):
                reconcile(body, patch, builder, *((retry,) if retries else ()))

        async def elsewhere(body: kopf.Body, patch: kopf.Patch, retry: int = 0, **_: Any) -> None:
            # In kopf's context: kopf.event finds its posting queue in context variables.
            context = contextvars.copy_context()
            await asyncio.get_running_loop().run_in_executor(executor, context.run, handler, body, patch, retry)

        for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
            on(GROUP, VERSION, kind.plural, id="reconcile")(handler if executor is None else elsewhere)
        return reconcile

    return register


@contextmanager
def unless_namespace_terminating(kind: Kind, body: kopf.Body, patch: kopf.Patch | None = None) -> Iterator[None]:
    """Runs a handler's work; a 403 NamespaceTerminating ends it quietly. Nothing can be created there any more and
    the object goes with its namespace: kopf's retry every minute (or a timer's every tick) until then would only
    fill the log with tracebacks. What the handler had staged in `patch` is dropped whole; said once per object."""
    try:
        yield
    except ApiException as exc:
        if not (exc.status == 403 and "NamespaceTerminating" in str(exc.body or "")):
            raise
        if patch is not None:
            patch.clear()
        uid = body["metadata"].get("uid")
        if uid not in _TERMINATING_SAID:
            _TERMINATING_SAID.add(uid)
            log.info("%s %s/%s: its namespace is being deleted; left alone", kind.kind,
                     body["metadata"]["namespace"], body["metadata"]["name"])  # fmt: skip


_TERMINATING_SAID: set[str | None] = set()  # objects already logged: one line each, however often they come back


def wait_for_reference(builder: StatusBuilder, err: MissingReference, patch: kopf.Patch | dict) -> None:
    """Records a dangling reference and retries later (the object may be created after us)."""
    message = f"{err}; retrying every {MISSING_REFERENCE_RETRY_S}s"
    builder.condition(ConditionType.READY, ConditionStatus.FALSE, Reason.MISSING_REFERENCE, message, event="Warning")
    builder.apply(patch)
    raise kopf.TemporaryError(message, delay=MISSING_REFERENCE_RETRY_S)
