"""Who may talk to the MCP server, and who is asking for a change.

Two separate checks:

- **The server's bearer token** (HTTP only): every request carries `Authorization: Bearer <AIOPS_MCP_TOKEN>`,
  compared in constant time; without a configured token of 16 characters or more the HTTP transport refuses
  to start. It lets a client in; it says nothing about who the person is.
- **The caller's Kubernetes identity**, for the tools that change something (approve a step, start a run):
  the caller's own Kubernetes token (`X-Kubernetes-Token` header over HTTP; AIOPS_MCP_KUBE_TOKEN or
  AIOPS_MCP_KUBE_TOKEN_FILE for stdio, where the server is the caller's own process) is resolved by a
  TokenReview, then a SubjectAccessReview asks whether that user may do the verb on the resource
  (aiops.clusters.reviews). A run is created by the server's identity with the reviewed username recorded;
  an approval is written with the caller's own token, so that the operator's admission webhook sees the
  approver as the requester; a name the caller supplies is never used.
"""

from __future__ import annotations

import hmac
import json

MIN_TOKEN_CHARS = 16
KUBE_TOKEN_HEADER = "x-kubernetes-token"


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
