"""AnalysisRun reconciler: validate and accept the run, then hand it to execution (aiops.runs
dispatches by type).

Execution happens in a bounded worker pool (AIOPS_ANALYSIS_WORKERS), so a slow model holds up
neither kopf's handlers nor other objects. The hand-off is direct: the reconciler writes the
acceptance itself and submits the run in the same call, so no handler waits or polls for another.
Runs on a catalogue model go through a daemon instead (controllers/pools.py), which waits for the
model: one that names a pool, or that the catalogue's defaults send to one (chosen here, when the run is
accepted, and kept in status.catalogueModel so that workers leave the run alone). Runs of the other types wait
in Pending until their executors exist. A run whose status write fails (the API server or etcd away) is run
again after a backoff: nothing else would pick it up before a restart.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from aiops import GROUP, VERSION, runs, settings
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunSpec, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.controllers import pools
from aiops.controllers.common import MissingReference, kopf_emitter, reconciler, validated
from aiops.core import kube
from aiops.core.status import StatusBuilder, find_condition, now_utc, write
from aiops.inference import catalogue

log = logging.getLogger(__name__)


def check_references(spec: AnalysisRunSpec, namespace: str) -> dict | None:
    """The run's Incident (None without spec.incidentRef)."""
    if not spec.incident_ref:
        return None
    incident = kube.get(INCIDENT, spec.incident_ref.name, namespace)
    if incident is None:
        raise MissingReference(
            f"spec.incidentRef: Incident {spec.incident_ref.name!r} does not exist in namespace {namespace!r}"
        )
    return incident


@reconciler(ANALYSIS_RUN)
def reconcile(body: kopf.Body, patch: kopf.Patch, builder: StatusBuilder) -> None:
    spec, incident = validated(
        ANALYSIS_RUN,
        body,
        patch,
        builder,
        RunPhase.FAILED,
        resolve=lambda s: check_references(s, body["metadata"]["namespace"]),
    )
    # A run that failed only for its spec starts over once the spec is fixed; a run that
    # failed at inference keeps its verdict.
    if builder.status.phase is None or builder.ready_reason() == Reason.INVALID_SPEC:
        builder.phase(RunPhase.PENDING, f"{spec.type} run queued for inference", event=None)  # Running follows
        # Decided once, in the write that accepts the run: a worker never claims a run on a catalogue model.
        chosen = pools.routed(dict(body), settings.current(), incident)
        builder.status.catalogue_model = chosen.model if chosen is not None else None
    builder.status.attempts = builder.status.attempts or 0
    builder.condition(
        ConditionType.READY, ConditionStatus.TRUE, Reason.ACCEPTED, "spec is valid and its references resolve"
    )
    if not runs_here(body["spec"]) or builder.status.catalogue_model:
        builder.apply(patch)
        return
    # Written here, not through kopf's patch after the handler: the executor's first write (Running)
    # must not be overtaken by this handler's (Pending).
    dispatch(write(kube.API, builder, dict(body)))


EXECUTABLE = frozenset(runs.EXECUTORS)
ACCEPT_POLLS = 20  # the reconcile handler accepts a valid run within moments
RETRY_S, RETRY_MAX_S = 2.0, 30.0  # backoff before running again a run whose writes failed (API server or etcd away)
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def executing() -> set[str]:
    """The uids of the runs this process executes or has queued."""
    with _in_flight_lock:
        return set(_in_flight)


def runs_here(spec: dict) -> bool:
    """Executed on the reconciler's hand-off: a type with an executor, on the operator's own model (workers mode:
    `aiops worker` claims it instead)."""
    inline = settings.current().run_execution == "inline"
    return inline and spec.get("type") in EXECUTABLE and not (spec.get("inference") or {}).get("pool")


def on_pool(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    # Nothing else in status: a filter on the phase would flip when the run finishes and make kopf cancel the
    # daemon while it writes its last status. status.catalogueModel is written once, on acceptance.
    return spec.get("type") in EXECUTABLE and bool(catalogue.assigned(spec, status))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(settings.current().analysis_workers, thread_name_prefix="analysis")


def dispatch(run: dict, backoff_s: float = RETRY_S) -> None:
    """Submits an accepted, unfinished run to the worker pool, once per process (a resumed run that was
    Running is run again, its attempt counted)."""
    if (run.get("status") or {}).get("phase") in (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value):
        return
    uid = run["metadata"]["uid"]
    with _in_flight_lock:
        if uid in _in_flight:
            return
        _in_flight.add(uid)

    def execute() -> None:
        failed = None
        try:
            runs.execute(runs.Context(kube.API, settings.current(), now_utc, kopf_emitter), run)
        except Exception as exc:  # noqa: BLE001  (executors end in status: this is a write that did not get through)
            failed = exc
        finally:
            with _in_flight_lock:
                _in_flight.discard(uid)
        if failed is not None:
            retry(run, failed, backoff_s)

    # In this context kopf.event() from the worker thread reaches the operator's loop, and settings are found.
    _pool().submit(contextvars.copy_context().run, execute)


def retry(run: dict, exc: Exception, backoff_s: float) -> None:
    """Runs again, after a backoff, a run whose execution raised: its status could not be written (the API server
    or etcd was away), so nothing but this process would ever run it again. It is read afresh first: a run written
    finished meanwhile, or deleted, is left alone; the executors are safe to run again (aiops.runs.common). What
    raises every time (a bug) is tried every RETRY_MAX_S, logged each time."""
    meta = run["metadata"]
    where = f"AnalysisRun {meta['namespace']}/{meta['name']}"
    log.warning("%s: execution interrupted (%s: %s); running it again in %.0fs", where, type(exc).__name__,
                str(exc)[:300], backoff_s)  # fmt: skip

    def again() -> None:
        try:
            fresh = kube.get(ANALYSIS_RUN, meta["name"], meta["namespace"])
        except Exception as away:  # noqa: BLE001  (still away: wait longer)
            retry(run, away, min(backoff_s * 2, RETRY_MAX_S))
            return
        if fresh is not None:
            dispatch(fresh, min(backoff_s * 2, RETRY_MAX_S))

    timer = threading.Timer(backoff_s, contextvars.copy_context().run, (again,))
    timer.daemon = True
    timer.start()


@kopf.daemon(GROUP, VERSION, ANALYSIS_RUN.plural, when=on_pool, cancellation_timeout=5)
async def execute_on_pool(body: kopf.Body, **_: Any) -> None:
    """Runs an accepted run on its catalogue model once (again after a restart if it was Running)."""
    for _ in range(ACCEPT_POLLS):
        status = body.get("status") or {}  # a daemon's body is live: it follows the object
        if status.get("phase") in (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value):
            return
        if (find_condition(status.get("conditions") or [], ConditionType.READY) or {}).get("reason") == Reason.ACCEPTED:
            break
        await asyncio.sleep(0.5)
    else:
        raise kopf.TemporaryError("not accepted (see its Ready condition); checking again later", delay=15)
    await pools.execute_on_pool(body, _run_in_pool)


async def _run_in_pool(run: dict, config: settings.Settings) -> None:
    # The worker thread gets this context so that kopf.event() can reach the operator's loop.
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, runs.execute, runs.Context(kube.API, config, now_utc, kopf_emitter), run)
    await asyncio.get_running_loop().run_in_executor(_pool(), call)
