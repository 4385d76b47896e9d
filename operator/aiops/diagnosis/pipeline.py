"""The root-cause pipeline: collect evidence, rank suspects, redact, ask the model, decide.

    Incident -> target and window -> collectors -> analyzers (+ log templates) -> redaction
             -> LLM gateway (validated, cited) -> Diagnosis
                 \\-> no model, or no valid answer: the analyzers' own diagnosis (RECOVERED_FALLBACK)

Plain functions over plain data; the AnalysisRun reconciler runs `diagnose_incident` in a worker
thread and writes the result into status.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiops import knowledge
from aiops.api.incident import Diagnosis, EvidenceItem, EvidenceSource, ExecutionStatus, IncidentSpec, Suspect
from aiops.clusters.access import ClusterAccess, ClusterAccessError, cluster_access
from aiops.diagnosis import analyzers, logtemplates, rollout
from aiops.diagnosis.collectors import kubernetes as k8s_collector
from aiops.diagnosis.collectors import logs as logs_collector
from aiops.diagnosis.collectors import prometheus as prom_collector
from aiops.diagnosis.collectors import traces as traces_collector
from aiops.diagnosis.evidence import EvidenceBundle, Target
from aiops.diagnosis.redaction import Redactor
from aiops.inference import gateway
from aiops.inference.prompts import PROMPT_VERSION, IncidentContext
from aiops.settings import Settings
from aiops.stores import history

DEFAULT_LOOKBACK = timedelta(hours=1)
LOG_TEMPLATES_PER_CONTAINER = 8
MAX_EVIDENCE_IN_STATUS = 30
SIMILAR_PAST = 3  # past incidents from the history shown to the model
PAST_CORRECTIONS = 3  # corrected diagnoses of similar past incidents shown to the model
ANALYZERS_ONLY = "deterministic-analyzers"
TIE_BAND = 0.1  # suspects scoring this close to the best one are a near tie the model may break
# The analyzers' score scale (diagnosis/analyzers/__init__.py): direct proof from 0.85, strong correlation
# from 0.5, weak below. A near tie is within one tier: correlation never outranks proof on a model's word.
TIERS = (0.85, 0.5)
# Alert labels that name a workload, most specific first (kube-state-metrics conventions).
TARGET_LABELS = (
    ("pod", "Pod"),
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("job_name", "Job"),
    ("cronjob", "CronJob"),
    ("persistentvolumeclaim", "PersistentVolumeClaim"),
    ("node", "Node"),
    ("service", "Service"),
)


class PipelineError(Exception):
    """The Incident cannot be analysed as written (no target, an unusable cluster reference)."""


@dataclass
class PipelineResult:
    diagnosis: Diagnosis
    redaction: dict[str, int] = field(default_factory=dict)
    evidence_gaps: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_attempts: int = 0
    llm_error: str | None = None
    llm_status: str | None = None  # the gateway's: completed | invalid | unreachable
    endpoint: str | None = None
    duration_s: float = 0.0


def target_from_labels(labels: dict[str, str], namespace: str) -> Target | None:
    """The workload a label set (an alert's, a series') names, most specific first; None if it names none."""
    for label, kind in TARGET_LABELS:
        if labels.get(label):
            return Target(kind, labels[label], labels.get("namespace") or namespace)
    return None


def resolve_target(spec: IncidentSpec, namespace: str) -> Target:
    """spec.target, else the workload the alert's labels name."""
    if spec.target:
        return Target(spec.target.kind, spec.target.name, spec.target.namespace or namespace)
    found = target_from_labels(spec.alert.labels if spec.alert else {}, namespace)
    if found is not None:
        return found
    raise PipelineError(
        "spec.target is not set and the alert's labels name no workload "
        f"(looked for {', '.join(label for label, _ in TARGET_LABELS)}): set spec.target"
    )


def resolve_window(spec: IncidentSpec, detected_at: datetime, now: datetime) -> tuple[datetime, datetime]:
    window = spec.window
    if window and window.start:
        return window.start, window.end or now
    lookback = timedelta(minutes=window.lookback_minutes) if window and window.lookback_minutes else DEFAULT_LOOKBACK
    return min(detected_at, now) - lookback, now


