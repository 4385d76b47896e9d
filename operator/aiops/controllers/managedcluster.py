"""ManagedCluster reconciler: validate, build a client for the cluster, probe it, and keep probing.

The create/update/resume handler validates the spec and runs the first probe; a kopf timer probes
every $AIOPS_CLUSTER_PROBE_INTERVAL_S seconds after that. The timer is the only retry loop: a
cluster that is down, a rejected token or a broken kubeconfig is recorded in status and looked at
again on the next tick (the Secret may have been fixed meanwhile), never retried in a tight loop.

Conditions: Ready (Probed | Degraded | Unreachable | Unauthorized | Forbidden | TLSError |
InvalidSpec | MissingReference), APIServerReachable, NodesReady, and <Endpoint>Reachable for each
configured Prometheus / Alertmanager / Loki / Tempo. Events and bus events only on transitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from aiops import GROUP, VERSION, settings
from aiops.api import MANAGED_CLUSTER
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.managedcluster import ClusterPhase, ManagedClusterStatus
from aiops.clusters import gpufleet, probe
from aiops.controllers.common import (
    MISSING_REFERENCE_RETRY_S,
    InvalidSpec,
    kopf_emitter,
    parse_spec,
    reconciler,
    reject,
)
from aiops.core.events import EventType, publish
from aiops.core.status import StatusBuilder, now_utc
from aiops.stores import history

ENDPOINT_CONDITIONS = tuple(f"{title}Reachable" for title in probe.TITLES.values())
PROBE_INTERVAL_S = settings.current().cluster_probe_interval_s


# When each cluster was last probed (monotonic), and which probes are under way: the timer skips a tick that
# would race another probe of the same cluster (kopf starts the timer as soon as it sees the object, before the
# change handler's patch lands; a probe may take longer than the interval). Two probes from the same stale
# status would each announce the same change.
_last_probe: dict[str, float] = {}
_probing: set[str] = set()
_last_probe_lock = threading.Lock()


@contextmanager
def _claim(name: str, force: bool) -> Iterator[bool]:
    """Yields whether to probe now; the change handler (force) always does."""
    with _last_probe_lock:
        last = _last_probe.get(name)
        busy = name in _probing or (last is not None and time.monotonic() - last < PROBE_INTERVAL_S / 2)
        claimed = force or not busy
        if claimed:
            _probing.add(name)
    try:
        yield claimed
    finally:
        if claimed:
            with _last_probe_lock:
                _probing.discard(name)
                _last_probe[name] = time.monotonic()


def _set(builder: StatusBuilder, type_: str, ok: bool, reason: str, message: str, quiet: bool = False) -> None:
    """A sub-condition: a Warning Event when it goes False, a Normal one when it recovers (unless quiet:
    the API server's reachability is told by the Ready condition's Event already)."""
    before = builder.find(type_)
    if quiet:
        event = None
    elif ok:
        event = "Normal" if before and before.status == ConditionStatus.FALSE else None
    else:
        event = "Warning"
    builder.condition(type_, ConditionStatus.TRUE if ok else ConditionStatus.FALSE, reason, message, event=event)


def _drop_conditions(builder: StatusBuilder, keep: set[str]) -> None:
    """Removes endpoint conditions for endpoints no longer configured."""
    builder.status.conditions = [
        c for c in builder.status.conditions if c.type not in ENDPOINT_CONDITIONS or c.type in keep
    ]


def _publish(name: str, body: Any, builder: StatusBuilder, reason: str, message: str) -> None:
    old, new = builder.old, builder.status.wire()
    if old.get("phase") != new.get("phase"):
        publish(
            EventType.CLUSTER_STATUS_CHANGED,
            name,
            {
                "cluster": name,
                "phase": new.get("phase"),
                "previousPhase": old.get("phase"),
                "reason": reason,
                "message": message,
                "kubernetesVersion": new.get("kubernetesVersion"),
                "nodeCount": new.get("nodeCount"),
            },
            body,
        )
    if new.get("gpuInventory") is not None and old.get("gpuInventory") != new.get("gpuInventory"):
        previous = (old.get("gpuInventory") or {}).get("total")
        publish(EventType.GPU_UPDATE, name, {"cluster": name, "previousTotal": previous, **new["gpuInventory"]}, body)


def _record(body: Any, builder: StatusBuilder, phase: str, ready: str, reason: str, message: str) -> None:
    event = "Normal" if ready == ConditionStatus.TRUE else "Warning"
    builder.condition(ConditionType.READY, ready, reason, message, event=event)
    builder.phase(phase, message, event=None)  # the Ready condition's Event tells the story once
    builder.status.last_probe_time = builder.now
    _publish(body["metadata"]["name"], body, builder, reason, message)


def _gpu_telemetry(body: Any, builder: StatusBuilder, spec: Any, namespace: str, checks: list) -> None:
    """status.gpuTelemetry from the cluster's Prometheus; kept as it was when Prometheus is not ready."""
    endpoint = gpufleet.prometheus_for(spec, settings.current().prometheus_url)
    if endpoint is None:
        return
    if any(c.name == "prometheus" and not c.ok for c in checks):
        return  # PrometheusReachable=False says why; the last summary stays
    try:
        token = probe.endpoint_token(endpoint, namespace)
    except (probe.SecretMissing, probe.ApiException):
        return
    found = gpufleet.observe(endpoint, token, builder.now)
    gpufleet.record(builder, body["metadata"]["name"], body, found)


