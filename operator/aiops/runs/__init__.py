"""AnalysisRun executors, one module per run type; `execute` dispatches by spec.type.

rootcause     the diagnosis pipeline, recorded on the Incident and the run
sopanalysis   a runbook's text -> an SOP draft and findings
anomaly       PromQL queries -> detectors -> anomalies, and an optional Incident
query         a question -> the agent with the read-only tools -> a cited answer
capacityforecast  Prometheus history -> forecasts and times to exhaustion
changereview  a proposed workload -> what it changes, its risk and findings (aiops.changes)
lease         claims on runs for `aiops worker` (a Lease per run)
"""

from __future__ import annotations

from aiops.api.analysisrun import AnalysisType, RunPhase
from aiops.api.conditions import ConditionType, Reason
from aiops.core.status import find_condition
from aiops.inference import catalogue
from aiops.runs import anomaly, capacityforecast, changereview, query, rootcause, sopanalysis
from aiops.runs.common import Context, fail_run

EXECUTORS = {
    AnalysisType.ROOT_CAUSE.value: rootcause.execute,
    AnalysisType.SOP_ANALYSIS.value: sopanalysis.execute,
    AnalysisType.ANOMALY_DETECTION.value: anomaly.execute,
    AnalysisType.QUERY.value: query.execute,
    AnalysisType.CAPACITY_FORECAST.value: capacityforecast.execute,
    AnalysisType.CHANGE_REVIEW.value: changereview.execute,
}

__all__ = ["EXECUTORS", "Context", "claimable", "execute", "fail_run"]
FINISHED = frozenset({RunPhase.SUCCEEDED.value, RunPhase.FAILED.value})


def execute(ctx: Context, run: dict) -> None:
    """One attempt at a run of a type with an executor (the daemon's filter names them)."""
    EXECUTORS[run["spec"].get("type")](ctx, run)


def claimable(run: dict) -> bool:
    """What a worker may claim: accepted, unfinished, of a type with an executor, on the operator's own model
    (a run on a catalogue model, named or the catalogue's default, is scheduled by the operator:
    aiops.controllers.pools)."""
    spec, status = run.get("spec") or {}, run.get("status") or {}
    accepted = (find_condition(status.get("conditions") or [], ConditionType.READY) or {}).get("reason")
    return (
        accepted == Reason.ACCEPTED
        and status.get("phase") not in FINISHED
        and spec.get("type") in EXECUTORS
        and not catalogue.assigned(spec, status)
    )
