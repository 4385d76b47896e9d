"""Who may talk to the MCP server, and who is asking for a change.

Two separate checks:

- **The server's bearer token** (HTTP only): every request carries `Authorization: Bearer <AIOPS_MCP_TOKEN>`,
  compared in constant time; without a configured token of 16 characters or more the HTTP transport refuses
  to start. It lets a client in; it says nothing about who the person is.
- **The caller's Kubernetes identity**, for the tools that change something (approve a step, start a run):
  the caller's own Kubernetes token (`X-Kubernetes-Token` header over HTTP; AIOPS_MCP_KUBE_TOKEN or
  AIOPS_MCP_KUBE_TOKEN_FILE for stdio, where the server is the caller's own process) is resolved by a
  TokenReview, then a SubjectAccessReview asks whether that user may do the verb on the resource. The
  change is written by the server's identity, with the reviewed username recorded; a name the caller
  supplies is never used.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops import GROUP
from aiops.clusters.words import short
from aiops.core import kube

MIN_TOKEN_CHARS = 16
KUBE_TOKEN_HEADER = "x-kubernetes-token"


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


def check_bearer(presented: bytes, expected: bytes) -> bool:
    """Whether an `Authorization` header value carries the server's token, in constant time."""
    scheme, _, token = presented.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected)


class BearerGate:
    """ASGI middleware: an HTTP request without the server's bearer token gets 401 and reaches nothing."""

    def __init__(self, app, token: str):
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"the MCP bearer token must have at least {MIN_TOKEN_CHARS} characters")
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not check_bearer(dict(scope["headers"]).get(b"authorization", b""), self.token):
            body = json.dumps(
                {
                    "error": "unauthorized",
                    "error_description": "send Authorization: Bearer <the server's AIOPS_MCP_TOKEN>",
                }
            ).encode()
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="aiops-mcp"')]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
