"""The safe action catalogue: the only cluster changes an SOP can make.

Each action resolves its object (from the step's params, else from the Incident's target and top
suspects), runs the change as a server-side dry run (`dryRun=All`: admission, quota and validation
without persisting), and only if that passes makes it for real. It returns before/after summaries
for the audit. A refused dry run stops there: nothing is changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api.sop import Action, ActionType
from aiops.core.kube import request

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Targets:
    """The objects an action may default to, from the Incident."""

    namespace: str
    deployment: str | None = None
    pod: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class ActionResult:
    target: str
    dry_run: str
    before: str | None
    after: str | None
    outcome: str
    succeeded: bool


class ActionError(Exception):
    """The action could not even be attempted (no object to act on, bad params)."""


def _json(api: client.ApiClient, method: str, path: str, dry_run: bool = False, **kw: Any) -> dict[str, Any]:
    query = {"dryRun": "All"} if dry_run else None
    return json.loads(request(api, method, path, query=query, **kw) or b"{}")


def _images(template: dict[str, Any]) -> str:
    return ", ".join(f"{c['name']}={c.get('image')}" for c in template.get("spec", {}).get("containers", []))


def _param(action: Action, name: str, default: str | None) -> str:
    value = action.params.get(name) or default
    if not value:
        raise ActionError(f"{action.type}: no {name} to act on: set params.{name} or target the Incident at one")
    return value


def _deployment_path(ns: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"


def restart_pod(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    pod = _param(action, "pod", t.pod)
    path = f"/api/v1/namespaces/{t.namespace}/pods/{pod}"
    obj = _json(api, "GET", path)
    owners = [o for o in obj["metadata"].get("ownerReferences", []) if o.get("controller")]
    if not owners:
        raise ActionError(f"restartPod: Pod {pod} has no controller; deleting it would not bring it back")
    restarts = sum(c.get("restartCount", 0) for c in obj.get("status", {}).get("containerStatuses", []))
    _json(api, "DELETE", path, dry_run=dry_run)
    return (
        f"Pod/{t.namespace}/{pod}",
        f"pod uid {obj['metadata']['uid']}, {restarts} restarts",
        f"deleted; {owners[0]['kind']}/{owners[0]['name']} recreates it",
    )


def rollout_restart(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    name = _param(action, "deployment", t.deployment)
    path = _deployment_path(t.namespace, name)
    before = _json(api, "GET", path)["spec"]["template"]["metadata"].get("annotations", {}).get(RESTARTED_AT)
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    _json(api, "PATCH", path, dry_run=dry_run, body=body, content_type=MERGE)
    return f"Deployment/{t.namespace}/{name}", f"{RESTARTED_AT}={before}", f"{RESTARTED_AT}={stamp}"


@dataclass(frozen=True)
class Rollback:
    """Where a rollback goes: the Deployment as it is, and the template of the revision to go back to."""

    name: str
    deployment: dict[str, Any]
    current: int
    revision: int
    replicaset: str
    template: dict[str, Any]


def rollback_target(api, action: Action, t: Targets) -> Rollback:
    """The previous revision's ReplicaSet (or params.revision's), as `kubectl rollout undo` picks it."""
    name = _param(action, "deployment", t.deployment)
    dep = _json(api, "GET", _deployment_path(t.namespace, name))
    uid = dep["metadata"]["uid"]
    rsets = _json(api, "GET", f"/apis/apps/v1/namespaces/{t.namespace}/replicasets")["items"]
    owned = [rs for rs in rsets if any(o.get("uid") == uid for o in rs["metadata"].get("ownerReferences", []))]
    revisions = sorted(
        ((int(rs["metadata"].get("annotations", {}).get(REVISION, 0)), rs) for rs in owned), key=lambda r: r[0]
    )
    current = int(dep["metadata"].get("annotations", {}).get(REVISION, revisions[-1][0] if revisions else 0))
    wanted = action.params.get("revision")
    older = [(n, rs) for n, rs in revisions if (n == int(wanted) if wanted else n < current)]
    if not older:
        which = f"revision {wanted}" if wanted else f"a revision before {current}"
        raise ActionError(f"rollbackDeployment: Deployment {name} has no ReplicaSet with {which}")
    revision, rs = older[-1]
    template = json.loads(json.dumps(rs["spec"]["template"]))
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    return Rollback(name, dep, current, revision, rs["metadata"]["name"], template)


def rollback_deployment(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    """What `kubectl rollout undo` does: the template of the previous revision's ReplicaSet, without its
    pod-template-hash label, replaces the Deployment's template."""
    back = rollback_target(api, action, t)
    body = [{"op": "replace", "path": "/spec/template", "value": back.template}]
    _json(api, "PATCH", _deployment_path(t.namespace, back.name), dry_run=dry_run, body=body, content_type=JSON_PATCH)
    return (
        f"Deployment/{t.namespace}/{back.name}",
        f"revision {back.current}: {_images(back.deployment['spec']['template'])}",
        f"template of revision {back.revision} (ReplicaSet {back.replicaset}): {_images(back.template)}",
    )


