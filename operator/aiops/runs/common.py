"""What every AnalysisRun executor shares: its context, failing a run, and starting an attempt.

An executor runs in a worker thread, writes status through the status subresource with a
StatusBuilder, and is safe to run again after an operator restart: a run found Running is simply
run again, with its attempt counted. Before its final writes an executor asks `still_ours`: a worker
(aiops.worker) that lost its claim on the run writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from aiops.api import ANALYSIS_RUN
from aiops.api.analysisrun import AnalysisRunSpec, AnalysisRunStatus, RunPhase
from aiops.clusters.access import ClusterAccess, ClusterAccessError, cluster_access
from aiops.clusters.prometheus import PrometheusSource
from aiops.core import kube
from aiops.core.status import Emit, StatusBuilder, write
from aiops.settings import Settings

log = logging.getLogger(__name__)
EmitFor = Callable[[dict], Emit]  # object -> emit(type, reason, message)


@dataclass(frozen=True)
class Context:
    """Where an executor writes (client), what it is configured with, its clock, its Event emitter, and its
    fence: whether this process still holds the run, asked right before an outcome is written."""

    client: kube.Client
    settings: Settings
    now: Callable[[], datetime]
    emit_for: EmitFor
    fence: Callable[[], bool] = lambda: True  # the operator that accepted a run is its only executor

    def builder(self, kind, obj: dict) -> StatusBuilder:
        # Events once the write went through: a run whose write failed is run again (controllers/analysisrun.py).
        return StatusBuilder(kind, obj, self.now(), self.emit_for(obj), defer=True)

    def fresh(self, kind, obj: dict) -> dict:
        """The object as stored now (after our own writes changed its resourceVersion and status)."""
        meta = obj["metadata"]
        return self.client.get(kind, meta["name"], meta.get("namespace")) or obj


def still_ours(ctx: Context, run: dict) -> bool:
    """The fence before an outcome is written; False (and a log line) when the claim on the run was lost."""
    if ctx.fence():
        return True
    meta = run["metadata"]
    log.warning("AnalysisRun %s/%s: this worker lost its claim; abandoned without writing", meta["namespace"],
                meta["name"])  # fmt: skip
    return False


def fail_run(ctx: Context, run: dict, message: str) -> None:
    if not still_ours(ctx, run):
        return
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.error = message[:4096]
    b.status.completed_at = b.now
    b.phase(RunPhase.FAILED, message[:1024], event="Warning")
    write(ctx.client, b, run)


def start_attempt(ctx: Context, run: dict, message: str) -> dict:
    """Running, with the attempt counted; the run as stored now."""
    b: StatusBuilder[AnalysisRunStatus] = ctx.builder(ANALYSIS_RUN, run)
    b.status.attempts = (b.status.attempts or 0) + 1
    b.status.started_at = b.now
    b.phase(RunPhase.RUNNING, message)
    return write(ctx.client, b, run)  # the patch's answer is the run as stored now


def access_of(ctx: Context, run: dict, verb: str = "analyse") -> tuple[AnalysisRunSpec, ClusterAccess] | None:
    """The run's spec and how to reach its cluster (spec.clusterRef, else the operator's own); None when either
    cannot be had, after failing the run saying why ("cannot <verb>: ...")."""
    try:
        spec = AnalysisRunSpec.model_validate(run.get("spec") or {})
        return spec, cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, ctx.settings)
    except (ValidationError, ClusterAccessError) as exc:
        message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        fail_run(ctx, run, f"cannot {verb}: {message}")
        return None


def prometheus_of(ctx: Context, run: dict) -> tuple[AnalysisRunSpec, PrometheusSource] | None:
    """The run's spec and the Prometheus of its cluster (spec.clusterRef, else AIOPS_PROMETHEUS_URL); None when
    either is missing, after failing the run saying which."""
    found = access_of(ctx, run)
    if found is None:
        return None
    spec, access = found
    if access.prometheus is None:
        where = f"ManagedCluster {spec.cluster_ref.name}'s endpoints.prometheus" if spec.cluster_ref else (
            "AIOPS_PROMETHEUS_URL")  # fmt: skip
        fail_run(ctx, run, f"cannot analyse: no Prometheus endpoint is configured ({where})")
        return None
    return spec, access.prometheus
