"""Model trials: what each model version did with the diagnoses it made or was asked to make, and its figures.

A trial is one row of model_trials (migration 0006): the version (`<catalogue model>/<served model>@<prompt
version>`), its role (primary: it served the Incident; canary: it served as the candidate; shadow: asked beside
the primary, never shown; suite: the scenario suite's verdict), the gateway's status, latency, tokens, cost, the
top suspect and root cause, agreement with the primary and the error. `figures()` turns rows into the per-version
table of `aiops models compare` (docs/model-rollouts.md).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from aiops.stores.history.store import clean

PRIMARY, SHADOW, CANARY, SUITE = "primary", "shadow", "canary", "suite"
COMPLETED, INVALID = "completed", "invalid"  # the gateway's statuses with an answer from the model
ERROR = "error"  # the trial itself broke (e.g. the candidate's API key Secret is missing)


@dataclass(frozen=True)
class Trial:
    incident_uid: str
    incident_key: str  # namespace/name
    generation: int
    version: str
    role: str
    status: str  # completed | invalid | unreachable | error
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    top_resource: str | None = None
    top_failure_mode: str | None = None
    root_cause: str | None = None
    agrees: bool | None = None
    correct: bool | None = None
    error: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def record(conn: asyncpg.Connection, t: Trial) -> None:
    """Writes the trial (again: a re-run replaces it), with a stub incident row when history has none yet."""
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO incidents (uid, key, generation, stub, created_at, updated_at)
               VALUES ($1, $2, $3, true, $4, $4) ON CONFLICT (uid) DO NOTHING""",
            t.incident_uid,
            clean(t.incident_key),
            t.generation,
            t.at,
        )
        await conn.execute(
            """INSERT INTO model_trials (incident_uid, generation, version, role, at, status, latency_s, prompt_tokens,
                                         completion_tokens, cost, top_resource, top_failure_mode, root_cause, agrees,
                                         correct, error)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
               ON CONFLICT (incident_uid, generation, version, role) DO UPDATE SET
                   at = excluded.at, status = excluded.status, latency_s = excluded.latency_s,
                   prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens,
                   cost = excluded.cost, top_resource = excluded.top_resource,
                   top_failure_mode = excluded.top_failure_mode, root_cause = excluded.root_cause,
                   agrees = excluded.agrees, correct = excluded.correct, error = excluded.error""",
            t.incident_uid,
            t.generation,
            clean(t.version)[:512],
            t.role,
            t.at,
            t.status,
            t.latency_s,
            t.prompt_tokens,
            t.completion_tokens,
            t.cost,
            clean(t.top_resource)[:512] if t.top_resource else None,
            clean(t.top_failure_mode)[:128] if t.top_failure_mode else None,
            clean(t.root_cause)[:2048] if t.root_cause else None,
            t.agrees,
            t.correct,
            clean(t.error)[:2048] if t.error else None,
        )


@dataclass(frozen=True)
class Feedback:
    """An incident's latest verdict: on the diagnosis of the latest generation up to its own."""

    generation: int
    correct: bool
    root_cause: str | None  # the engineer's corrected root cause, if given


# Each trial with its incident's latest feedback (a later verdict replaces an earlier one).
ROWS_SQL = """
SELECT t.*, f.generation AS feedback_generation, f.correct AS feedback_correct, f.root_cause AS feedback_root_cause
FROM model_trials t
LEFT JOIN LATERAL (
    SELECT generation, correct, root_cause FROM feedback WHERE incident_uid = t.incident_uid
    ORDER BY generation DESC, at DESC LIMIT 1
) f ON true
WHERE t.at >= $1
ORDER BY t.at
"""


async def rows(conn: asyncpg.Connection, since: datetime) -> list[tuple[Trial, Feedback | None]]:
    """The trials since `since`, each with its incident's latest feedback."""
    out = []
    for r in await conn.fetch(ROWS_SQL, since):
        fb = r["feedback_generation"]
        verdict = None if fb is None else Feedback(fb, r["feedback_correct"], r["feedback_root_cause"])
        trial = Trial(**{k: r[k] for k in Trial.__dataclass_fields__ if k != "incident_key"}, incident_key="")
        out.append((trial, verdict))
    return out