def gather(
    target: Target, start: datetime, end: datetime, access: ClusterAccess, detected_at: datetime | None = None
) -> EvidenceBundle:
    bundle = EvidenceBundle(target, start, end, detected_at)
    k8s_collector.collect(access.api, bundle, access.cache)
    if access.prometheus:
        prom_collector.collect(access.prometheus, bundle)
    else:
        bundle.missing.append("prometheus: no endpoint configured (AIOPS_PROMETHEUS_URL or the ManagedCluster's)")
    if access.traces:
        traces_collector.collect(access.traces, bundle)
    if access.logs:
        logs_collector.collect(access.logs, bundle)
    return bundle


def log_evidence(bundle: EvidenceBundle) -> list[EvidenceItem]:
    """The most frequent log templates of each container, so the model sees patterns, not pages."""
    items = []
    for n, (source, lines) in enumerate(sorted(bundle.logs.items())):
        templates = logtemplates.summarize(lines, max_templates=LOG_TEMPLATES_PER_CONTAINER)
        for i, t in enumerate(templates):
            seen = f", {t.first_seen:%H:%M:%S}..{t.last_seen:%H:%M:%S}" if t.first_seen and t.last_seen else ""
            items.append(
                EvidenceItem(
                    id=f"log-{n}-{i}",
                    source=EvidenceSource.LOGS,
                    summary=f"{source}: {t.count}x{seen}: {t.template}"[:2048],
                )
            )
    return items


def fallback_diagnosis(
    suspects: list[Suspect], evidence: list[EvidenceItem], why: str, status: ExecutionStatus
) -> Diagnosis:
    """The analyzers' diagnosis: the top suspect, said plainly, with the reason no model answered."""
    if not suspects:
        return Diagnosis(
            root_cause=f"No cause found: no analyzer matched the evidence, and {why}.",
            confidence=0,
            execution_status=ExecutionStatus.FAILED,
            model=ANALYZERS_ONLY,
            evidence=evidence[:MAX_EVIDENCE_IN_STATUS],
        )
    top = suspects[0]
    ranking = "; ".join(f"{i}. {s.resource} {s.failure_mode} ({s.score:.2f})" for i, s in enumerate(suspects[:5], 1))
    cited = {eid for s in suspects[:5] for eid in s.evidence}
    return Diagnosis(
        root_cause=f"{top.resource}: {top.failure_mode}. {top.reason}"[:2048],
        reasoning=f"From the deterministic analyzers alone ({why}). Ranked suspects: {ranking}."[:8192],
        mitigation=top.mitigation,
        confidence=round(top.score * 100),
        execution_status=status,
        evidence=[e for e in evidence if e.id in cited][:MAX_EVIDENCE_IN_STATUS],
        suspects=suspects[:10],
        model=ANALYZERS_ONLY,
    )


def tier(score: float) -> int:
    return sum(score >= floor for floor in TIERS)


def model_order(answer: gateway.ModelAnswer, suspects: list[Suspect]) -> tuple[list[Suspect], str | None]:
    """The analyzers' ranking, with the model's first choice moved to the top only when the evidence lets it.

    The model may break a near tie: its first suspect goes first when it is one of the analyzers' suspects,
    in the same tier of the score scale as the best one (TIERS) and within TIE_BAND of it, and the answer
    cites at least one evidence item of that suspect.
    Otherwise the ranking stands and the second value says why the model's choice was not taken. Suspects the
    model named that no analyzer found follow the analyzers' (they carry no evidence of their own).
    """
    known = {(s.resource, s.failure_mode): s for s in suspects}
    extra = [
        Suspect(resource=ms.resource, failure_mode=ms.failure_mode, reason=ms.reason,
                score=round(min(s.score for s in suspects) * 0.9 if suspects else 0.1, 3))
        for ms in answer.suspects if (ms.resource, ms.failure_mode) not in known
    ]  # fmt: skip
    extra = list({(s.resource, s.failure_mode): s for s in extra}.values())
    if not answer.suspects or not suspects:
        return suspects + extra, None
    first = answer.suspects[0]
    pick = known.get((first.resource, first.failure_mode))
    best = suspects[0]
    if pick is None:
        return (
            suspects + extra,
            f"the model's first suspect {first.resource} {first.failure_mode} is not in the evidence",
        )
    if pick is best:
        return suspects + extra, None
    if best.score - pick.score > TIE_BAND or tier(best.score) != tier(pick.score):
        why = (
            f"the model put {pick.resource} {pick.failure_mode} ({pick.score:.2f}) first, but the evidence ranks "
            f"{best.resource} {best.failure_mode} ({best.score:.2f}) clearly higher"
        )
        return suspects + extra, why
    if not set(answer.evidence) & set(pick.evidence):
        return suspects + extra, f"the model put {pick.resource} first without citing its evidence"
    return [pick] + [s for s in suspects if s is not pick] + extra, None