def probe_and_record(body: Any, patch: kopf.Patch | dict, builder: StatusBuilder, first: bool) -> None:
    """One probe, recorded in status. `first`: the change handler (which may stop on bad input or wait
    for a missing Secret through kopf); otherwise the timer, which never raises for expected failures."""
    try:
        spec = parse_spec(MANAGED_CLUSTER, body)
    except InvalidSpec as err:
        if first:
            reject(builder, MANAGED_CLUSTER, err, patch, None)
        return  # the change handler said so; nothing to probe until the spec changes
    namespace = settings.current().namespace
    try:
        result = probe.probe_cluster(spec, namespace)
    except probe.SecretMissing as exc:
        message = f"{exc}; retrying every {MISSING_REFERENCE_RETRY_S if first else PROBE_INTERVAL_S}s"
        builder.condition(
            ConditionType.READY, ConditionStatus.FALSE, Reason.MISSING_REFERENCE, message, event="Warning"
        )
        builder.status.last_probe_time = builder.now
        builder.apply(patch)
        if first:
            raise kopf.TemporaryError(message, delay=MISSING_REFERENCE_RETRY_S) from None
        return
    except probe.KubeconfigError as exc:
        message = f"{exc}; fix the Secret: it is read again every {PROBE_INTERVAL_S}s"
        _set(builder, ConditionType.API_SERVER_REACHABLE, False, Reason.INVALID_KUBECONFIG, message, quiet=True)
        _record(body, builder, ClusterPhase.UNREACHABLE, ConditionStatus.FALSE, Reason.INVALID_SPEC, message)
        builder.apply(patch)
        return

    if result.error is not None:
        _set(builder, ConditionType.API_SERVER_REACHABLE, False, result.error.reason, result.error.message, quiet=True)
        if builder.find(ConditionType.NODES_READY):
            builder.condition(
                ConditionType.NODES_READY, ConditionStatus.UNKNOWN, Reason.API_SERVER_UNREACHABLE,
                "nodes cannot be listed",
            )  # fmt: skip
    else:
        f = result.fields
        found = ManagedClusterStatus.model_validate(f)
        for name in found.model_fields_set:
            setattr(builder.status, name, getattr(found, name))
        if "openshiftVersion" not in f:
            builder.status.openshift_version = None
        answered = f"the API server answered: Kubernetes {f['kubernetesVersion']}"
        _set(builder, ConditionType.API_SERVER_REACHABLE, True, Reason.REACHABLE, answered, quiet=True)
        if result.not_ready:
            names = ", ".join(result.not_ready[:10]) + (" ..." if len(result.not_ready) > 10 else "")
            _set(
                builder,
                ConditionType.NODES_READY,
                False,
                Reason.NODES_NOT_READY,
                f"{len(result.not_ready)} of {f['nodeCount']} nodes NotReady: {names}",
            )
        else:
            _set(
                builder,
                ConditionType.NODES_READY,
                True,
                Reason.ALL_NODES_READY,
                f"{f['nodeCount']} of {f['nodeCount']} nodes Ready",
            )
    for check in result.endpoints:
        _set(builder, check.condition_type, check.ok, check.reason, check.message)
    _drop_conditions(builder, {c.condition_type for c in result.endpoints})
    _gpu_telemetry(body, builder, spec, namespace, result.endpoints)
    if spec.kubeconfig_secret_ref is None:  # the cluster the operator runs in: say whether history is kept
        recording, why = history.status()
        reason = Reason.RECORDING if recording else Reason.OFF if why.startswith("history is off") else Reason.FAILING
        _set(builder, ConditionType.HISTORY_RECORDED, recording, reason, why, quiet=True)
    if result.error is None:
        reachable = sorted(c.name for c in result.endpoints if c.ok)
        builder.status.capabilities = sorted(set(result.fields["capabilities"]) | set(reachable))
    v = probe.verdict(result)
    _record(body, builder, v.phase, v.ready, v.reason, v.message)
    builder.apply(patch)


@reconciler(MANAGED_CLUSTER)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    with _claim(body["metadata"]["name"], force=True):
        probe_and_record(body, patch, builder, first=True)


@kopf.timer(
    GROUP,
    VERSION,
    MANAGED_CLUSTER.plural,
    id="probe",
    interval=PROBE_INTERVAL_S,
    initial_delay=PROBE_INTERVAL_S,  # the change handler runs the first probe
)
def periodic_probe(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    with _claim(body["metadata"]["name"], force=False) as claimed:
        if not claimed:
            return
        probe_and_record(
            body, patch, StatusBuilder(MANAGED_CLUSTER, body, now_utc(), kopf_emitter(body), observe=True), first=False
        )