@dataclass(frozen=True)
class Figures:
    """One version's measures; a pair is (count, out of)."""

    version: str
    roles: tuple[str, ...]
    diagnoses: int  # trials as primary, canary or shadow
    agreement: tuple[int, int]  # shadows agreeing with the primary
    accuracy: tuple[int, int]  # diagnoses judged right by feedback
    suite: tuple[int, int]  # scenarios with the known cause ranked first
    valid_json: tuple[int, int]  # answers that validated, of those the model gave
    failed: int  # unreachable or broken trials
    latency_s: tuple[float, float, float] | None  # p50, p95, p99 of the answers
    tokens: float | None  # per diagnosis answered
    cost: float | None  # per diagnosis answered, where the catalogue gives a price


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def _mentions(text: str, resource: str) -> bool:
    name = resource.rpartition("/")[2]
    return bool(name) and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE) is not None


def verdict(trial: Trial, shown: Trial | None, fb: Feedback) -> bool | None:
    """Whether feedback says `trial` was right; None when it cannot tell. `shown` is the trial whose diagnosis the
    Incident showed (primary or canary) at the same generation.

    The version that served is judged by the verdict, when its model answered (a fallback showed the analyzers').
    A shadow that answered: right when it agrees with a diagnosis judged correct; wrong when it agrees with one
    judged wrong; otherwise, on another resource than the shown one, right when the engineer's corrected root cause
    names its top suspect's resource."""
    if trial.status != COMPLETED:
        return None
    if trial.role != SHADOW:
        return fb.correct
    if fb.correct:
        return bool(trial.agrees)
    if trial.agrees:
        return False
    if shown is None or not trial.top_resource or trial.top_resource == shown.top_resource or not fb.root_cause:
        return None
    return _mentions(fb.root_cause, trial.top_resource)


def _judged(rows: list[tuple[Trial, Feedback | None]]) -> dict[int, bool]:
    """Feedback verdicts by id() of the trial; only the diagnosis the feedback was given on counts."""
    by_incident: dict[str, list[Trial]] = defaultdict(list)
    feedback: dict[str, Feedback] = {}
    for t, fb in rows:
        if t.role != SUITE and fb is not None:
            by_incident[t.incident_uid].append(t)
            feedback[t.incident_uid] = fb
    out: dict[int, bool] = {}
    for uid, trials in by_incident.items():
        fb = feedback[uid]
        judged = [t for t in trials if t.generation <= fb.generation]
        if not judged:
            continue
        generation = max(t.generation for t in judged)
        at = [t for t in judged if t.generation == generation]
        served = [t for t in at if t.role in (PRIMARY, CANARY)]
        shown = next((t for t in served if t.status == COMPLETED), served[0] if served else None)
        for t in at:
            if (t is shown or t.role == SHADOW) and (v := verdict(t, shown, fb)) is not None:
                out[id(t)] = v
    return out


def _pair(flags: list[bool]) -> tuple[int, int]:
    return sum(flags), len(flags)


def figures(rows: list[tuple[Trial, Feedback | None]]) -> list[Figures]:
    """Per version, in the order first seen."""
    judged = _judged(rows)
    by_version: dict[str, list[Trial]] = defaultdict(list)
    for t, _ in rows:
        by_version[t.version].append(t)
    out = []
    for version, trials in by_version.items():
        live = [t for t in trials if t.role != SUITE]
        answered = [t for t in live if t.status in (COMPLETED, INVALID)]
        latencies = [t.latency_s for t in answered]
        priced = [t.cost for t in answered if t.cost is not None]
        out.append(
            Figures(
                version=version,
                roles=tuple(sorted({t.role for t in trials})),
                diagnoses=len(live),
                agreement=_pair([t.agrees for t in live if t.role == SHADOW and t.agrees is not None]),
                accuracy=_pair([judged[id(t)] for t in live if id(t) in judged]),
                suite=_pair([bool(t.correct) for t in trials if t.role == SUITE]),
                valid_json=_pair([t.status == COMPLETED for t in answered]),
                failed=sum(t.status not in (COMPLETED, INVALID) for t in live),
                latency_s=tuple(percentile(latencies, p) for p in (50, 95, 99)) if latencies else None,
                tokens=statistics.fmean(t.prompt_tokens + t.completion_tokens for t in answered) if answered else None,
                cost=statistics.fmean(priced) if priced else None,
            )
        )
    return out
