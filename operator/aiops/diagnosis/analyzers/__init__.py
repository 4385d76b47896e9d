"""Deterministic analyzers: a catalogue of Kubernetes failure modes, each a module with
`analyze(bundle) -> list[Finding]`, and `analyze()` that runs them all and ranks the suspects.

Score scale, shared by every analyzer:
- 0.85-0.95 direct proof: the system itself names the failure (OOMKilled with exit 137, an image pull
  refused for credentials, a missing ConfigMap, a quota refusing pods, an expired certificate, a GPU
  fallen off the bus, a Job past its backoff limit, a NotReady node).
- 0.5-0.8 strong correlation: a failure with a likely cause (CrashLoopBackOff with its exit code,
  failing probes, node pressure, evictions), or a change that lines up with the symptoms (a rollout
  minutes before the first failure, an HPA pinned at its maximum, error signatures in logs).
- below 0.5 weak: context worth a look (a container not ready with no event, a full quota nobody hit
  yet, a certificate expiring within a week, a control-plane taint, small metric anomalies).

Each module documents where in its range a finding lands. Evidence ids are deterministic and
readable (`oom-checkout-7d9f-x2kqz-app`), so the same bundle always yields the same ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

from aiops.api.incident import EvidenceItem, Suspect
from aiops.diagnosis.analyzers import (
    certificates,
    config_missing,
    crashloop,
    eviction,
    gpu,
    hpa,
    image_pull,
    job,
    log_signatures,
    metrics,
    node,
    oom,
    probes,
    pvc,
    quota,
    rollout,
    services,
    unschedulable,
)
from aiops.diagnosis.evidence import EvidenceBundle, Finding

MAX_CITED = 50  # Suspect.evidence's limit


@dataclass(frozen=True)
class Analyzer:
    name: str
    failure_modes: tuple[str, ...]
    analyze: Callable[[EvidenceBundle], list[Finding]]


def _entry(module: ModuleType) -> Analyzer:
    return Analyzer(module.__name__.rsplit(".", 1)[-1], module.FAILURE_MODES, module.analyze)


# Ordered from direct causes to context: on equal scores the earlier analyzer's suspect ranks first.
CATALOGUE: tuple[Analyzer, ...] = tuple(
    _entry(m)
    for m in (
        oom,
        image_pull,
        config_missing,
        unschedulable,
        crashloop,
        probes,
        job,
        quota,
        node,
        eviction,
        pvc,
        certificates,
        gpu,
        rollout,
        hpa,
        log_signatures,
        services,
        metrics,
    )
)


class Analysis(NamedTuple):
    """Ranked suspects, the evidence they cite (each id once), and `errors`: one line per analyzer that
    raised, "analyzer/NAME: ExcType: message", in the shape of `EvidenceBundle.missing` so callers can
    report both as missing evidence. Unpacks as (suspects, evidence, errors)."""

    suspects: list[Suspect]
    evidence: list[EvidenceItem]
    errors: list[str]


def analyze(bundle: EvidenceBundle) -> Analysis:
    """Runs every analyzer (one that raises is recorded in `errors`, the others still run), merges
    findings on the same resource and failure mode, and ranks suspects by score, then catalogue order,
    resource and failure mode, so equal inputs always rank the same."""
    merged: dict[tuple[str, str], tuple[int, Suspect]] = {}
    evidence: dict[str, EvidenceItem] = {}
    errors = []
    for rank, analyzer in enumerate(CATALOGUE):
        try:
            findings = analyzer.analyze(bundle)
        except Exception as exc:  # noqa: BLE001  (a broken analyzer is missing evidence, not a failed diagnosis)
            errors.append(f"analyzer/{analyzer.name}: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        for f in findings:
            for e in f.evidence:
                evidence.setdefault(e.id, e)
            key = (f.suspect.resource, f.suspect.failure_mode)
            if key in merged:
                first_rank, seen = merged[key]
                best = max(seen, f.suspect, key=lambda s: s.score)
                cited = list(dict.fromkeys(seen.evidence + f.suspect.evidence))[:MAX_CITED]
                merged[key] = (first_rank, best.model_copy(update={"evidence": cited}))
            else:
                merged[key] = (rank, f.suspect)
    ranked = sorted(merged.values(), key=lambda rs: (-rs[1].score, rs[0], rs[1].resource, rs[1].failure_mode))
    suspects = [s for _, s in ranked]
    # Evidence in the order the ranked suspects cite it, so the strongest proof comes first.
    order = list(dict.fromkeys(eid for s in suspects for eid in s.evidence))
    return Analysis(suspects, [evidence[eid] for eid in order], errors)
