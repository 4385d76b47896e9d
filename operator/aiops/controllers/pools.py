"""AnalysisRuns on catalogue models, and the sweeper that keeps pools and runs tidy.

A run reaches a catalogue model by naming it (spec.inference.pool) or, when it names no pool, endpoint or
model and its type asks a model, through the catalogue's defaults (aiops.inference.catalogue.route): chosen
once, when the run is accepted, and recorded in status.catalogueModel (controllers/analysisrun.py). Such a run
goes Pending -> Scheduling (a slot in the pool's concurrency limit; beyond it the run waits with
status.queuePosition and Scheduled=False Queued) -> WaitingForModel (the pool's Deployment scaled to 1 until it
is ready, at most AIOPS_MODEL_WAIT_S) -> Running -> Succeeded | Failed (aiops.runs, unchanged, against
the pool's endpoint and served model), with ModelReady=True saying which catalogue model serves it and why. An
external catalogue model skips WaitingForModel and creates nothing.

When the model cannot serve (no weights, no ready replica in time, the pool cannot be created, its API key is
missing, or, for a run that could fall back, its GET /models fails), the run is decided here, before it starts:
- a run the defaults sent there falls back to the operator-level endpoint (AIOPS_LLM_BASE_URL) when one is
  configured: ModelReady=False with the reason and a Warning Event, status.endpoint and status.model the
  operator's, and it runs as any other run would;
- a run that named its pool asked for that model, and one without an operator-level endpoint has nowhere else
  to go: Failed, ModelReady=False with the reason and a Warning Event.
Either way the pool goes back to 0 if no other run holds it. What fails once the run has started is its
executor's to handle (a rootCause run keeps the analyzers' diagnosis). Transient model errors are retried by
the gateway with backoff (GatewayConfig.max_transport_retries); each execution counts in status.attempts.

The sweeper (every AIOPS_POOL_SWEEP_INTERVAL_S) scales idle pools to zero, deletes the Deployments of models no
longer in the catalogue, and deletes finished runs AIOPS_RUN_TTL_S after completion, except runs owned by an
Incident: those stay while their Incident exists (it points at them in status.analysisRunRef) and Kubernetes'
garbage collector removes them with it.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from aiops import GROUP, VERSION, settings
from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.api.analysisrun import AnalysisRunStatus, AnalysisType, RunPhase
from aiops.api.common import ConditionStatus
from aiops.api.conditions import ConditionType, Reason
from aiops.api.incident import AnalysisOptions
from aiops.controllers.common import kopf_emitter
from aiops.core import background, kube
from aiops.core.status import StatusBuilder, now_utc, parse_time, rfc3339, write
from aiops.inference import catalogue, pools
from aiops.inference.catalogue import ModelEntry
from aiops.inference.gateway import GatewayConfig
from aiops.runs import Context, fail_run
from aiops.settings import Settings

log = logging.getLogger(__name__)
POLL_S = 1.0
FINISHED = (RunPhase.SUCCEEDED.value, RunPhase.FAILED.value)


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


def routed(run: dict, cfg: Settings, incident: dict | None = None) -> catalogue.Route | None:
    """The catalogue model `run` goes to (aiops.inference.catalogue.route). A rootCause run's Incident counts
    (spec.analysis: persona, llm, model); it is read unless given."""
    spec = run.get("spec") or {}
    analysis = None
    if spec.get("type") == AnalysisType.ROOT_CAUSE and cfg.models is not None and not catalogue.assigned(spec, {}):
        if incident is None and spec.get("incidentRef"):
            incident = kube.get(INCIDENT, spec["incidentRef"]["name"], run["metadata"]["namespace"])
        try:
            analysis = AnalysisOptions.model_validate(((incident or {}).get("spec") or {}).get("analysis") or {})
        except ValidationError:
            analysis = None  # the rootCause executor says what is wrong with the Incident
    return catalogue.route(spec, cfg.models, analysis)


class Unserved(Exception):
    """The catalogue model cannot serve the run: the ModelReady reason, and what happened."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


async def execute_on_pool(body: kopf.Body, run_analysis: Callable[[dict, Settings], Awaitable[None]]) -> None:
    """Schedules the run on its catalogue model, waits for it, then hands it to `run_analysis` (against the
    operator-level endpoint instead when the model cannot serve and the run may fall back)."""
    cfg = settings.current()
    run = dict(body)
    pool = catalogue.assigned(run["spec"], run.get("status") or {})
    entry = cfg.models.get(pool) if cfg.models else None
    if entry is None:
        message = (
            cfg.models.unknown(pool)
            if cfg.models
            else f'spec.inference.pool: no model "{pool}" in the catalogue (known: none; set AIOPS_MODEL_CATALOGUE)'
        )
        await _call(fail_run, _context(), run, message)
        return
    chosen = await _call(routed, run, cfg)  # again, for what chose it (status.catalogueModel holds the model)
    named = chosen is not None and chosen.named
    how = f"chosen by {chosen.source if chosen is not None and chosen.model == pool else 'the catalogue defaults'}"
    fallback = None if named else cfg.llm
    key, used = _key(run), False
    try:
        if not await _admit(run, pool, entry):
            return
        try:
            pod = await _wait_for_pool(run, pool, entry, cfg) if entry.external is None else None
            model = await _call(_model, pool, entry, cfg)
            if fallback is not None and (problem := await _call(pools.unreachable, model)):
                raise Unserved(Reason.MODEL_UNREACHABLE, f"catalogue model {pool}: {problem}")
        except Unserved as why:
            if fallback is None:
                await _call(_give_up, run, pool, entry, cfg.namespace, why, named)
                return
            await _call(_fall_back, run, pool, entry, cfg.namespace, why, how, fallback)
            model = fallback
        else:
            used = entry.external is None
            await _call(_write, run, functools.partial(_serving, pool=pool, entry=entry, how=how, model=model, pod=pod))
        # Execution sees the model as the operator's own; spec.inference.pool is handled here.
        target = copy.deepcopy(_context().fresh(ANALYSIS_RUN, run))
        (target["spec"].get("inference") or {}).pop("pool", None)
        await run_analysis(target, _with_model(cfg, model))
    finally:
        active = pools.SCHEDULER.release(pool, key)
        if used:
            await _call(pools.touch, pool, cfg.namespace, now_utc(), active)