def scale_deployment(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    name = _param(action, "deployment", t.deployment)
    raw = _param(action, "replicas", None)
    if not raw.isdigit():
        raise ActionError(f"scaleDeployment: params.replicas must be a whole number, not {raw!r}")
    path = f"{_deployment_path(t.namespace, name)}/scale"
    before = _json(api, "GET", path)["spec"].get("replicas")
    _json(api, "PATCH", path, dry_run=dry_run, body={"spec": {"replicas": int(raw)}}, content_type=MERGE)
    return f"Deployment/{t.namespace}/{name}", f"replicas={before}", f"replicas={raw}"


RESOURCE_PARAMS = ("limits.cpu", "limits.memory", "requests.cpu", "requests.memory")


def resource_changes(action: Action) -> dict[str, dict[str, str]]:
    """setResources' params as {"limits": {"memory": "512Mi"}, "requests": {...}}."""
    unknown = sorted(set(action.params) - {*RESOURCE_PARAMS, "container", "deployment"})
    if unknown:
        raise ActionError(f"setResources: params.{unknown[0]} is not one of {', '.join(RESOURCE_PARAMS)}")
    changes: dict[str, dict[str, str]] = {}
    for key in RESOURCE_PARAMS:
        if value := action.params.get(key):
            kind, resource = key.split(".")
            changes.setdefault(kind, {})[resource] = value
    if not changes:
        raise ActionError(f"setResources: give at least one of params.{', params.'.join(RESOURCE_PARAMS)}")
    return changes


def container_name(action: Action, template: dict[str, Any], deployment: str) -> str:
    """params.container, or the pod's only container."""
    names = [c["name"] for c in template.get("spec", {}).get("containers", [])]
    wanted = action.params.get("container") or (names[0] if len(names) == 1 else None)
    if wanted not in names:
        which = f"has no container {wanted!r}" if wanted else "has several containers: set params.container"
        raise ActionError(f"setResources: Deployment {deployment} {which} (containers: {', '.join(names)})")
    return wanted


def set_resources(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    """Limits and requests of one container; those not named stay as they are (a strategic merge patch)."""
    name = _param(action, "deployment", t.deployment)
    changes = resource_changes(action)
    path = _deployment_path(t.namespace, name)
    template = _json(api, "GET", path)["spec"]["template"]
    container = container_name(action, template, name)
    before = next(c for c in template["spec"]["containers"] if c["name"] == container).get("resources") or {}
    body = {"spec": {"template": {"spec": {"containers": [{"name": container, "resources": changes}]}}}}
    _json(api, "PATCH", path, dry_run=dry_run, body=body, content_type=STRATEGIC_MERGE)
    after = {kind: {**before.get(kind, {}), **values} for kind, values in changes.items()}
    return (
        f"Deployment/{t.namespace}/{name}",
        f"{container}: {json.dumps(before, sort_keys=True)}",
        f"{container}: {json.dumps({**before, **after}, sort_keys=True)}",
    )


def cordon_node(api, action: Action, t: Targets, dry_run: bool) -> tuple[str, str, str]:
    node = _param(action, "node", t.node)
    path = f"/api/v1/nodes/{node}"
    before = bool(_json(api, "GET", path)["spec"].get("unschedulable"))
    _json(api, "PATCH", path, dry_run=dry_run, body={"spec": {"unschedulable": True}}, content_type=MERGE)
    return f"Node/{node}", f"unschedulable={before}", "unschedulable=True"


CATALOGUE: dict[ActionType, Callable[..., tuple[str, str, str]]] = {
    ActionType.RESTART_POD: restart_pod,
    ActionType.ROLLOUT_RESTART: rollout_restart,
    ActionType.ROLLBACK_DEPLOYMENT: rollback_deployment,
    ActionType.SCALE_DEPLOYMENT: scale_deployment,
    ActionType.CORDON_NODE: cordon_node,
    ActionType.SET_RESOURCES: set_resources,
}


def subject(action: Action, t: Targets) -> tuple[str, str]:
    """The object the action changes: (Kind/namespace/name, the API path its snapshot is read from and
    restored to). The scale subresource for scaleDeployment, which the chart grants on its own."""
    if action.type == ActionType.RESTART_POD:
        pod = _param(action, "pod", t.pod)
        return f"Pod/{t.namespace}/{pod}", f"/api/v1/namespaces/{t.namespace}/pods/{pod}"
    if action.type == ActionType.CORDON_NODE:
        node = _param(action, "node", t.node)
        return f"Node/{node}", f"/api/v1/nodes/{node}"
    name = _param(action, "deployment", t.deployment)
    path = _deployment_path(t.namespace, name)
    return f"Deployment/{t.namespace}/{name}", f"{path}/scale" if action.type == ActionType.SCALE_DEPLOYMENT else path


def refusal(exc: ApiException) -> str:
    try:
        return f"HTTP {exc.status}: {json.loads(exc.body)['message']}"[:900]
    except (TypeError, ValueError, KeyError):
        return f"HTTP {exc.status} {exc.reason}"


def run(api: client.ApiClient, action: Action, targets: Targets) -> ActionResult:
    """Dry run, then the change. Never raises for the cluster's refusals: they are the result."""
    do = CATALOGUE[action.type]
    try:
        target, before, _ = do(api, action, targets, True)
    except ActionError as exc:
        return ActionResult("-", f"not attempted: {exc}", None, None, str(exc), False)
    except ApiException as exc:
        why = refusal(exc)
        return ActionResult("-", f"refused: {why}", None, None, f"dry run refused, nothing changed: {why}", False)
    try:
        target, before, after = do(api, action, targets, False)
    except (ActionError, ApiException) as exc:
        reason = refusal(exc) if isinstance(exc, ApiException) else str(exc)
        return ActionResult(target, "passed", before, None, f"failed after a passing dry run: {reason}", False)
    return ActionResult(target, "passed", before, after, "done", True)
