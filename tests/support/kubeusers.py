"""Users of different rights on a real kube-apiserver: ServiceAccounts and their tokens (TokenRequest API),
for tests and scripts that act as someone other than the admin (MCP approvals, SubjectAccessReviews)."""

from __future__ import annotations

import json

from kubernetes import client

from aiops.core import kube


def service_account_tokens(api: client.ApiClient, namespace: str, names: tuple[str, ...]) -> dict[str, str]:
    """Creates each ServiceAccount in `namespace` and returns {name: a one-hour bearer token}."""
    tokens = {}
    for name in names:
        kube.request(api, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", body={"metadata": {"name": name}})
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        tokens[name] = json.loads(kube.request(api, "POST", path, body=request))["status"]["token"]
    return tokens