def model_diagnosis(
    answer: gateway.ModelAnswer, suspects: list[Suspect], evidence: list[EvidenceItem], model: str
) -> Diagnosis:
    """The model's answer as a Diagnosis, on the analyzers' ranking (model_order). When the model's first
    choice is overruled, the root cause is the analyzers' top suspect and the model's words stay in the
    reasoning, with the reason it was overruled."""
    ranked, overruled = model_order(answer, suspects)
    cited = set(answer.evidence) | ({eid for eid in ranked[0].evidence} if overruled else set())
    root_cause, reasoning, confidence = answer.root_cause, answer.reasoning, answer.confidence
    if overruled:
        top = ranked[0]
        root_cause = f"{top.resource}: {top.failure_mode}. {top.reason}"[:2048]
        reasoning = f"Kept the analyzers' ranking: {overruled}. The model said: {answer.root_cause} {answer.reasoning}"
        confidence = min(confidence, round(top.score * 100))
    return Diagnosis(
        root_cause=root_cause,
        reasoning=reasoning[:8192],
        mitigation=answer.mitigation if not overruled else (ranked[0].mitigation or answer.mitigation),
        prevention=answer.prevention,
        recommendation=answer.recommendation,
        confidence=confidence,
        execution_status=ExecutionStatus.COMPLETED,
        evidence=[e for e in evidence if e.id in cited][:MAX_EVIDENCE_IN_STATUS],
        suspects=ranked[:10],
        model=model,
        prompt_version=PROMPT_VERSION,
    )


def redacted(
    redactor: Redactor, suspects: list[Suspect], evidence: list[EvidenceItem], context: IncidentContext
) -> tuple[list[Suspect], list[EvidenceItem], IncidentContext]:
    """Everything that reaches the model passes through one Redactor, so placeholders stay consistent."""
    r = redactor.redact
    return (
        [
            s.model_copy(update={"reason": r(s.reason), "mitigation": r(s.mitigation) if s.mitigation else None})
            for s in suspects
        ],
        [e.model_copy(update={"summary": r(e.summary)}) for e in evidence],
        IncidentContext(
            title=r(context.title),
            severity=context.severity,
            target=context.target,
            description=r(context.description) if context.description else None,
            window=context.window,
            alert_labels={k: r(v) for k, v in context.alert_labels.items()},
            similar=[r(line) for line in context.similar],
            corrections=[r(line) for line in context.corrections],
        ),
    )