def _model(pool: str, entry: ModelEntry, cfg: Settings) -> GatewayConfig:
    try:
        return pools.gateway_config(pool, entry, cfg.namespace, cfg.llm)
    except ValueError as exc:  # its API key's Secret lacks the key
        raise Unserved(Reason.MODEL_UNREACHABLE, str(exc)) from None


def _serving(b: StatusBuilder, pool: str, entry: ModelEntry, how: str, model: GatewayConfig, pod: str | None) -> None:
    where = f"pool {pools.resource_name(pool)}, pod {pod or 'not visible'}" if entry.external is None else "external"
    b.status.pod = pod
    b.status.endpoint = model.base_url
    b.status.model = model.model
    message = f"catalogue model {pool} ({where}; {how}) serves the run at {model.base_url}"
    b.condition(ConditionType.MODEL_READY, ConditionStatus.TRUE, Reason.READY, message)


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


async def _wait_for_pool(run: dict, pool: str, entry: ModelEntry, cfg: Settings) -> str | None:
    """Scales the pool up and waits for a ready replica (WaitingForModel); the ready pod (None when none is
    visible). Unserved when the pool cannot become ready."""
    ns, name = cfg.namespace, pools.resource_name(pool)
    if missing := await _call(pools.missing_weights, entry, ns):
        raise Unserved(Reason.WEIGHTS_MISSING, f"pool {pool}: {missing}")
    try:
        deployment = await _call(pools.ensure, pool, entry, ns, now_utc())
    except ApiException as exc:
        raise Unserved(Reason.API_ERROR, f"cannot create pool {ns}/{name}: {exc.status} {exc.reason}") from None
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
            raise Unserved(Reason.TIMEOUT, f"pool {pool}: Deployment {ns}/{name} had no ready replica after "
                           f"{cfg.model_wait_s}s")  # fmt: skip
        await asyncio.sleep(POLL_S)
        deployment = await _call(pools.get_deployment, pool, ns)
        if deployment is None or not (deployment.get("spec") or {}).get("replicas"):
            deployment = await _call(pools.ensure, pool, entry, ns, now_utc())  # deleted or scaled down meanwhile
    pod = await _call(pools.ready_pod, pool, ns)
    log.info("pool %s ready (%s), run %s starts", pool, pod or "no pod visible", _key(run))
    return pod


def _give_up(run: dict, pool: str, entry: ModelEntry, ns: str, why: Unserved, named: bool) -> None:
    """The run fails with ModelReady=False and the reason."""
    message = why.message if named else f"{why.message}; no operator-level endpoint (AIOPS_LLM_BASE_URL) to use instead"

    def model_not_ready(b: StatusBuilder) -> None:
        b.condition(ConditionType.MODEL_READY, ConditionStatus.FALSE, why.reason, message, event="Warning")

    _write(run, model_not_ready)
    fail_run(_context(), _context().fresh(ANALYSIS_RUN, run), message)
    _leave(run, pool, entry, ns, why)


def _fall_back(run: dict, pool: str, entry: ModelEntry, ns: str, why: Unserved, how: str, llm: GatewayConfig) -> None:
    """The run goes to the operator-level endpoint, saying so: ModelReady=False with the reason, its endpoint."""
    message = (
        f"{why.message}; falling back from catalogue model {pool} ({how}) to the operator-level endpoint "
        f"{llm.base_url} (model {llm.model})"
    )

    def fell_back(b: StatusBuilder) -> None:
        b.status.pod = None
        b.status.endpoint = llm.base_url
        b.status.model = llm.model
        b.condition(ConditionType.MODEL_READY, ConditionStatus.FALSE, why.reason, message, event="Warning")

    _write(run, fell_back)
    log.warning("AnalysisRun %s: %s", _key(run), message)
    _leave(run, pool, entry, ns, why)


def _leave(run: dict, pool: str, entry: ModelEntry, ns: str, why: Unserved) -> None:
    """Frees the run's slot; the pool goes back to zero unless another run uses it (or it was never made)."""
    now = now_utc()
    if pools.SCHEDULER.release(pool, _key(run)) == 0 and not pools.SCHEDULER.active(pool):
        if entry.external is None and why.reason != Reason.API_ERROR:
            pools.scale_to_zero(pool, ns, now, f"run {_key(run)} gave up ({why.reason}) and no other run uses it")


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
    background.spawn(_sweep_forever(cfg), "aiops-pool-sweeper")
