"""`aiops analyze BUNDLE`: diagnose a cluster from a support bundle, offline, with the live pipeline.

Each target (the one named, or what `triage` finds broken, at most `max_targets`) is diagnosed by
`pipeline.diagnose_incident` as if an Incident had been filed for it at the moment the bundle was taken,
reading the bundle through `source.access`: the same collectors, analyzers, log templates, redaction and,
with a model configured, the same gateway. The outcome per target is the Diagnosis an Incident's status
would hold, with its evidence gaps; `to_dict` and `report` render the whole analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiops.api.incident import AnalysisOptions, IncidentSpec, Severity, TargetKind, WorkloadReference
from aiops.bundles import reader, source, triage
from aiops.bundles.reader import Snapshot
from aiops.clusters.access import ClusterAccess
from aiops.diagnosis import pipeline
from aiops.diagnosis.evidence import Target
from aiops.settings import Settings

MAX_TARGETS = 10  # diagnoses per bundle when no target is named; the rest are listed, not diagnosed
MAX_SYMPTOMS = 8  # per target, in the description the model sees and in the report
NO_METRICS = "prometheus: a support bundle holds no metrics"


@dataclass
class TargetDiagnosis:
    target: Target
    symptoms: list[str]
    result: pipeline.PipelineResult

    @property
    def key(self) -> str:
        return triage.key(self.target)


@dataclass
class Analysis:
    bundle: dict[str, Any]  # reader.summary
    diagnoses: list[TargetDiagnosis] = field(default_factory=list)
    not_diagnosed: list[triage.Problem] = field(default_factory=list)  # broken, over max_targets
    max_targets: int = MAX_TARGETS


def analyze(
    snap: Snapshot, settings: Settings, target: Target | None = None, max_targets: int = MAX_TARGETS
) -> Analysis:
    """The named target's diagnosis, or those of the broken targets the bundle shows, worst first."""
    access = source.access(snap)
    problems = triage.find(snap)
    if target is not None:
        symptoms = next((p.symptoms for p in problems if p.key == triage.key(target)), [])
        todo, rest = [(target, symptoms)], []
    else:
        todo, rest = [(p.target, p.symptoms) for p in problems[:max_targets]], problems[max_targets:]
    analysis = Analysis(reader.summary(snap), not_diagnosed=rest, max_targets=max_targets)
    for t, symptoms in todo:
        result = diagnose_target(snap, access, t, symptoms, settings)
        analysis.diagnoses.append(TargetDiagnosis(t, symptoms, result))
    return analysis


def diagnose_target(
    snap: Snapshot, access: ClusterAccess, target: Target, symptoms: list[str], settings: Settings
) -> pipeline.PipelineResult:
    """One target's diagnosis, through the Incident path: a spec as an engineer would file it."""
    taken = f" taken at {snap.captured_at:%Y-%m-%dT%H:%M:%SZ}" if snap.captured_at else ""
    seen = "; ".join(symptoms[:MAX_SYMPTOMS]) or "none read off its status"
    spec = IncidentSpec(
        title=f"{target.kind} {target.name} is unhealthy",
        description=f"Offline analysis of a {snap.layout}{taken}. Symptoms in the bundle: {seen}."[:16384],
        severity=Severity.HIGH if symptoms else Severity.WARNING,
        target=WorkloadReference(
            kind=target.kind, name=target.name, namespace=None if target.kind == "Node" else target.namespace
        ),
        analysis=AnalysisOptions(llm=settings.llm is not None),
    )
    incident = {"metadata": {"name": "support-bundle", "namespace": target.namespace}, "spec": spec.wire()}
    return diagnose_incident(incident, spec, settings, snap, access)


def diagnose_incident(
    incident: dict,
    spec: IncidentSpec,
    settings: Settings,
    snap: Snapshot,
    access: ClusterAccess | None = None,
    withheld: str | None = None,
) -> pipeline.PipelineResult:
    """An Incident diagnosed from a bundle instead of its cluster, at the bundle's time (so its window, unless
    the spec sets one, ends when the bundle was taken)."""
    now = snap.captured_at or datetime.now(UTC)
    result = pipeline.diagnose_incident(incident, spec, settings, now, now, access or source.access(snap), withheld)
    # The pipeline's gap for an unconfigured Prometheus points at settings that cannot help here.
    result.evidence_gaps = [NO_METRICS if g.startswith("prometheus:") else g for g in result.evidence_gaps]
    return result


