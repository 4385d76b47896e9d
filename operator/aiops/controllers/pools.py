"""AnalysisRuns on catalogue models (spec.inference.pool), and the sweeper that keeps pools and runs tidy.

A pool run goes Pending -> Scheduling (a slot in the pool's concurrency limit; beyond it the run waits with
status.queuePosition and Scheduled=False Queued) -> WaitingForModel (the pool's Deployment scaled to 1 until it
is ready, at most AIOPS_MODEL_WAIT_S; then Failed with ModelReady=False Timeout and a Warning Event, and the pool
scaled back to 0 if no other run holds it) -> Running -> Succeeded | Failed (aiops.runs, unchanged, against
the pool's endpoint and served model). An external catalogue model skips WaitingForModel and creates nothing.
Transient model errors are retried by the gateway with backoff (GatewayConfig.max_transport_retries); each
execution counts in status.attempts.

The sweeper (every AIOPS_POOL_SWEEP_INTERVAL_S) scales idle pools to zero, deletes the Deployments of models no
longer in the catalogue, and deletes finished runs AIOPS_RUN_TTL_S after completion, except runs owned by an
Incident: those stay while their Incident exists (it points at them in status.analysisRunRef) and Kubernetes'
garbage collector removes them with it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from aiops import GROUP, VERSION, settings
from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import AnalysisRunStatus, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.controllers.common import kopf_emitter
from aiops.core import kube
from aiops.core.status import StatusBuilder, now_utc, parse_time, rfc3339, write
from aiops.inference import pools
from aiops.inference.catalogue import ModelEntry
from aiops.runs import Context, fail_run
from aiops.settings import Settings

log = logging.getLogger(__name__)
POLL_S = 1.0
FINISHED = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value)
_tasks: set[asyncio.Task] = set()


def _key(run: dict) -> str:
    return f"{run['metadata']['namespace']}/{run['metadata']['name']}"


def _context() -> Context:
    return Context(kube.API, settings.current(), now_utc, kopf_emitter)


def _write(run: dict, build: Callable[[StatusBuilder[AnalysisRunStatus]], None]) -> dict:
    """Builds on the stored status and writes only what changed; the fresh object."""
    run = _context().fresh(ANALYSIS_RUN, run)
    b = StatusBuilder(ANALYSIS_RUN, run, now_utc(), kopf_emitter(run))
    build(b)
    return write(kube.API, b, run)


async def _call(fn: Callable, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def execute_on_pool(body: kopf.Body, run_analysis: Callable[[dict, Settings], Awaitable[None]]) -> None:
    """Schedules the run on its catalogue model, waits for it, then hands it to `run_analysis`."""
    cfg = settings.current()
    run = dict(body)
    pool = run["spec"]["inference"]["pool"]
    entry = cfg.models.get(pool) if cfg.models else None
    if entry is None:
        message = (
            cfg.models.unknown(pool)
            if cfg.models
            else f'spec.inference.pool: no model "{pool}" in the catalogue (known: none; set AIOPS_MODEL_CATALOGUE)'
        )
        await _call(fail_run, _context(), run, message)
        return
    key = _key(run)
    try:
        if not await _admit(run, pool, entry):
            return
        if entry.external is None and not await _wait_for_pool(run, pool, entry, cfg):
            return
        try:
            model = await _call(pools.gateway_config, pool, entry, cfg.namespace, cfg.llm)
        except ValueError as exc:
            await _call(fail_run, _context(), _context().fresh(ANALYSIS_RUN, run), str(exc))
            return
        # Execution sees the pool as the operator's model; spec.inference.pool is handled here.
        target = copy.deepcopy(_context().fresh(ANALYSIS_RUN, run))
        target["spec"]["inference"].pop("pool", None)
        await run_analysis(target, _with_model(cfg, model))
    finally:
        active = pools.SCHEDULER.release(pool, key)
        if entry.external is None:
            await _call(pools.touch, pool, cfg.namespace, now_utc(), active)


def _with_model(cfg: Settings, model) -> Settings:
    from dataclasses import replace

    return replace(cfg, llm=model)


async def _admit(run: dict, pool: str, entry: ModelEntry) -> bool:
    """Waits for a slot in the pool (Scheduling, queuePosition); False when the run finished meanwhile."""
    key, limit, shown = _key(run), entry.max_concurrent_runs, None
    while True:
        position = pools.SCHEDULER.admit(pool, key, limit)
        if position == 0:
            break
        if position != shown:
            shown = position

            def queued(b: StatusBuilder, position=position) -> None:
                message = f"pool {pool} runs at most {limit} run(s) at once; place {position} in its queue"
                b.status.queue_position = position
                b.condition(ConditionType.SCHEDULED, ConditionStatus.FALSE, Reason.QUEUED, message)
                b.phase(RunPhase.SCHEDULING, message)

            fresh = await _call(_write, run, queued)
            if ((fresh.get("status") or {}).get("phase")) in FINISHED:
                return False
        await asyncio.sleep(POLL_S)

    def admitted(b: StatusBuilder) -> None:
        message = f"a slot in pool {pool} (at most {limit} at once)"
        b.status.queue_position = None
        b.condition(ConditionType.SCHEDULED, ConditionStatus.TRUE, Reason.ADMITTED, message)
        b.phase(RunPhase.SCHEDULING, message)

    await _call(_write, run, admitted)
    return True


async def _wait_for_pool(run: dict, pool: str, entry: ModelEntry, cfg: Settings) -> bool:
    """Scales the pool up and waits for a ready replica (WaitingForModel); False after a timeout (Failed)."""
    ns, name = cfg.namespace, pools.resource_name(pool)
    if missing := await _call(pools.missing_weights, entry, ns):
        await _call(_give_up, run, pool, ns, Reason.WEIGHTS_MISSING, f"pool {pool}: {missing}")
        return False
    try:
        deployment = await _call(pools.ensure, pool, entry, ns, now_utc())
    except ApiException as exc:
        message = f"cannot create pool {ns}/{name}: {exc.status} {exc.reason}"
        await _call(fail_run, _context(), _context().fresh(ANALYSIS_RUN, run), message)
        return False
    url = pools.endpoint(pool, entry, ns)

    def waiting(b: StatusBuilder) -> None:
        message = f"waiting up to {cfg.model_wait_s}s for Deployment {ns}/{name} to have a ready replica"
        b.status.endpoint = url
        b.status.model = pools.served_name(pool, entry)
        b.condition(ConditionType.MODEL_READY, ConditionStatus.FALSE, Reason.WAITING, message)
        b.phase(RunPhase.WAITING_FOR_MODEL, message)

    await _call(_write, run, waiting)
    deadline = asyncio.get_running_loop().time() + cfg.model_wait_s
    while not pools.is_ready(deployment):
        if asyncio.get_running_loop().time() > deadline:
            await _call(_time_out, run, pool, ns, cfg.model_wait_s)
            return False
        await asyncio.sleep(POLL_S)
        deployment = await _call(pools.get_deployment, pool, ns)
        if deployment is None or not (deployment.get("spec") or {}).get("replicas"):
            deployment = await _call(pools.ensure, pool, entry, ns, now_utc())  # deleted or scaled down meanwhile
    pod = await _call(pools.ready_pod, pool, ns)
    log.info("pool %s ready (%s), run %s starts", pool, pod or "no pod visible", _key(run))

    def ready(b: StatusBuilder) -> None:
        b.status.pod = pod
        b.status.endpoint = url
        b.condition(ConditionType.MODEL_READY, ConditionStatus.TRUE, Reason.READY, f"{name} is ready at {url}")

    await _call(_write, run, ready)
    return True


def _time_out(run: dict, pool: str, ns: str, wait_s: int) -> None:
    message = f"pool {pool}: Deployment {ns}/{pools.resource_name(pool)} had no ready replica after {wait_s}s"
    _give_up(run, pool, ns, Reason.TIMEOUT, message)


def _give_up(run: dict, pool: str, ns: str, reason: str, message: str) -> None:
    """The run fails with ModelReady=False `reason`; the pool goes back to zero unless another run uses it."""
    now = now_utc()

    def model_not_ready(b: StatusBuilder) -> None:
        b.condition(ConditionType.MODEL_READY, ConditionStatus.FALSE, reason, message, event="Warning")

    _write(run, model_not_ready)
    fail_run(_context(), _context().fresh(ANALYSIS_RUN, run), message)
    if pools.SCHEDULER.release(pool, _key(run)) == 0 and not pools.SCHEDULER.active(pool):
        pools.scale_to_zero(pool, ns, now, f"run {_key(run)} gave up ({reason}) and no other run uses it")


def expire_runs(ttl_s: int, now) -> None:
    """Deletes finished runs older than the TTL that no Incident owns."""
    runs = kube.custom().list_cluster_custom_object(GROUP, VERSION, ANALYSIS_RUN.plural)["items"]
    for run in runs:
        status = run.get("status") or {}
        if status.get("phase") not in FINISHED:
            continue
        if any(o.get("kind") == "Incident" for o in run["metadata"].get("ownerReferences") or []):
            continue  # kept with its Incident; garbage-collected with it
        done = parse_time(status.get("completedAt"))
        if done and now - done >= timedelta(seconds=ttl_s):
            meta = run["metadata"]
            log.info("AnalysisRun %s/%s finished at %s: deleting (TTL %ss)", meta["namespace"], meta["name"],
                     rfc3339(done), ttl_s)  # fmt: skip
            try:
                kube.custom().delete_namespaced_custom_object(
                    GROUP, VERSION, meta["namespace"], ANALYSIS_RUN.plural, meta["name"]
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


async def _sweep_forever(cfg: Settings) -> None:
    while True:
        await asyncio.sleep(cfg.pool_sweep_interval_s)
        try:
            if cfg.models is not None:
                await _call(pools.sweep, cfg.models, cfg.namespace, now_utc())
            if cfg.run_ttl_s:
                await _call(expire_runs, cfg.run_ttl_s, now_utc())
        except Exception:  # noqa: BLE001  (the next sweep tries again)
            log.exception("pool and run sweep failed")


@kopf.on.startup()
async def start_sweeper(**_: Any) -> None:
    cfg = settings.current()
    if cfg.models is not None:
        names = ", ".join(f"{n} ({'external' if e.external else 'pool'})" for n, e in sorted(cfg.models.models.items()))
        log.info("model catalogue: %s", names or "empty")
    task = asyncio.get_running_loop().create_task(_sweep_forever(cfg), name="aiops-pool-sweeper")
    _tasks.add(task)
