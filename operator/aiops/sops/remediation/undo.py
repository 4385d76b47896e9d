"""Snapshots of what an SOP action changes, and putting them back.

Each action type changes known fields of one object (FIELDS): a Deployment's pod template (rolloutRestart,
rollbackDeployment, setResources), its replicas through the scale subresource (scaleDeployment), a Node's
`unschedulable` (cordonNode). Before the action those fields are read as JSON (the snapshot); after it, read
again. `restore` writes the snapshot back with one JSON patch whose `test` operations first require every
field to still hold what the action left, so a change someone made since is never overwritten; as a
server-side dry run first. Reading the fields tells whether an undo was already made: it is never made twice.

A deleted pod (restartPod) cannot be put back, as its controller made a new one: its snapshot is the pod's
uid, and its undo says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api.incident import Change, FieldSnapshot
from aiops.api.sop import Action, ActionType
from aiops.core.kube import request
from aiops.sops.remediation import actions

FIELDS: dict[ActionType, tuple[str, ...]] = {
    ActionType.ROLLOUT_RESTART: ("/spec/template",),
    ActionType.ROLLBACK_DEPLOYMENT: ("/spec/template",),
    ActionType.SET_RESOURCES: ("/spec/template",),
    ActionType.SCALE_DEPLOYMENT: ("/spec/replicas",),
    ActionType.CORDON_NODE: ("/spec/unschedulable",),
    ActionType.RESTART_POD: ("/metadata/uid",),  # which pod was deleted: not restorable
}
IRREVERSIBLE = frozenset({ActionType.RESTART_POD})
UNDONE = "undone"  # how a successful undo's outcome begins


@dataclass(frozen=True)
class UndoResult:
    dry_run: str
    outcome: str
    succeeded: bool


def _at(obj: Any, pointer: str) -> Any:
    for key in pointer.strip("/").split("/"):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _encode(value: Any) -> str | None:
    """Canonical JSON (sorted keys), so that equal values compare equal as text; None for an unset field."""
    return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def read(api: client.ApiClient, path: str, pointers: list[str] | tuple[str, ...]) -> list[str | None]:
    """The fields as canonical JSON; all None when the object no longer exists."""
    try:
        obj = json.loads(request(api, "GET", path) or b"{}")
    except ApiException as exc:
        if exc.status == 404:
            return [None for _ in pointers]
        raise
    return [_encode(_at(obj, p)) for p in pointers]


def snapshot(api: client.ApiClient, action: Action, targets: actions.Targets) -> tuple[str, str, list[FieldSnapshot]]:
    """(target, API path, fields before the change). Raises ActionError for an action with no object to act on,
    ApiException when the object cannot be read (a missing one included: there is nothing to change)."""
    target, path = actions.subject(action, targets)
    pointers = FIELDS[action.type]
    obj = json.loads(request(api, "GET", path) or b"{}")
    return target, path, [FieldSnapshot(path=p, before=_encode(_at(obj, p))) for p in pointers]


def current(api: client.ApiClient, change: Change) -> list[str | None]:
    return read(api, change.path, [f.path for f in change.fields])


def restore(api: client.ApiClient, change: Change, action: ActionType) -> UndoResult:
    """Puts the snapshot back, dry run first; never raises for the cluster's refusals: they are the result."""
    if action in IRREVERSIBLE:
        why = f"{change.target} was deleted and its controller made a new pod: a restart has no undo"
        return UndoResult("not attempted", why, False)
    befores, afters = [f.before for f in change.fields], [f.after for f in change.fields]
    try:
        now = current(api, change)
    except ApiException as exc:
        return UndoResult("not attempted", f"cannot read {change.target}: {actions.refusal(exc)}", False)
    if now == befores:
        return UndoResult("not needed", f"{UNDONE} already: it holds the snapshot, nothing written", True)
    if now != afters:
        changed = ", ".join(f.path for f, value in zip(change.fields, now, strict=True) if value != f.after)
        return UndoResult(
            "not attempted",
            f"{change.target} changed again after the action ({changed}): not overwritten; put it back by hand "
            "if the change must go",
            False,
        )
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": f.path, "value": json.loads(f.after)} for f in change.fields if f.after is not None
    ]
    for f in change.fields:
        if f.before is None:
            ops.append({"op": "remove", "path": f.path})
        elif f.before != f.after:
            ops.append({"op": "add", "path": f.path, "value": json.loads(f.before)})  # add replaces a member
    try:
        request(api, "PATCH", change.path, query={"dryRun": "All"}, body=ops, content_type=actions.JSON_PATCH)
    except ApiException as exc:
        why = actions.refusal(exc)
        return UndoResult(f"refused: {why}", f"undo dry run refused, nothing changed: {why}", False)
    try:
        request(api, "PATCH", change.path, body=ops, content_type=actions.JSON_PATCH)
    except ApiException as exc:
        return UndoResult("passed", f"undo failed after a passing dry run: {actions.refusal(exc)}", False)
    return UndoResult("passed", f"{UNDONE}: the snapshot is restored", True)
