"""Who is asking, and may they: the API server's own reviews of a Kubernetes identity.

- **TokenReview** resolves a bearer token to the user the API server knows (`aiops mcp`: the caller's token);
- **SubjectAccessReview** asks whether a user (name, groups, extra, as the API server authenticated them)
  may do a verb on an aiops.dev resource: the MCP server's changes, and the admission webhook's check that
  whoever writes an approval holds the custom verb `approve` on incidents.

The operator's own identity needs `create` on tokenreviews / subjectaccessreviews for these.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops import GROUP
from aiops.clusters.words import short
from aiops.core import kube


class Unauthenticated(Exception):
    """No Kubernetes token, or one the API server does not accept; the message says which and what to send."""


class Forbidden(Exception):
    """The reviewed user may not do this; the message names the user, the verb and the resource."""


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)


def _post(api: client.ApiClient, path: str, body: dict) -> dict:
    return json.loads(kube.request(api, "POST", path, body=body))


def review_token(api: client.ApiClient, token: str | None) -> Caller:
    """The user behind a Kubernetes bearer token (TokenReview); Unauthenticated when there is none."""
    if not token:
        raise Unauthenticated(
            "this tool acts for you: send your Kubernetes token in the X-Kubernetes-Token header (HTTP), or start "
            "`aiops mcp` with AIOPS_MCP_KUBE_TOKEN or AIOPS_MCP_KUBE_TOKEN_FILE (stdio)"
        )
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    try:
        status = _post(api, "/apis/authentication.k8s.io/v1/tokenreviews", review).get("status") or {}
    except ApiException as exc:
        raise Unauthenticated(
            f"the TokenReview failed (HTTP {exc.status} {exc.reason}): the server cannot check tokens"
        ) from None
    if not status.get("authenticated"):
        why = short(status.get("error") or "not authenticated", 200)
        raise Unauthenticated(f"the Kubernetes API server does not accept the caller's token ({why})")
    user = status.get("user") or {}
    return Caller(
        user.get("username", ""), user.get("uid", ""), tuple(user.get("groups") or ()), user.get("extra") or {}
    )


def acting_as(api: client.ApiClient, token: str) -> client.ApiClient:
    """A client of the same API server that authenticates with the caller's own bearer token, not ours: what it
    writes, the API server (and its admission webhooks) attribute to the caller."""
    conf = copy.copy(api.configuration)
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    conf.refresh_api_key_hook = None  # an exec plugin of our kubeconfig would put our token back
    conf.cert_file = conf.key_file = conf.username = conf.password = None  # nor our client certificate
    return client.ApiClient(conf)


def authorize(api: client.ApiClient, caller: Caller, verb: str, resource: str, namespace: str, name: str = "") -> None:
    """Forbidden unless the caller may `verb` the aiops.dev `resource` (SubjectAccessReview)."""
    attributes = {"namespace": namespace, "verb": verb, "group": GROUP, "resource": resource, "name": name}
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": caller.username,
            "uid": caller.uid,
            "groups": list(caller.groups),
            "extra": caller.extra,
            "resourceAttributes": {k: v for k, v in attributes.items() if v},
        },
    }
    try:
        status = _post(api, "/apis/authorization.k8s.io/v1/subjectaccessreviews", review).get("status") or {}
    except ApiException as exc:
        raise Forbidden(f"the SubjectAccessReview failed (HTTP {exc.status} {exc.reason}): refused") from None
    if not status.get("allowed"):
        target = f"{resource}.{GROUP} {namespace}/{name}" if name else f"{resource}.{GROUP} in {namespace}"
        reason = f" ({short(status['reason'], 200)})" if status.get("reason") else ""
        raise Forbidden(
            f"{caller.username} may not {verb} {target}{reason}: grant the verb {verb!r} on {resource} "
            f"in group {GROUP} to that user (a Role and RoleBinding)"
        )
