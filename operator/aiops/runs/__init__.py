"""AnalysisRun executors, one module per run type; `execute` dispatches by spec.type.

rootcause     the diagnosis pipeline, recorded on the Incident and the run
sopanalysis   a runbook's text -> an SOP draft and findings
anomaly       PromQL queries -> detectors -> anomalies, and an optional Incident
"""

from __future__ import annotations

from aiops.api.analysisrun import AnalysisType
from aiops.runs import anomaly, rootcause, sopanalysis
from aiops.runs.common import Context, fail_run

EXECUTORS = {
    AnalysisType.ROOT_CAUSE.value: rootcause.execute,
    AnalysisType.SOP_ANALYSIS.value: sopanalysis.execute,
    AnalysisType.ANOMALY_DETECTION.value: anomaly.execute,
}

__all__ = ["EXECUTORS", "Context", "execute", "fail_run"]


def execute(ctx: Context, run: dict) -> None:
    """One attempt at a run of a type with an executor (the daemon's filter names them)."""
    EXECUTORS[run["spec"].get("type")](ctx, run)