def diagnose_incident(
    incident: dict,
    spec: IncidentSpec,
    settings: Settings,
    detected_at: datetime,
    now: datetime,
    access: ClusterAccess | None = None,
    withheld: str | None = None,
    record: rollout.Record | None = None,
) -> PipelineResult:
    """The diagnosis of one Incident; `access` is how to read its cluster (default: from clusterRef); `withheld`
    says why no model may be called now (the kill switch); `record` takes the model trials (default: the history)."""
    started = time.monotonic()
    namespace = incident["metadata"]["namespace"]
    target = resolve_target(spec, namespace)
    start, end = resolve_window(spec, detected_at, now)
    if access is None:
        try:
            access = cluster_access(spec.cluster_ref.name if spec.cluster_ref else None, settings)
        except ClusterAccessError as exc:
            raise PipelineError(str(exc)) from None
    bundle = gather(target, start, end, access, detected_at)
    suspects, evidence, errors = analyzers.analyze(bundle)
    evidence = evidence + log_evidence(bundle)
    gaps = (bundle.missing + errors)[:20]
    result = PipelineResult(diagnosis=None, evidence_gaps=gaps)  # type: ignore[arg-type]

    llm_wanted = not (spec.analysis and spec.analysis.llm is False)
    if not llm_wanted:
        result.diagnosis = fallback_diagnosis(
            suspects, evidence, "the Incident asks for no model", ExecutionStatus.COMPLETED
        )
    elif settings.llm is None:
        result.diagnosis = fallback_diagnosis(
            suspects, evidence, "no model is configured (AIOPS_LLM_BASE_URL)", ExecutionStatus.RECOVERED_FALLBACK
        )
    elif withheld:
        result.diagnosis = fallback_diagnosis(
            suspects, evidence, f"the model was not called: {withheld}", ExecutionStatus.RECOVERED_FALLBACK
        )
    elif not evidence:
        result.diagnosis = fallback_diagnosis(
            suspects, evidence, "there was no evidence to show a model", ExecutionStatus.RECOVERED_FALLBACK
        )
    else:
        config = settings.llm
        if spec.analysis and spec.analysis.model:
            config = gateway.GatewayConfig(**{**config.__dict__, "model": spec.analysis.model})
        context = IncidentContext(
            title=spec.title,
            severity=str(spec.severity),
            target=f"{target.kind}/{target.namespace}/{target.name}",
            description=spec.description,
            window=f"{start:%Y-%m-%dT%H:%M:%SZ} .. {end:%Y-%m-%dT%H:%M:%SZ}",
            alert_labels=dict(spec.alert.labels) if spec.alert else {},
            similar=[
                p.summary()
                # Hybrid search (full-text and embeddings) over the past incidents with their outcome.
                for p in knowledge.similar_incidents(
                    f"{spec.title} {spec.description or ''}", SIMILAR_PAST, exclude_uid=incident["metadata"].get("uid")
                )
            ],
            corrections=[
                c.correction()
                for c in history.corrections(
                    f"{spec.title} {spec.description or ''}", PAST_CORRECTIONS, incident["metadata"].get("uid")
                )
            ],
        )
        redactor = Redactor()
        safe_suspects, safe_evidence, safe_context = redacted(redactor, suspects, evidence, context)
        ask = functools.partial(
            gateway.diagnose,
            persona=spec.analysis.persona if spec.analysis else None,
            incident=safe_context,
            suspects=safe_suspects,
            evidence=safe_evidence,
        )
        trials = rollout.Trials(settings, incident, config, bool(spec.analysis and spec.analysis.model), record)
        answer = trials.ask(ask)  # a canary's share: the candidate's answer, unless it cannot give one
        config = trials.config
        result.redaction = redactor.report()
        result.prompt_tokens, result.completion_tokens = answer.prompt_tokens, answer.completion_tokens
        result.llm_attempts, result.endpoint, result.llm_status = answer.attempts, config.base_url, answer.status
        if answer.status == "completed" and answer.answer is not None:
            # Placeholders stay in status: it is readable by more people than the Secrets were.
            result.diagnosis = model_diagnosis(answer.answer, suspects, safe_evidence, trials.label)
        else:
            result.llm_error = answer.error
            result.diagnosis = fallback_diagnosis(
                suspects,
                evidence,
                f"the model gave no valid answer: {answer.error}",
                ExecutionStatus.RECOVERED_FALLBACK,
            )
        # Recorded, and a shadow asked, in the background: nothing here waits for either.
        trials.finish(answer, result.diagnosis, ask, lambda a: model_diagnosis(a, suspects, safe_evidence, ""))
    result.duration_s = round(time.monotonic() - started, 3)
    return result
