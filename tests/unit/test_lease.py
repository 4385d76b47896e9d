"""Claims on runs (aiops.runs.lease) against an in-memory Lease store with the API server's rules for them
(one create wins, a PUT or DELETE with a stale resourceVersion is 409), on a clock the test moves; the fence
in the executors; and a worker that stops claiming while the lease API refuses, and resumes."""

from __future__ import annotations

import copy
import itertools

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from test_runs import NOW, diagnosis, objects

from aiops.api import ANALYSIS_RUN
from aiops.core import metrics
from aiops.diagnosis.pipeline import PipelineResult
from aiops.runs import Context, claimable, fail_run, lease, rootcause
from aiops.runs.lease import Leases, LeaseUnavailable
from aiops.settings import from_env
from aiops.worker import Worker
from support.fakekube import FakeClient

ACCEPTED = {"type": "Ready", "status": "True", "reason": "Accepted", "message": "spec is valid",
            "lastTransitionTime": "2026-12-06T01:00:00Z"}  # fmt: skip
RUN = {
    "apiVersion": "aiops.dev/v1alpha1",
    "kind": "AnalysisRun",
    "metadata": {"name": "checkout-rca", "namespace": "shop", "uid": "u-1", "creationTimestamp": "2026-12-06T01:00Z"},
    "spec": {"type": "rootCause", "incidentRef": {"name": "checkout"}},
    "status": {"phase": "Pending", "conditions": [ACCEPTED]},
}


