"""Which runbook fits an Incident: rules first, text similarity as a tie-breaker.

Filters (a mismatch rules the SOP out): the SOP's label selector against the alert's labels, its
severities against the Incident's. Then the score, capped at 1:
- ALERT_WEIGHT when the alert's name is one of the SOP's alertNames;
- SUSPECT_WEIGHT x the suspect's score when one of the diagnosis' top suspects has a failure mode the
  SOP lists among its symptoms (the analyzers' names: OOMKilled, CrashLoopBackOff, ...);
- KIND_WEIGHT when the target's kind is one of the SOP's resourceKinds;
- TEXT_WEIGHT x the cosine similarity of the words of the Incident (title, description, root cause,
  suspects' reasons) and of the SOP (title, description, symptoms).
An SOP is matched when its score reaches THRESHOLD; `spec.sopRef` skips all this. No match is a valid
outcome, stated with the best candidate's score.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from aiops.api.incident import Diagnosis, IncidentSpec
from aiops.api.sop import SOPSpec

ALERT_WEIGHT = 0.5
SUSPECT_WEIGHT = 0.45
KIND_WEIGHT = 0.05
TEXT_WEIGHT = 0.2
THRESHOLD = 0.3
TOP_SUSPECTS = 3
WORD = re.compile(r"[a-z][a-z0-9]+")
STOP = frozenset(
    "the and for are was were with from that this into its has have not but per than then when while on in of to"
    " is be by an or at as it no".split()
)


@dataclass(frozen=True)
class Match:
    name: str
    score: float
    reason: str


def words(text: str) -> Counter[str]:
    return Counter(w for w in WORD.findall(text.lower()) if w not in STOP)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(a[w] * b[w] for w in a.keys() & b.keys())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def incident_text(spec: IncidentSpec, diagnosis: Diagnosis | None) -> str:
    parts = [spec.title, spec.description or ""]
    if diagnosis:
        parts += [diagnosis.root_cause, *(f"{s.failure_mode} {s.reason}" for s in diagnosis.suspects[:TOP_SUSPECTS])]
    return " ".join(parts)


def score(spec: IncidentSpec, diagnosis: Diagnosis | None, sop: SOPSpec) -> tuple[float, list[str]] | None:
    """(score, reasons), or None when the SOP's filters rule it out."""
    rules = sop.match
    labels = dict(spec.alert.labels) if spec.alert else {}
    if rules and any(labels.get(k) != v for k, v in rules.label_selector.items()):
        return None
    if rules and rules.severities and spec.severity not in rules.severities:
        return None
    total, reasons = 0.0, []
    alert = (spec.alert.name if spec.alert else None) or labels.get("alertname")
    if rules and alert and alert in rules.alert_names:
        total += ALERT_WEIGHT
        reasons.append(f"alert {alert}")
    symptoms = {s.lower() for s in rules.symptoms} if rules else set()
    hits = [s for s in (diagnosis.suspects[:TOP_SUSPECTS] if diagnosis else []) if s.failure_mode.lower() in symptoms]
    if hits:
        best = max(hits, key=lambda s: s.score)
        total += SUSPECT_WEIGHT * best.score
        reasons.append(f"suspect {best.failure_mode} on {best.resource} ({best.score:.2f})")
    if rules and spec.target and spec.target.kind in rules.resource_kinds:
        total += KIND_WEIGHT
        reasons.append(f"target kind {spec.target.kind}")
    sop_text = " ".join([sop.title, sop.description or "", *(rules.symptoms if rules else [])])
    similarity = cosine(words(incident_text(spec, diagnosis)), words(sop_text))
    if similarity > 0:
        total += TEXT_WEIGHT * similarity
        reasons.append(f"text similarity {similarity:.2f}")
    return min(1.0, total), reasons


def choose(spec: IncidentSpec, diagnosis: Diagnosis | None, sops: dict[str, SOPSpec]) -> tuple[Match | None, str]:
    """The best SOP at or above THRESHOLD (ties: by name), and a sentence saying why (or why none)."""
    if spec.sop_ref:
        return Match(spec.sop_ref.name, 1.0, "named by spec.sopRef"), f"SOP {spec.sop_ref.name} named by spec.sopRef"
    scored = sorted(
        ((s, name, reasons) for name, sop in sops.items() if (r := score(spec, diagnosis, sop)) for s, reasons in [r]),
        key=lambda t: (-t[0], t[1]),
    )
    if not scored:
        return None, f"no SOP in the namespace applies ({len(sops)} ruled out by their label or severity filters)"
    best, name, reasons = scored[0]
    why = "; ".join(reasons) or "nothing in common"
    if best < THRESHOLD:
        return None, f"no SOP scored {THRESHOLD} or more; the closest, {name}, scored {best:.2f} ({why})"
    return Match(name, round(best, 3), why), f"SOP {name} matched with score {best:.2f}: {why}"
