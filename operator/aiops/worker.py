"""`aiops worker`: executes the AnalysisRuns the operator accepted (AIOPS_RUN_EXECUTION=workers), in as many
replicas as the queue needs, each run claimed through a Lease of its own (aiops.runs.lease).

- kopf watches AnalysisRuns with this module's own registry and `on.event` handlers only, so workers write
  no kopf annotations or finalizers and never contend over them. The watch keeps an index of claimable runs;
  kopf answers a watch that expired (410 Gone) or an API server that restarted with a fresh list.
- A claimer thread claims the oldest claimable run whenever one of AIOPS_ANALYSIS_WORKERS slots is free, and
  lists the run leases every half lease: a run whose worker died gets no watch event, its lease just stops
  changing, and is taken over once it has lapsed.
- Each run executes in a thread of its own (aiops.runs.execute), its lease renewed every third of
  AIOPS_RUN_LEASE_S and fenced before the outcome is written; the lease is deleted once it is written. An
  execution that raised keeps its lease unrenewed: it lapses, and the run is retried a lease later.
- The lease API refusing or out of reach: the worker stops claiming and says so (a log line, the gauge
  aiops_worker_claiming at 0, Claimed=False LeaseUnavailable on the run it could not claim), tries again each
  sweep, and says when it resumes. Redis is not on this path: the event stream stays best effort.
- SIGTERM: no new claims; runs in flight get AIOPS_WORKER_DRAIN_S to finish, then those not yet writing their
  outcome are released, so another worker takes them at its next sweep instead of a lease later.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
import time
from typing import Any

import kopf

from aiops import GROUP, VERSION, runs, settings
from aiops.api import ANALYSIS_RUN, KINDS
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.clusters import caches
from aiops.core import background, kube, metrics
from aiops.core.status import StatusBuilder, find_condition, now_utc, write
from aiops.observability import liveness, server
from aiops.runs.lease import Claim, Leases, LeaseUnavailable, run_uid
from aiops.settings import Settings
from aiops.stores import start_sinks

log = logging.getLogger(__name__)
registry = kopf.OperatorRegistry()  # not kopf's default one, where the operator's handlers are
KIND = {k.kind: k for k in KINDS}
FENCED_WRITE_S = 5.0  # how long a draining worker waits for outcomes being written


class Worker:
    """The index of claimable runs (fed by the watch), the claims held, and the threads that claim and renew."""

    def __init__(self, cfg: Settings, leases: Leases, namespaces: list[str], client: kube.Client = kube.API):
        self.cfg, self.leases, self.namespaces, self.client = cfg, leases, namespaces, client
        self.candidates: dict[str, dict] = {}  # uid -> the run as last seen, while claimable
        self.running: dict[str, Claim] = {}
        self.held: set[str] = set()  # runs whose live lease another worker holds, as of the last sweep or claim
        self.refusal: str | None = None  # why the lease API cannot be used, while it cannot
        self.lock = threading.Lock()
        self.wake = threading.Event()  # a run to claim, or a free slot
        self.stopping = threading.Event()  # no new claims
        self.closed = threading.Event()  # no renewals either
        metrics.WORKER_CLAIMING.set(1)

    def start(self) -> None:
        for target, name in ((self._claim_forever, "aiops-claimer"), (self._renew_forever, "aiops-renewer")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def seen(self, event_type: str | None, run: dict) -> None:
        """A watch event (or, type None, a listed run): the index follows it."""
        uid = run["metadata"]["uid"]
        with self.lock:
            if event_type != "DELETED" and runs.claimable(run):
                new = uid not in self.candidates
                self.candidates[uid] = run
            else:
                new = False
                self.candidates.pop(uid, None)
                self.held.discard(uid)
        if new:
            self.wake.set()

    def _claim_forever(self) -> None:
        next_sweep = 0.0
        while not self.stopping.is_set():
            probe = time.monotonic() >= next_sweep
            listed = probe and self.sweep()
            if probe:
                next_sweep = time.monotonic() + self.cfg.run_lease_s / 2
            self.wake.clear()
            try:
                self.fill(probe)
            except Exception:  # noqa: BLE001  (the claimer must outlive any one run's surprise)
                log.exception("claiming failed; trying again")
            if listed and self.refusal is not None and self._next() is None:
                self._resumed()  # the leases could be listed, and there was no run to try a claim on
            self.wake.wait(max(0.0, next_sweep - time.monotonic()))

    def fill(self, probe: bool = False) -> None:
        """Claims runs while slots are free; while the lease API refuses, only one try, and only on `probe`."""
        while not self.stopping.is_set() and (self.refusal is None or probe):
            probe = False
            run = self._next()
            if run is None:
                return
            try:
                claim = self.leases.claim(run)
            except LeaseUnavailable as exc:
                self._refused(run, str(exc))
                return
            if self.refusal is not None:
                self._resumed()
            if claim is None:
                with self.lock:
                    self.held.add(run["metadata"]["uid"])
                continue
            self._start(claim, run)

    def _next(self) -> dict | None:
        """The oldest claimable run this worker neither runs nor knows held, if a slot is free."""
        with self.lock:
            if len(self.running) >= self.cfg.analysis_workers:
                return None
            waiting = [r for uid, r in self.candidates.items() if uid not in self.running and uid not in self.held]
        return min(waiting, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]), default=None)

    def sweep(self) -> bool:
        """Lists the run leases: which are held elsewhere, which lapsed (their runs claimable again), and deletes
        lapsed ones whose run needs nobody. False when they could not be listed."""
        try:
            leases = self.leases.list(self.namespaces)
        except LeaseUnavailable as exc:
            self._refused(None, str(exc))
            return False
        held, lapsed = set(), []
        with self.lock:
            for lease in leases:
                uid = run_uid(lease)
                if uid in self.running:
                    continue
                if not self.leases.expired(lease):
                    held.add(uid)
                elif uid not in self.candidates:
                    lapsed.append(lease)
            self.held = held
        for lease in lapsed:
            try:
                self.leases.delete_expired(lease)
            except LeaseUnavailable as exc:
                log.warning("lapsed lease %s not deleted: %s", lease["metadata"]["name"], exc)
        return True

    def _refused(self, run: dict | None, why: str) -> None:
        if self.refusal is None:
            log.error("not claiming runs: %s; trying again every %ss", why, self.cfg.run_lease_s / 2)
        self.refusal = why
        metrics.WORKER_CLAIMING.set(0)
        if run is not None:
            message = f"no worker can claim it: {why}"  # the same words from every worker: no flip-flopping
            self._claimed_condition(run, ConditionStatus.FALSE, Reason.LEASE_UNAVAILABLE, message)

    def _resumed(self) -> None:
        log.info("the Lease API answers again: claiming runs (it had: %s)", self.refusal)
        self.refusal = None
        metrics.WORKER_CLAIMING.set(1)

    def _claimed_condition(self, run: dict, status: ConditionStatus, reason: Reason, message: str) -> dict:
        """Claimed on the run as stored now (best effort: the log and the metric have said it already)."""
        meta = run["metadata"]
        try:
            fresh = self.client.get(ANALYSIS_RUN, meta["name"], meta["namespace"])
            if fresh is None:
                return run
            b = StatusBuilder(ANALYSIS_RUN, fresh, now_utc(), self.emit_for(fresh))
            b.condition(ConditionType.CLAIMED, status, reason, message)
            return write(self.client, b, fresh)
        except Exception as exc:  # noqa: BLE001
            log.warning("Claimed=%s not written on AnalysisRun %s/%s: %s", status, meta["namespace"], meta["name"], exc)
            return run

    def _start(self, claim: Claim, run: dict) -> None:
        with self.lock:
            self.running[claim.uid] = claim
            metrics.WORKER_IN_FLIGHT.set(len(self.running))
        name = f"run-{run['metadata']['name'][:40]}"
        threading.Thread(target=self._execute, args=(claim, run), name=name, daemon=True).start()

    def _execute(self, claim: Claim, run: dict) -> None:
        meta = run["metadata"]
        outcome: str | None = "finished"
        try:
            # Read after the claim: whoever held it before wrote its outcome before releasing the lease.
            fresh = self.client.get(ANALYSIS_RUN, meta["name"], meta["namespace"])
            if fresh is None or fresh["metadata"]["uid"] != claim.uid or not runs.claimable(fresh):
                outcome = None
            else:
                claimed = find_condition((fresh.get("status") or {}).get("conditions") or [], ConditionType.CLAIMED)
                if claimed and claimed["status"] == ConditionStatus.FALSE:
                    message = f"worker {self.leases.holder}"
                    fresh = self._claimed_condition(fresh, ConditionStatus.TRUE, Reason.CLAIMED, message)
                fence = functools.partial(self.leases.fence, claim)
                runs.execute(runs.Context(self.client, self.cfg, now_utc, self.emit_for, fence), fresh)
                if claim.lost and not claim.fenced:
                    outcome = "abandoned"
        except Exception:  # noqa: BLE001  (executors end in status; this is an API failure or a bug)
            log.exception("AnalysisRun %s/%s: execution failed; its lease lapses and the run is retried",
                          meta["namespace"], meta["name"])  # fmt: skip
            outcome = "crashed"
            with claim.lock:
                claim.lost = True  # no more renewals
        finally:
            if outcome != "crashed":
                self.leases.release(claim)
            with self.lock:
                self.running.pop(claim.uid, None)
                if outcome is None or outcome == "finished":  # an abandoned run is another's, or nobody's yet
                    self.candidates.pop(claim.uid, None)
                metrics.WORKER_IN_FLIGHT.set(len(self.running))
            if outcome:
                metrics.WORKER_RUNS.labels(outcome).inc()
            self.wake.set()

    def _renew_forever(self) -> None:
        while not self.closed.wait(self.cfg.run_lease_s / 3):
            with self.lock:
                claims = list(self.running.values())
            for claim in claims:
                if claim.lost:  # said once already, or given up on purpose
                    continue
                try:
                    if not self.leases.renew(claim) and not claim.fenced:
                        log.warning("lost the lease on AnalysisRun %s/%s: its outcome will not be written here",
                                    claim.namespace, claim.run)  # fmt: skip
                except LeaseUnavailable as exc:
                    log.warning("lease on AnalysisRun %s/%s not renewed: %s", claim.namespace, claim.run, exc)

    def emit_for(self, obj: dict):
        return functools.partial(self.client.event, KIND[obj["kind"]], obj)

    def drain(self) -> None:
        """No new claims; runs in flight finish within AIOPS_WORKER_DRAIN_S or are released for another worker."""
        self.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + self.cfg.worker_drain_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.2)
        with self.lock:
            left = list(self.running.values())
        for claim in left:
            if self.leases.release(claim, unless_fenced=True):
                log.info("released AnalysisRun %s/%s for another worker", claim.namespace, claim.run)
                metrics.WORKER_RUNS.labels("released").inc()
        deadline = time.monotonic() + FENCED_WRITE_S
        while any(c.fenced for c in list(self.running.values())) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.closed.set()


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    settings.posting.enabled = False  # the executors post their own Events; kopf has nothing to say on runs
    liveness.configure(settings)
    liveness.start_heartbeat()


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)  # what kopf's default registry would do: the kubernetes client's config


@kopf.on.event(GROUP, VERSION, ANALYSIS_RUN.plural, registry=registry)
async def seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.worker.seen(event.get("type"), event["object"])


@kopf.on.cleanup(registry=registry)
async def stop_claiming(memo: kopf.Memo, **_: Any) -> None:
    memo.worker.stopping.set()
    liveness.release()
    await background.cancel_all()


def run(namespaces: list[str] | None = None, verbose: bool = False) -> None:
    """Runs a worker until SIGINT/SIGTERM, then drains it; cluster-wide unless namespaces are given."""
    cfg = settings.current()
    if cfg.run_execution != "workers":
        raise SystemExit(
            "aiops worker: set AIOPS_RUN_EXECUTION=workers, here and on the operator: in inline mode the operator"
            " executes the runs itself, without leases, and a worker would run them a second time"
        )
    holder = f"{socket.gethostname()}-{os.getpid()}"  # in a pod: the pod's name
    worker = Worker(cfg, Leases(holder, cfg.run_lease_s), list(namespaces or ()))
    if cfg.metrics_port:
        server.serve(cfg.metrics_port, state=False)
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    if not verbose:  # kopf logs every watch event's handler; the worker logs what it does with them
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    start_sinks(cfg)  # diagnoses reach history and the event stream from here, where they are made
    if cfg.kube_cache:  # as in the operator (controllers/cache.py): diagnoses read watch-fed caches, not LISTs
        caches.start(kube.api_client(), cfg.namespace)
    log.info("worker %s: %d slot(s), lease %ss", holder, cfg.analysis_workers, cfg.run_lease_s)
    worker.start()
    try:
        ended = asyncio.run(
            liveness.operate(
                registry=registry,
                clusterwide=not namespaces,
                namespaces=namespaces or (),
                standalone=True,
                memo=kopf.Memo(worker=worker),
            )
        )
    finally:
        worker.drain()
        caches.stop()
    if ended:
        raise SystemExit(1)