class LeaseStore:
    """coordination.k8s.io/v1 Leases as the API server keeps them, for the calls aiops.runs.lease makes."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict] = {}
        self.refuse: ApiException | None = None  # answer every call with this
        self.down = False  # every call fails to connect
        self._rv = itertools.count(1)

    def _check(self) -> None:
        if self.down:
            raise urllib3.exceptions.MaxRetryError(None, "/apis/coordination.k8s.io/v1", "connection refused")
        if self.refuse is not None:
            raise self.refuse

    def _store(self, namespace: str, body: dict) -> dict:
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = str(next(self._rv))
        self.leases[namespace, body["metadata"]["name"]] = body
        return copy.deepcopy(body)

    def create_namespaced_lease(self, namespace: str, body: dict) -> dict:
        self._check()
        if (namespace, body["metadata"]["name"]) in self.leases:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(namespace, body)

    def read_namespaced_lease(self, name: str, namespace: str) -> dict:
        self._check()
        if (namespace, name) not in self.leases:
            raise ApiException(status=404, reason="NotFound")
        return copy.deepcopy(self.leases[namespace, name])

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict) -> dict:
        current = self.read_namespaced_lease(name, namespace)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self._store(namespace, body)

    def delete_namespaced_lease(self, name: str, namespace: str, body) -> None:
        current = self.read_namespaced_lease(name, namespace)
        if body["preconditions"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        del self.leases[namespace, name]

    def list_lease_for_all_namespaces(self, label_selector: str) -> dict:
        self._check()
        return {"items": [copy.deepcopy(v) for v in self.leases.values() if label_selector in v["metadata"]["labels"]]}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store() -> LeaseStore:
    return LeaseStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def worker(store: LeaseStore, clock: Clock, name: str, duration: int = 6) -> Leases:
    return Leases(name, duration, api=store, clock=clock, now=lambda: NOW)


def test_one_claim_wins_and_the_lease_names_the_run(store, clock):
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    claim = a.claim(RUN)
    assert claim is not None and b.claim(RUN) is None
    stored = store.leases["shop", "aiops-run-u-1"]
    assert stored["spec"]["holderIdentity"] == "a" and stored["spec"]["leaseDurationSeconds"] == 6
    assert stored["metadata"]["labels"][lease.RUN_LABEL] == "checkout-rca"
    assert stored["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_a_lease_renewed_in_time_is_never_taken_over(store, clock):
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    claim = a.claim(RUN)
    for _ in range(10):
        assert b.claim(RUN) is None
        clock.t += 4  # under the 6 s lease between renewals
        assert a.renew(claim)
    assert b.claim(RUN) is None


def test_a_lapsed_lease_is_taken_over_once_and_its_old_holder_may_not_write(store, clock):
    a, b, c = worker(store, clock, "a"), worker(store, clock, "b"), worker(store, clock, "c")
    old = a.claim(RUN)
    assert b.claim(RUN) is None and c.claim(RUN) is None  # both start watching its resourceVersion
    clock.t += 6.5  # a died: nothing renewed it
    new = b.claim(RUN)
    assert new is not None and c.claim(RUN) is None  # the conditional PUT lets one taker win
    spec = store.leases["shop", "aiops-run-u-1"]["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    # a comes back (a long pause, not a death): its renewal and its fence fail, so it writes nothing.
    assert not a.renew(old) and not a.fence(old)
    assert b.fence(new)


def test_expiry_is_measured_on_the_observers_clock_not_from_renew_time(store, clock):
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    a.claim(RUN)
    clock.t += 60  # b has never seen this lease: however old its renewTime, b waits a full duration
    assert b.claim(RUN) is None
    clock.t += 6.5
    assert b.claim(RUN) is not None


def test_the_fence_rides_out_a_short_outage_and_gives_up_when_the_lease_would_lapse(store, clock, monkeypatch):
    a = worker(store, clock, "a")
    claim = a.claim(RUN)
    sleeps = []

    def sleep(s: float) -> None:  # the outage ends after two retries
        sleeps.append(s)
        clock.t += s
        store.down = len(sleeps) < 2

    monkeypatch.setattr(lease.time, "sleep", sleep)
    store.down = True
    assert a.fence(claim) and claim.fenced and len(sleeps) == 2

    other = worker(store, clock, "a2").claim({**RUN, "metadata": {**RUN["metadata"], "uid": "u-2"}})
    store.down, sleeps[:] = True, []
    monkeypatch.setattr(lease.time, "sleep", lambda s: setattr(clock, "t", clock.t + s))
    assert not a.fence(other) and other.lost  # never came back before the lease would lapse
    assert clock.t <= other.valid_until


def test_release_is_conditional_and_not_once_the_outcome_is_being_written(store, clock):
    a, b = worker(store, clock, "a"), worker(store, clock, "b")
    claim = a.claim(RUN)
    assert a.fence(claim)
    assert not a.release(claim, unless_fenced=True)  # a draining worker lets the write finish
    assert ("shop", "aiops-run-u-1") in store.leases
    assert a.release(claim)
    assert ("shop", "aiops-run-u-1") not in store.leases and not a.renew(claim)
    assert b.claim(RUN) is not None


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (ApiException(status=403, reason="Forbidden"), "the Lease API answered 403 Forbidden in namespace shop"),
        (None, "the Lease API is unreachable in namespace shop: MaxRetryError"),
    ],
)
def test_a_refusing_or_unreachable_lease_api_is_lease_unavailable(store, clock, failure, said):
    store.refuse, store.down = failure, failure is None
    with pytest.raises(LeaseUnavailable, match=said):
        worker(store, clock, "a").claim(RUN)
    with pytest.raises(LeaseUnavailable):
        worker(store, clock, "a").list()


def test_backlog_counts_runs_without_a_live_lease_as_queued():
    def held(uid: str, renewed: str, holder: str = "w") -> dict:
        spec = {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed}
        return {"metadata": {"name": f"aiops-run-{uid}", "namespace": "shop"}, "spec": spec}

    runs = [{"metadata": {"uid": f"u-{i}"}} for i in range(5)]
    leases = [held("u-0", "2026-12-06T00:59:50.000000Z"), held("u-1", "2026-12-06T00:59:00.000000Z"),
              held("u-2", "2026-12-06T00:59:55.000000Z", holder="")]  # fmt: skip
    assert lease.backlog(runs, leases, NOW) == (4, 1)  # u-1 lapsed, u-2 released


def test_claimable_runs_are_accepted_unfinished_and_not_on_a_pool():
    assert claimable(RUN)
    assert not claimable({**RUN, "status": {**RUN["status"], "phase": "Succeeded"}})
    assert not claimable({**RUN, "status": {"phase": "Pending"}})  # not accepted (yet)
    assert not claimable({**RUN, "spec": {**RUN["spec"], "inference": {"pool": "qwen"}}})
    assert claimable({**RUN, "status": {**RUN["status"], "phase": "Running"}})  # its worker may have died


def context(client: FakeClient, fence) -> Context:
    return Context(client, from_env({}), lambda: NOW, lambda obj: client.emitter(ANALYSIS_RUN, obj), fence)


def test_executors_write_no_outcome_without_the_fence():
    client = FakeClient()
    incident, run = objects(client)
    rootcause.record(context(client, lambda: False), run, incident, PipelineResult(diagnosis=diagnosis()))
    fail_run(context(client, lambda: False), run, "the model went away")
    assert client.writes == [] and client.events == []
    fenced = []
    rootcause.record(context(client, lambda: fenced.append(1) or True), run, incident,
                     PipelineResult(diagnosis=diagnosis()))  # fmt: skip
    assert fenced == [1] and [kind for kind, _, _ in client.writes] == ["Incident", "AnalysisRun"]


def test_a_worker_stops_claiming_while_the_lease_api_refuses_says_so_and_resumes(store, clock, monkeypatch):
    client = FakeClient()
    client.put(ANALYSIS_RUN, RUN)
    w = Worker(from_env({"AIOPS_RUN_EXECUTION": "workers"}), worker(store, clock, "w-1"), [], client=client)
    started = []
    monkeypatch.setattr(w, "_start", lambda claim, run: started.append(run["metadata"]["name"]))
    w.seen("ADDED", client.get(ANALYSIS_RUN, "checkout-rca", "shop"))

    store.refuse = ApiException(status=403, reason="Forbidden")
    w.fill(probe=True)
    assert started == [] and metrics.WORKER_CLAIMING._value.get() == 0
    assert w.refusal == "the Lease API answered 403 Forbidden in namespace shop"
    claimed = next(c for c in client.get(ANALYSIS_RUN, "checkout-rca", "shop")["status"]["conditions"]
                   if c["type"] == "Claimed")  # fmt: skip
    assert (claimed["status"], claimed["reason"]) == ("False", "LeaseUnavailable")
    assert claimed["message"] == "no worker can claim it: the Lease API answered 403 Forbidden in namespace shop"
    writes = len(client.writes)
    w.fill()  # between sweeps: no calls at all, nothing written again
    assert started == [] and len(client.writes) == writes

    store.refuse = None
    w.fill(probe=True)
    assert started == ["checkout-rca"] and w.refusal is None and metrics.WORKER_CLAIMING._value.get() == 1


def test_the_sweep_knows_leases_held_elsewhere_and_frees_lapsed_ones(store, clock):
    other = worker(store, clock, "other")
    other.claim(RUN)
    done = {**RUN, "metadata": {**RUN["metadata"], "uid": "u-9", "name": "done"}}
    other.claim(done)
    w = Worker(from_env({"AIOPS_RUN_EXECUTION": "workers"}), worker(store, clock, "w-1"), [], client=FakeClient())
    w.seen("ADDED", RUN)
    w.sweep()
    assert w.held == {"u-1", "u-9"}
    clock.t += 6.5  # "other" died
    w.sweep()
    assert w.held == set()
    assert ("shop", "aiops-run-u-9") not in store.leases  # its run is not claimable: the lease is tidied away
    assert ("shop", "aiops-run-u-1") in store.leases  # this one is taken over by a claim, not deleted


def test_execution_settings():
    cfg = from_env({})
    assert (cfg.run_execution, cfg.run_lease_s, cfg.worker_drain_s) == ("inline", 15, 25)
    cfg = from_env({"AIOPS_RUN_EXECUTION": "Workers", "AIOPS_RUN_LEASE_S": "6", "AIOPS_WORKER_DRAIN_S": "0"})
    assert (cfg.run_execution, cfg.run_lease_s, cfg.worker_drain_s) == ("workers", 6, 0)
    with pytest.raises(SystemExit, match="AIOPS_RUN_EXECUTION='queue': expected one of inline, workers"):
        from_env({"AIOPS_RUN_EXECUTION": "queue"})
    with pytest.raises(SystemExit, match="AIOPS_RUN_LEASE_S=2: expected at least 3"):
        from_env({"AIOPS_RUN_LEASE_S": "2"})


def test_a_worker_refuses_to_start_beside_an_inline_operator(monkeypatch):
    from aiops import worker as module

    monkeypatch.delenv("AIOPS_RUN_EXECUTION", raising=False)
    module.settings.current.cache_clear()
    try:
        with pytest.raises(SystemExit, match="set AIOPS_RUN_EXECUTION=workers, here and on the operator"):
            module.run()
    finally:
        module.settings.current.cache_clear()
