"""Claims on AnalysisRuns for `aiops worker`: one coordination.k8s.io/v1 Lease per run, in the run's namespace.

The protocol, the one Kubernetes' own leader election uses, per run:
- claim: create Lease `aiops-run-<run uid>` (holderIdentity = the worker, leaseDurationSeconds, renewTime).
  The API server lets one create win; the others get 409 and leave the run to the holder.
- renew: every third of the duration, a PUT with the resourceVersion last written. 409 or 404 means the
  lease was taken over or deleted: the claim is lost.
- expiry: a lease is expired when this process has seen the same resourceVersion for longer than its
  leaseDurationSeconds (measured on our own monotonic clock, never by comparing another node's renewTime
  with ours). Taking it over is a PUT conditional on that resourceVersion, so of two takers one wins.
- fence: right before an outcome is written the holder renews once more; only a renew that succeeds lets
  the write happen (a renew that keeps failing to reach the API server is retried while the lease still
  holds). A worker that lost its lease abandons the run without writing. After a successful fence nobody
  can take the lease over for a full duration, ample time for the writes that follow.
- release: delete the lease, conditional on our resourceVersion, once the outcome is written (or when a
  draining worker gives a run up). The run's next reader sees the outcome before anyone can claim again.

The Lease has an ownerReference to its run, so Kubernetes' garbage collector removes one a worker left.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops import API_VERSION
from aiops.api import ANALYSIS_RUN
from aiops.core import kube
from aiops.core.status import now_utc, parse_time

log = logging.getLogger(__name__)
PREFIX = "aiops-run-"
BASE = "/apis/coordination.k8s.io/v1"
RUN_LABEL = "aiops.dev/analysis-run"  # the run's name; also what the worker's sweep selects leases by
FENCE_RETRY_S = 0.5


class LeaseUnavailable(Exception):
    """The lease API refused (401, 403, 5xx) or could not be reached: the worker stops claiming."""


@dataclass
class Claim:
    """A lease this process holds on one run."""

    run: str
    uid: str
    body: dict[str, Any]  # the Lease as last written, resourceVersion included
    valid_until: float  # monotonic: nobody may take it over before then
    fenced: bool = False  # the outcome is being written: the lease is not given up any more
    lost: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def namespace(self) -> str:
        return self.body["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]


def lease_name(uid: str) -> str:
    return PREFIX + uid


def run_uid(lease: dict[str, Any]) -> str | None:
    name = lease["metadata"]["name"]
    return name.removeprefix(PREFIX) if name.startswith(PREFIX) else None


def rfc3339_micro(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # a Lease's times are MicroTime


def live(lease: dict[str, Any], now: datetime) -> bool:
    """Held, judged by renewTime on our clock: good enough for a metric (claims never use this)."""
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime"))
    if not spec.get("holderIdentity") or renewed is None:
        return False
    return (now - renewed).total_seconds() <= (spec.get("leaseDurationSeconds") or 0)


def backlog(claimable: Iterable[dict[str, Any]], leases: Iterable[dict[str, Any]], now: datetime) -> tuple[int, int]:
    """(queued, claimed) among claimable runs: those no live lease holds, and those one does."""
    held = {run_uid(lease) for lease in leases if live(lease, now)}
    queued = claimed = 0
    for run in claimable:
        if run["metadata"]["uid"] in held:
            claimed += 1
        else:
            queued += 1
    return queued, claimed


class LeaseApi:
    """The coordination.k8s.io/v1 Lease calls, as raw JSON: the typed client round-trips a body through its
    models and writes renewTime without the microseconds a MicroTime must have."""

    def __init__(self, api: client.ApiClient | None = None):
        self.api = api

    def _call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> dict[str, Any]:
        return json.loads(kube.request(self.api or kube.api_client(), method, path, query, body) or b"{}")

    def create_namespaced_lease(self, namespace: str, body: dict) -> dict:
        return self._call("POST", f"{BASE}/namespaces/{namespace}/leases", body)

    def read_namespaced_lease(self, name: str, namespace: str) -> dict:
        return self._call("GET", f"{BASE}/namespaces/{namespace}/leases/{name}")

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict) -> dict:
        return self._call("PUT", f"{BASE}/namespaces/{namespace}/leases/{name}", body)

    def delete_namespaced_lease(self, name: str, namespace: str, body: dict) -> dict:
        return self._call("DELETE", f"{BASE}/namespaces/{namespace}/leases/{name}", body)

    def list_namespaced_lease(self, namespace: str, label_selector: str) -> dict:
        return self._call("GET", f"{BASE}/namespaces/{namespace}/leases", query={"labelSelector": label_selector})

    def list_lease_for_all_namespaces(self, label_selector: str) -> dict:
        return self._call("GET", f"{BASE}/leases", query={"labelSelector": label_selector})


class Leases:
    """Claims, renewals, fences and releases of one worker (`holder`), with its observations of others' leases."""

    def __init__(
        self,
        holder: str,
        duration_s: int,
        api: LeaseApi | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = now_utc,
    ):
        self.holder, self.duration_s = holder, duration_s
        self._api = api
        self._clock, self._now = clock, now
        self._seen: dict[tuple[str, str], tuple[str, float]] = {}  # (namespace, name) -> (resourceVersion, first seen)
        self._seen_lock = threading.Lock()

    @property
    def api(self) -> LeaseApi:
        return self._api or LeaseApi()

    def claim(self, run: dict[str, Any]) -> Claim | None:
        """The run's lease, created or taken over once expired; None while another holds it."""
        meta = run["metadata"]
        namespace, name = meta["namespace"], lease_name(meta["uid"])
        start = self._clock()
        try:
            created = self.api.create_namespaced_lease(namespace, self._body(run))
            return self._claimed(run, created, start)
        except ApiException as exc:
            if exc.status != 409:
                raise _unavailable(exc, namespace) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(exc, namespace) from None
        current = _call(namespace, self.api.read_namespaced_lease, name, namespace)
        if current is None or not self.expired(current):
            return None
        rv = current["metadata"]["resourceVersion"]
        transitions = (current.get("spec") or {}).get("leaseTransitions") or 0
        start = self._clock()
        body = self._body(run, resource_version=rv, transitions=transitions + 1)
        taken = _call(namespace, self.api.replace_namespaced_lease, name, namespace, body)
        if taken is None:
            return None
        holder = (current.get("spec") or {}).get("holderIdentity")
        log.info("took over the expired lease of AnalysisRun %s/%s from %s", namespace, meta["name"], holder)
        return self._claimed(run, taken, start)

    def renew(self, claim: Claim) -> bool:
        """One renewal; False when the claim is lost. LeaseUnavailable when the API did not answer."""
        with claim.lock:
            if claim.lost:
                return False
            body = dict(claim.body, spec=dict(claim.body["spec"], renewTime=rfc3339_micro(self._now())))
            start = self._clock()
            renewed = _call(claim.namespace, self.api.replace_namespaced_lease, claim.name, claim.namespace, body)
            if renewed is None:
                claim.lost = True
                return False
            claim.body, claim.valid_until = renewed, start + self.duration_s
            return True

    def fence(self, claim: Claim) -> bool:
        """Renews right before an outcome is written: True lets the write go ahead, and the lease is then kept
        until release. Transient failures are retried while the lease still holds."""
        while True:
            try:
                if not self.renew(claim):
                    return False
                if self._clock() > claim.valid_until - self.duration_s / 2:
                    claim.lost = True  # the answer came so late that the writes might outlast the lease: let it lapse
                    return False
                claim.fenced = True
                return True
            except LeaseUnavailable:
                if self._clock() + FENCE_RETRY_S >= claim.valid_until:
                    claim.lost = True  # it lapses on its own; whoever takes it over runs the analysis again
                    return False
                time.sleep(FENCE_RETRY_S)

    def release(self, claim: Claim, unless_fenced: bool = False) -> bool:
        """Deletes the lease (conditional on our resourceVersion); with `unless_fenced`, not once the
        outcome is being written. True when released."""
        with claim.lock:
            if claim.lost or (unless_fenced and claim.fenced):
                return False
            claim.lost = True
            body = {"preconditions": {"resourceVersion": claim.body["metadata"]["resourceVersion"]}}
            try:
                _call(claim.namespace, self.api.delete_namespaced_lease, claim.name, claim.namespace, body=body)
            except LeaseUnavailable as exc:
                log.warning("lease %s/%s not released (%s): it lapses on its own", claim.namespace, claim.name, exc)
            return True

    def list(self, namespaces: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Run leases in these namespaces (all when none), each observed for expiry."""
        items = run_leases(self.api, namespaces)
        with self._seen_lock:  # forget leases that are gone
            self._seen = {k: v for k, v in self._seen.items() if k in {_key(i) for i in items}}
        for lease in items:
            self.expired(lease)
        return items

    def expired(self, lease: dict[str, Any]) -> bool:
        """Free (no holder) or unchanged for longer than its duration since this process first saw it."""
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            return True
        key, rv, now = _key(lease), lease["metadata"]["resourceVersion"], self._clock()
        with self._seen_lock:
            seen = self._seen.get(key)
            if seen is None or seen[0] != rv:
                self._seen[key] = (rv, now)
                return False
        return now - seen[1] > (spec.get("leaseDurationSeconds") or self.duration_s)

    def delete_expired(self, lease: dict[str, Any]) -> None:
        """Removes a lapsed lease whose run needs no worker any more (finished, or gone)."""
        body = {"preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}}
        meta = lease["metadata"]
        _call(meta["namespace"], self.api.delete_namespaced_lease, meta["name"], meta["namespace"], body=body)

    def _body(self, run: dict[str, Any], resource_version: str | None = None, transitions: int = 0) -> dict:
        meta = run["metadata"]
        now = rfc3339_micro(self._now())
        metadata: dict[str, Any] = {
            "name": lease_name(meta["uid"]),
            "namespace": meta["namespace"],
            "labels": {RUN_LABEL: meta["name"][:63], "app.kubernetes.io/managed-by": "aiops-operator"},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": ANALYSIS_RUN.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
        }
        if resource_version:
            metadata["resourceVersion"] = resource_version
        spec = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_s,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _claimed(self, run: dict[str, Any], lease: dict[str, Any], start: float) -> Claim:
        return Claim(run=run["metadata"]["name"], uid=run["metadata"]["uid"], body=lease,
                     valid_until=start + self.duration_s)  # fmt: skip


def run_leases(api: LeaseApi | None = None, namespaces: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The run leases in these namespaces (all when none). LeaseUnavailable when they cannot be read."""
    api = api or LeaseApi()
    if namespaces := list(namespaces):
        return [
            lease
            for ns in namespaces
            for lease in _call(ns, api.list_namespaced_lease, ns, label_selector=RUN_LABEL)["items"]
        ]
    return _call("", api.list_lease_for_all_namespaces, label_selector=RUN_LABEL)["items"]


def _key(lease: dict[str, Any]) -> tuple[str, str]:
    return lease["metadata"]["namespace"], lease["metadata"]["name"]


def _call(namespace: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """The call's answer as JSON; None for 404 and 409 (deleted, or changed by another); LeaseUnavailable for the
    rest."""
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        if exc.status in (404, 409):
            return None
        raise _unavailable(exc, namespace) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _unavailable(exc, namespace) from None


def _unavailable(exc: Exception, namespace: str) -> LeaseUnavailable:
    where = f" in namespace {namespace}" if namespace else ""
    if isinstance(exc, ApiException):
        return LeaseUnavailable(f"the Lease API answered {exc.status} {exc.reason}{where}")
    return LeaseUnavailable(f"the Lease API is unreachable{where}: {type(exc).__name__}: {str(exc)[:200]}")
