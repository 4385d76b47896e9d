"""ManagedCluster reconciler: validate, build a client for the cluster, probe it."""

from __future__ import annotations

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from .. import probe, settings
from ..api import MANAGED_CLUSTER
from ..api.managedcluster import ClusterPhase, ManagedClusterSpec
from ..status import READY, rfc3339
from .common import InvalidSpec, MissingReference, StatusBuilder, reconciler, validated

UNREACHABLE_RETRY_S = 60


def cluster_client(spec: ManagedClusterSpec):
    try:
        return probe.cluster_client(spec, settings.current().namespace)
    except probe.SecretMissing as exc:
        raise MissingReference(str(exc)) from None
    except probe.KubeconfigError as exc:
        raise InvalidSpec([str(exc)]) from None


@reconciler(MANAGED_CLUSTER)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    _, api = validated(MANAGED_CLUSTER, body, patch, builder, resolve=cluster_client)
    try:
        found = probe.probe(api)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        message = f"probe failed: {reason}"
        builder.set(lastProbeTime=rfc3339(builder.now))
        builder.condition(READY, "False", "Unreachable", message, event="Warning")
        builder.phase(ClusterPhase.UNREACHABLE.value, message, event="Warning")
        builder.apply(patch)
        raise kopf.TemporaryError(message, delay=UNREACHABLE_RETRY_S) from exc
    builder.set(**found, lastProbeTime=rfc3339(builder.now))
    summary = (
        f"Kubernetes {found['kubernetesVersion']}, {found['nodeCount']} nodes, {found['gpuInventory']['total']} GPUs"
    )
    builder.condition(READY, "True", "Probed", summary, event="Normal")
    builder.phase(ClusterPhase.READY.value, summary)
    builder.apply(patch)