def parse_target(text: str) -> Target:
    """Kind/namespace/name, or Node/name (cluster-scoped); the kind as `TargetKind` spells it, any case."""
    kinds = {k.value.lower(): k.value for k in TargetKind}
    parts = text.split("/")
    kind = kinds.get(parts[0].lower())
    cluster_scoped = kind in ("Node", "Namespace")
    if kind is None or len(parts) != (2 if cluster_scoped else 3) or not all(parts):
        raise ValueError(
            f"--target {text!r}: expected Kind/namespace/name (or Node/name, Namespace/name), Kind one of "
            f"{', '.join(kinds.values())}"
        )
    if kind == "Node":
        return Target("Node", parts[1], triage.CLUSTER_SCOPED_NAMESPACE)
    if kind == "Namespace":
        return Target("Namespace", parts[1], parts[1])
    return Target(kind, parts[2], parts[1])


def to_dict(analysis: Analysis) -> dict[str, Any]:
    """The analysis as data: each target's Diagnosis exactly as an Incident's status.diagnosis holds it."""
    return {
        "bundle": analysis.bundle,
        "diagnoses": [
            {
                "target": d.key,
                "symptoms": d.symptoms,
                "diagnosis": d.result.diagnosis.wire(),
                "evidenceGaps": d.result.evidence_gaps,
                "durationSeconds": d.result.duration_s,
            }
            for d in analysis.diagnoses
        ],
        "notDiagnosed": [{"target": p.key, "symptoms": p.symptoms} for p in analysis.not_diagnosed],
    }


def report(analysis: Analysis) -> str:
    """The analysis for a person: what the bundle held, then per target its root cause, suspects with their
    evidence, and the evidence that was missing."""
    b = analysis.bundle
    kinds = ", ".join(f"{kind} {n}" for kind, n in b["byKind"].items()) or "none"
    out = [
        f"Bundle: {b['source']} ({b['layout']}), taken at {b['capturedAt'] or 'an unknown time'}",
        f"  {b['objects']} objects ({kinds}); {b['events']} events ({b['warningEvents']} Warning); "
        f"{b['logFiles']} container logs; {b['filesRead']} files read of {b['entries']} entries",
        f"  namespaces: {', '.join(b['namespaces']) or 'none'}",
    ]
    if not analysis.diagnoses:
        out.append("\nNothing broken found: no failing pod, workload, Job or node, and no Warning event.")
    more = len(analysis.not_diagnosed)
    if more:
        out.append(
            f"\n{len(analysis.diagnoses) + more} broken targets found; the worst {len(analysis.diagnoses)} diagnosed "
            f"(at most {analysis.max_targets}; name one with --target): not diagnosed: "
            + ", ".join(p.key for p in analysis.not_diagnosed[:20])
            + (" ..." if more > 20 else "")
        )
    for i, d in enumerate(analysis.diagnoses, 1):
        out += ["", *_target_report(i, d)]
    return "\n".join(out) + "\n"


def _target_report(i: int, d: TargetDiagnosis) -> list[str]:
    diag = d.result.diagnosis
    evidence = {e.id: e.summary for e in diag.evidence}
    out = [f"== {i}. {d.key} =="]
    if d.symptoms:
        shown = d.symptoms[:MAX_SYMPTOMS]
        extra = f" (+{len(d.symptoms) - len(shown)} more)" if len(d.symptoms) > len(shown) else ""
        out.append("Symptoms: " + "; ".join(shown) + extra)
    out.append(f"Root cause ({diag.confidence}% confidence, {diag.execution_status}, {diag.model}):")
    out.append(f"  {diag.root_cause}")
    if diag.mitigation:
        out.append(f"Mitigation: {diag.mitigation}")
    if diag.suspects:
        out.append("Suspects:")
    for n, s in enumerate(diag.suspects, 1):
        out.append(f"  {n}. {s.resource}  {s.failure_mode}  {s.score:.2f}")
        out += [f"     - {eid}: {evidence[eid]}" for eid in s.evidence if eid in evidence]
    if d.result.evidence_gaps:
        out.append("Evidence gaps:")
        out += [f"  - {g}" for g in d.result.evidence_gaps]
    return out
