"""The operator's own records: Incidents, their diagnoses, and AnalysisRuns, as an engineer reads them.

`k8s_get incident NAME` gives the raw object; these give what matters about it in a few lines, so a
model (or a person through MCP) spends its context on the incident, not on bookkeeping.
"""

from __future__ import annotations

from datetime import UTC, datetime

import yaml
from pydantic import Field

from aiops.api import ANALYSIS_RUN, INCIDENT
from aiops.core import kube
from aiops.tools.context import Args, ToolContext
from aiops.tools.kubernetes import NAME, age
from aiops.tools.registry import Tool
from aiops.tools.result import ToolError, ToolResult


def _read(ctx: ToolContext, kind, namespace: str, name: str) -> dict:
    if why := ctx.refuse_namespace(namespace):
        raise ToolError(why)
    obj = kube.ApiServer(ctx.api).get(kind, name, namespace)
    if obj is None:
        raise ToolError(f"{kind.kind} {namespace}/{name} does not exist")
    return obj


class ListArgs(Args):
    namespace: str | None = Field(default=None, max_length=63, description="Omit for all namespaces.")
    phase: str | None = Field(default=None, max_length=32, description="Only this phase, e.g. Diagnosed, Failed.")
    limit: int = Field(default=50, ge=1, le=500)


def _listed(ctx: ToolContext, kind, args: ListArgs, line) -> ToolResult:
    tool = f"{kind.plural}_list".replace("analysisruns", "analysis_runs")
    if why := ctx.refuse_namespace(args.namespace):
        raise ToolError(why)
    objs = kube.ApiServer(ctx.api).list(kind, args.namespace)
    if args.phase:
        objs = [o for o in objs if (o.get("status") or {}).get("phase", "").lower() == args.phase.lower()]
    if not objs:
        return ToolResult.empty(tool, f"no {kind.plural}" + (f" in phase {args.phase}" if args.phase else ""))
    objs.sort(key=lambda o: o["metadata"].get("creationTimestamp") or "", reverse=True)
    now = datetime.now(UTC)
    rows = [
        f"{o['metadata']['namespace']}/{o['metadata']['name']}  {line(o)}  "
        f"age {age(o['metadata'].get('creationTimestamp'), now)}"
        for o in objs[: args.limit]
    ]
    note = f"the newest {args.limit} of {len(objs)} shown" if len(objs) > args.limit else None
    return ToolResult.ok(tool, "\n".join(rows), note)


def incidents_list(ctx: ToolContext, args: ListArgs) -> ToolResult:
    def line(o: dict) -> str:
        spec, status = o.get("spec") or {}, o.get("status") or {}
        return f"{status.get('phase', 'New')}  {spec.get('severity')}  {spec.get('title')}"

    return _listed(ctx, INCIDENT, args, line)


def runs_list(ctx: ToolContext, args: ListArgs) -> ToolResult:
    def line(o: dict) -> str:
        spec, status = o.get("spec") or {}, o.get("status") or {}
        ref = (spec.get("incidentRef") or {}).get("name")
        return f"{spec.get('type')}  {status.get('phase', 'Pending')}" + (f"  incident {ref}" if ref else "")

    return _listed(ctx, ANALYSIS_RUN, args, line)


class ObjectArgs(Args):
    namespace: str = Field(max_length=63)
    name: str = Field(min_length=1, max_length=253, pattern=NAME)


