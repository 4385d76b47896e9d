"""Leader election over a coordination.k8s.io/v1 Lease: of a shard's replicas one acts, the others wait.

The protocol is client-go's leaderelection, reduced to what one operator needs:
- a candidate takes the Lease when it is missing, released (no holder) or expired; every write carries
  the resourceVersion it read, so of two candidates one wins and the other gets 409 Conflict and waits;
- a Lease is expired when it has not changed for its leaseDurationSeconds as this candidate observed it,
  on its own monotonic clock: nothing depends on the clocks of two nodes agreeing;
- the leader renews every renew_s from a thread of its own; when it has not renewed for lease_s - renew_s
  it ends the process at once (os._exit(1)), so it has stopped acting before any standby may take over,
  and the Deployment restarts it as a standby;
- after a clean stop (SIGTERM) the leader releases the Lease: a rolling update hands over at once.

A standby has not started kopf: no watches, no handlers, no caches. It beats the health heartbeat, so
/healthz and /readyz answer ok (a standby is ready to take over; a not-ready standby would stall rolling
updates and PodDisruptionBudgets). The Service finds the leader by the pod label it sets on itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import Gauge

from aiops import GROUP
from aiops.core import kube
from aiops.core.metrics import REGISTRY
from aiops.observability.server import HEALTH
from aiops.settings import LeaderSettings

log = logging.getLogger(__name__)
LEADER_LABEL = f"{GROUP}/leader"
LEADING = Gauge("aiops_leader", "1 while this replica holds its shard's Lease.", ["lease"], registry=REGISTRY)
# A standby reads the Lease this often, not once per renewal: it dates the leader's last renewal, and notices
# the expiry, within half a second instead of within renew_s each (up to 4 s of failover at the defaults).
STANDBY_POLL_S = 0.5


def micro_time(when: datetime) -> str:
    """A MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Elector:
    def __init__(
        self,
        conf: LeaderSettings,
        namespace: str,
        api: client.ApiClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.conf, self.namespace, self.clock = conf, namespace, clock
        self._api = api
        self._observed: tuple[str | None, float] = (None, 0.0)  # the Lease's resourceVersion, when we saw it change
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    @property
    def leases(self) -> client.CoordinationV1Api:
        return client.CoordinationV1Api(self._api or kube.api_client())

    def _body(self, spec: dict[str, Any], resource_version: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.conf.lease_name, "namespace": self.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def try_acquire(self, timeout: float | None = None) -> bool:
        """One round: take or renew the Lease if we may. True when we hold it afterwards."""
        timeout = timeout or self.conf.renew_s
        now = micro_time(datetime.now(UTC))
        mine = {"holderIdentity": self.conf.identity, "leaseDurationSeconds": self.conf.lease_s, "renewTime": now}
        try:
            lease = self.leases.read_namespaced_lease(self.conf.lease_name, self.namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = self._body({**mine, "acquireTime": now, "leaseTransitions": 0})
            create = self.leases.create_namespaced_lease
            return self._write(lambda: create(self.namespace, body, _request_timeout=timeout))
        rv, spec = lease.metadata.resource_version, lease.spec
        if rv != self._observed[0]:
            self._observed = (rv, self.clock())
        holder = spec.holder_identity
        ours = holder == self.conf.identity
        expired = self.clock() - self._observed[1] >= (spec.lease_duration_seconds or self.conf.lease_s)
        if not (ours or not holder or expired):
            return False
        acquired = micro_time(spec.acquire_time) if ours and spec.acquire_time else now
        transitions = (spec.lease_transitions or 0) + (0 if ours else 1)
        body = self._body({**mine, "acquireTime": acquired, "leaseTransitions": transitions}, rv)
        return self._write(
            lambda: self.leases.replace_namespaced_lease(
                self.conf.lease_name, self.namespace, body, _request_timeout=timeout
            )
        )

    def _write(self, call: Callable[[], client.V1Lease]) -> bool:
        try:
            written = call()
        except ApiException as exc:
            if exc.status == 409:  # another candidate wrote first
                return False
            raise
        self._observed = (written.metadata.resource_version, self.clock())
        return True

    def acquire(self) -> None:
        """Blocks until this replica holds the Lease, then keeps renewing it in a thread."""
        self._label_pod("false")  # a restarted container in a former leader's pod
        where = f"{self.namespace}/{self.conf.lease_name}"
        log.info("leader election: waiting for Lease %s as %s", where, self.conf.identity)
        LEADING.labels(self.conf.lease_name).set(0)
        while True:
            HEALTH.beat = time.monotonic()  # a standby is alive while it waits
            try:
                if self.try_acquire():
                    break
            except Exception as exc:  # noqa: BLE001  (the API server may be away for a while; keep waiting)
                log.warning("leader election: Lease %s not read: %s", where, exc)
            time.sleep(min(STANDBY_POLL_S, self.conf.renew_s))
        log.info("leader election: leading with Lease %s as %s", where, self.conf.identity)
        LEADING.labels(self.conf.lease_name).set(1)
        self._label_pod("true")
        self._keeper = threading.Thread(target=self._keep, name="aiops-leader-renew", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        last = self.clock()  # when the last successful renewal was sent
        while not self._stop.is_set():
            deadline = last + self.conf.lease_s - self.conf.renew_s
            started = self.clock()
            try:
                renewed = self.try_acquire(timeout=max(0.5, min(self.conf.renew_s, deadline - started)))
            except Exception as exc:  # noqa: BLE001  (counted against the deadline below)
                log.warning("leader election: renewal failed: %s", exc)
                renewed = None
            if renewed is False:
                self._abdicate("the Lease was taken by another replica")
            if renewed:
                last = started
            elif self.clock() >= deadline:
                self._abdicate(f"no renewal for {self.clock() - last:.1f}s (lease {self.conf.lease_s}s)")
            self._stop.wait(max(0.0, min(self.conf.renew_s - (self.clock() - started), deadline - self.clock())))

    def _abdicate(self, why: str) -> None:
        """A leader that cannot renew must not keep acting: end the process now, handlers and all."""
        if self._stop.is_set():
            return
        log.critical("leader election: %s; exiting so that a standby takes over", why)
        logging.shutdown()
        os._exit(1)

    def release(self) -> None:
        """After a clean stop: give the Lease up so a standby takes over without waiting for it to expire."""
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=self.conf.renew_s + 1)
        LEADING.labels(self.conf.lease_name).set(0)
        try:
            lease = self.leases.read_namespaced_lease(self.conf.lease_name, self.namespace, _request_timeout=5)
            if lease.spec.holder_identity != self.conf.identity:
                return
            now = micro_time(datetime.now(UTC))
            spec = {"holderIdentity": None, "leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now,
                    "leaseTransitions": lease.spec.lease_transitions or 0}  # fmt: skip
            body = self._body(spec, lease.metadata.resource_version)
            self.leases.replace_namespaced_lease(self.conf.lease_name, self.namespace, body, _request_timeout=5)
            log.info("leader election: released Lease %s/%s", self.namespace, self.conf.lease_name)
        except Exception as exc:  # noqa: BLE001  (it expires on its own)
            log.warning("leader election: Lease not released (it expires in %ss): %s", self.conf.lease_s, exc)
        self._label_pod("false")

    def _label_pod(self, value: str) -> None:
        """The Service selects the leader by this label (the standbys serve nothing but health)."""
        if not self.conf.pod_name:
            return
        body = {"metadata": {"labels": {LEADER_LABEL: value}}}
        try:
            kube.core().patch_namespaced_pod(self.conf.pod_name, self.namespace, body, _request_timeout=5)
        except Exception as exc:  # noqa: BLE001  (leading matters more than being found by the Service)
            log.warning("leader election: pod %s not labelled %s=%s: %s", self.conf.pod_name, LEADER_LABEL, value, exc)
