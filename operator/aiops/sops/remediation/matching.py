"""Which runbook fits an Incident: rules first, text similarity as a tie-breaker.

Filters (a mismatch rules the SOP out): the SOP's label selector against the alert's labels, its
severities against the Incident's. Then the score, capped at 1:
- ALERT_WEIGHT when the alert's name is one of the SOP's alertNames;
- SUSPECT_WEIGHT x the suspect's score when one of the diagnosis' top suspects has a failure mode the
  SOP lists among its symptoms (the analyzers' names: OOMKilled, CrashLoopBackOff, ...);
- KIND_WEIGHT when the target's kind is one of the SOP's resourceKinds;
- the text of the Incident (title, description, root cause, suspects' reasons) against the SOP's (title,
  description, symptoms): with an embedder (aiops.knowledge.embed, AIOPS_EMBEDDINGS), MEANING_WEIGHT x their
  embeddings' cosine read on a scale from MEANING_FLOOR (unrelated) to MEANING_FULL (the same situation in
  other words), so a root cause that paraphrases an SOP's symptoms counts; without one (the model fails to
  load, the endpoint fails) TEXT_WEIGHT x the cosine of their words, and the reason says so. A rule hit
  (alert, suspect) still outweighs the meaning of the text alone.
An SOP is matched when its score reaches THRESHOLD; `spec.sopRef` skips all this. No match is a valid
outcome, stated with the best candidate's score. Vectors are cached by (model, text): matching the same
SOPs again embeds only the Incident's text, once.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from aiops.api.incident import Diagnosis, IncidentSpec
from aiops.api.sop import SOPSpec
from aiops.knowledge.embed import Embedder, EmbeddingError, default_embedder

log = logging.getLogger(__name__)

ALERT_WEIGHT = 0.5
SUSPECT_WEIGHT = 0.45
KIND_WEIGHT = 0.05
TEXT_WEIGHT = 0.2
MEANING_WEIGHT = 0.35
# all-MiniLM-L6-v2's cosine, read as 0 (unrelated) to 1: the failure scenarios' diagnoses score 0.1 to 0.6
# against the runbooks of sop-library, their own one 0.3 to 0.65, so the meaning alone (0.35 at most, under
# THRESHOLD) matches only an SOP whose text says the same as the Incident's (cosine 0.7 and above).
MEANING_FLOOR = 0.35
MEANING_FULL = 0.75
THRESHOLD = 0.3
CACHE_SIZE = 1024  # vectors kept: every SOP of a namespace, and the Incidents being matched
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


def sop_text(sop: SOPSpec) -> str:
    return " ".join([sop.title, sop.description or "", *(sop.match.symptoms if sop.match else [])])


def embedder(settings) -> tuple[Embedder | None, str]:
    """The configured embedder, or None and why not: matching then compares words."""
    try:
        return default_embedder(settings), ""
    except Exception as exc:  # noqa: BLE001  (a model that does not load must not stop remediation)
        log.warning("SOP matching compares words only: the embedder did not load: %s: %s", type(exc).__name__, exc)
        return None, f"the embedder did not load ({type(exc).__name__}: {exc})"


_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_vectors_lock = threading.Lock()


def _embed(model: Embedder, texts: list[str]) -> list[np.ndarray]:
    """Unit vectors of `texts`, embedding only those not cached for this model (in one call)."""
    with _vectors_lock:
        known = {t: _vectors[(model.name, t)] for t in texts if (model.name, t) in _vectors}
    missing = sorted(set(texts) - known.keys())
    if missing:
        fresh = model.embed(missing)
        with _vectors_lock:
            for text, vector in zip(missing, fresh, strict=True):
                _vectors[(model.name, text)] = known[text] = vector
            while len(_vectors) > CACHE_SIZE:
                _vectors.popitem(last=False)
    return [known[t] for t in texts]


def meanings(text: str, sops: dict[str, SOPSpec], model: Embedder) -> dict[str, float]:
    """Each SOP's likeness to `text` on MEANING_FLOOR..MEANING_FULL, as 0..1. Raises EmbeddingError."""
    names = sorted(sops)
    query, *vectors = _embed(model, [text, *(sop_text(sops[n]) for n in names)])
    scale = MEANING_FULL - MEANING_FLOOR
    cosines = {n: float(query @ v) for n, v in zip(names, vectors, strict=True)}
    return {n: min(1.0, max(0.0, (c - MEANING_FLOOR) / scale)) for n, c in cosines.items()}


def score(
    spec: IncidentSpec, diagnosis: Diagnosis | None, sop: SOPSpec, meaning: float | None = None
) -> tuple[float, list[str]] | None:
    """(score, reasons), or None when the SOP's filters rule it out. `meaning` (0..1, from `meanings`) stands in
    for the word cosine of the texts."""
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
    if meaning is not None:
        if meaning > 0:
            total += MEANING_WEIGHT * meaning
            reasons.append(f"meaning similarity {meaning:.2f}")
    elif (similarity := cosine(words(incident_text(spec, diagnosis)), words(sop_text(sop)))) > 0:
        total += TEXT_WEIGHT * similarity
        reasons.append(f"text similarity {similarity:.2f}")
    return min(1.0, total), reasons


def choose(
    spec: IncidentSpec,
    diagnosis: Diagnosis | None,
    sops: dict[str, SOPSpec],
    model: Embedder | None = None,
    no_model: str = "no embedder",
) -> tuple[Match | None, str]:
    """The best SOP at or above THRESHOLD (ties: by name), and a sentence saying why (or why none).

    Without `model` (`no_model` says why), or when it fails, the texts are compared by their words."""
    if spec.sop_ref:
        return Match(spec.sop_ref.name, 1.0, "named by spec.sopRef"), f"SOP {spec.sop_ref.name} named by spec.sopRef"
    likeness: dict[str, float] = {}
    if model is not None:
        try:
            likeness = meanings(incident_text(spec, diagnosis), sops, model)
        except EmbeddingError as exc:
            no_model = f"the embedder failed ({exc})"
    scored = sorted(
        (
            (s, name, reasons)
            for name, sop in sops.items()
            if (r := score(spec, diagnosis, sop, likeness.get(name)))
            for s, reasons in [r]
        ),
        key=lambda t: (-t[0], t[1]),
    )
    if not scored:
        return None, f"no SOP in the namespace applies ({len(sops)} ruled out by their label or severity filters)"
    best, name, reasons = scored[0]
    why = "; ".join(reasons) or "nothing in common"
    if not likeness and sops:
        why += f" (words compared, not meaning: {no_model})"
    if best < THRESHOLD:
        return None, f"no SOP scored {THRESHOLD} or more; the closest, {name}, scored {best:.2f} ({why})"
    return Match(name, round(best, 3), why), f"SOP {name} matched with score {best:.2f}: {why}"