def incident_get(ctx: ToolContext, args: ObjectArgs) -> ToolResult:
    obj = _read(ctx, INCIDENT, args.namespace, args.name)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    diagnosis, sop = status.get("diagnosis") or {}, status.get("sop") or {}
    lines = [
        f"Incident {args.namespace}/{args.name}: {spec.get('title')}",
        f"severity {spec.get('severity')}  phase {status.get('phase', 'New')}  source {spec.get('source')}",
        f"target {spec.get('target')}  cluster {(spec.get('clusterRef') or {}).get('name', 'local')}",
        f"detected {status.get('detectedAt')}  diagnosed {status.get('diagnosedAt')}  "
        f"resolved {status.get('resolvedAt')}",
    ]
    if spec.get("description"):
        lines.append(f"description: {spec['description']}")
    if diagnosis:
        lines.append(
            f"root cause ({diagnosis.get('confidence')}%, {diagnosis.get('executionStatus')}): "
            f"{diagnosis.get('rootCause')}"
        )
    if sop:
        steps = ", ".join(f"{s.get('id')}={s.get('state')}" for s in sop.get("steps") or [])
        lines.append(f"SOP {sop.get('name')}: current step {sop.get('current')}; steps {steps}")
    approvals = spec.get("approvals") or []
    lines.append("approvals: " + (", ".join(f"{a.get('step')} by {a.get('approvedBy')}" for a in approvals) or "none"))
    for c in status.get("conditions") or []:
        lines.append(f"condition {c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message', '')[:200]}")
    for t in (status.get("timeline") or [])[-10:]:
        lines.append(f"timeline {t.get('time')} {t.get('reason') or t.get('phase') or ''} {t.get('message', '')[:200]}")
    if status.get("evidenceGaps"):
        lines.append(f"evidence gaps: {'; '.join(status['evidenceGaps'])}")
    return ToolResult.ok("incident_get", "\n".join(lines))


def incident_diagnosis(ctx: ToolContext, args: ObjectArgs) -> ToolResult:
    obj = _read(ctx, INCIDENT, args.namespace, args.name)
    diagnosis = (obj.get("status") or {}).get("diagnosis")
    if not diagnosis:
        phase = (obj.get("status") or {}).get("phase", "New")
        return ToolResult.empty(
            "incident_diagnosis", f"Incident {args.namespace}/{args.name} has no diagnosis yet (phase {phase})"
        )
    lines = [f"root cause ({diagnosis.get('confidence')}% confidence): {diagnosis.get('rootCause')}"]
    for key in ("executionStatus", "model", "promptVersion", "reasoning", "mitigation", "prevention", "recommendation"):
        if diagnosis.get(key):
            lines.append(f"{key}: {diagnosis[key]}")
    for rank, s in enumerate(diagnosis.get("suspects") or [], 1):
        lines.append(
            f"suspect {rank}: {s.get('resource')} {s.get('failureMode')} score {s.get('score')}: {s.get('reason')} "
            f"(evidence {', '.join(s.get('evidence') or []) or '-'})"
        )
    for e in diagnosis.get("evidence") or []:
        lines.append(f"evidence {e.get('id')} [{e.get('source')}]: {e.get('summary')}")
    return ToolResult.ok("incident_diagnosis", "\n".join(lines))


def run_get(ctx: ToolContext, args: ObjectArgs) -> ToolResult:
    obj = _read(ctx, ANALYSIS_RUN, args.namespace, args.name)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    shown = {
        "spec": spec,
        "status": {k: v for k, v in status.items() if k not in ("conditions",)},
        "conditions": [
            f"{c.get('type')}={c.get('status')} {c.get('reason')}: {c.get('message', '')}"
            for c in status.get("conditions") or []
        ],
    }
    return ToolResult.ok("analysis_run_get", yaml.safe_dump(shown, sort_keys=False, width=160))


TOOLS = (
    Tool("incidents_list", "Incidents, newest first: phase, severity, title, age.", ListArgs, incidents_list, 12_000),
    Tool(
        "incident_get",
        "One Incident in a few lines: title, severity, phase, target, root cause, SOP steps, approvals, conditions, "
        "the last timeline entries.",
        ObjectArgs,
        incident_get,
        8_000,
    ),
    Tool(
        "incident_diagnosis",
        "An Incident's diagnosis (status.diagnosis): root cause, confidence, reasoning, mitigation, ranked "
        "suspects and the evidence they cite.",
        ObjectArgs,
        incident_diagnosis,
        16_000,
    ),
    Tool("analysis_runs_list", "AnalysisRuns, newest first: type, phase, incident, age.", ListArgs, runs_list, 12_000),
    Tool("analysis_run_get", "One AnalysisRun: spec, status and result, conditions.", ObjectArgs, run_get, 12_000),
)
