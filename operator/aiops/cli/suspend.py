"""`aiops suspend` and `aiops resume`: the kill switch, fleet-wide or for one cluster (aiops.clusters.suspension)."""

from __future__ import annotations

import getpass
import sys

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.clusters import suspension
from aiops.core import kube
from aiops.core.status import now_utc


def whoami() -> str:
    """The caller as the API server knows them (a SelfSubjectReview), else the local user name."""
    try:
        review = client.AuthenticationV1Api(kube.api_client()).create_self_subject_review(
            client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
        )
        return review.status.user_info.username
    except (ApiException, AttributeError):  # an API server before 1.28, or one that says nothing
        return getpass.getuser()


def _where(cluster: str | None) -> str:
    return f"ManagedCluster {cluster}" if cluster else f"ConfigMap {suspension.CONFIGMAP}"


def suspend(cluster: str | None, reason: str | None, namespace: str) -> int:
    try:
        said = suspension.suspend(cluster, namespace, reason, whoami(), now_utc())
    except ApiException as exc:
        print(f"aiops suspend: {_where(cluster)}: HTTP {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    print(f"{said[0].upper()}{said[1:]}")
    print("From the operator's next pass (within seconds) no SOP action runs and no model call starts.")
    return 0


def resume(cluster: str | None, namespace: str) -> int:
    try:
        lifted = suspension.resume(cluster, namespace)
    except ApiException as exc:
        print(f"aiops resume: {_where(cluster)}: HTTP {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    scope = f"cluster {cluster}" if cluster else "the fleet"
    print(f"resumed {scope}: runbooks go on where they stopped" if lifted else f"{scope} was not suspended")
    return 0
