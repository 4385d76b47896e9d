"""One proposed Deployment or StatefulSet reviewed: the checks (checks.py) on it and on what the executor
read, as a ChangeReview with the risk (the most severe finding), the findings most severe first, the fields
changed and a recommendation. A check whose source was not available says so in a finding of severity none.
"""

from __future__ import annotations

from aiops import GROUP
from aiops.api.analysisrun import ChangeFinding, ChangeReview, ChangeRisk
from aiops.changes import checks
from aiops.changes.checks import Burn, Found, PastChangeIncident, Usage
from aiops.changes.diff import changes, clip
from aiops.changes.workload import parse

OVERRIDE = f"{GROUP}/change-review-override"
MAX_FINDINGS = 50  # ChangeReview.findings
MAX_CHANGES = 100  # ChangeReview.changes
RANK = {ChangeRisk.NONE: 0, ChangeRisk.LOW: 1, ChangeRisk.MEDIUM: 2, ChangeRisk.HIGH: 3}


def review(
    proposed: dict,
    live: dict | None,
    *,
    usage: dict[str, Usage] | None,
    pdbs: list[dict],
    past: list[PastChangeIncident] | None,
    burns: list[Burn] | None,
    usage_gap: str | None = None,
    history_gap: str | None = None,
    slo_gap: str | None = None,
) -> ChangeReview:
    """`usage`, `past`, `burns` None: that source was not available, and its `*_gap` says why. ValueError naming
    the field when the proposed object is one the API server would refuse."""
    w = parse(proposed)
    changed = changes(live, proposed)
    found: list[Found] = []
    gaps = [check for check, source in (("usage", usage), ("history", past), ("slo", burns)) if source is None]
    if live is None:
        found.append(Found("changes", ChangeRisk.NONE, f"{w.kind} {w.name} is new: the checks read it alone"))
    elif not changed:
        found.append(Found("changes", ChangeRisk.NONE, "No field of spec differs from the live object"))
    if len(changed) > MAX_CHANGES:
        found.append(
            Found("changes", ChangeRisk.NONE, f"{len(changed)} fields changed; the first {MAX_CHANGES} are listed")
        )
    found += checks.image_tags(w)
    found += checks.limits_and_probes(w, usage)
    if usage is None:
        found.append(_gap("usage", "Requests and limits against observed usage", usage_gap))
    else:
        before = {c.path: c.before for c in changed if c.category == "resources"}
        found += checks.usage_fit(w, usage, before)
    live_replicas = _replicas(live)
    replicas = w.replicas if w.replicas is not None else live_replicas if live_replicas is not None else 1
    found += checks.disruption(w, replicas, live_replicas, pdbs)
    if past is None:
        found.append(_gap("history", "Past Incidents of this workload", history_gap))
    else:
        found += checks.history(changed, past)
    if burns is None:
        found.append(_gap("slo", "The SLO error budget", slo_gap))
    else:
        found += checks.slo(burns)
    reason = (w.annotations.get(OVERRIDE) or "").strip()
    if OVERRIDE in w.annotations and not reason:
        found.append(
            Found("changes", ChangeRisk.NONE, f"The {OVERRIDE} annotation is empty: an override needs a reason")
        )
    found.sort(key=lambda f: -RANK[f.severity])  # stable: within a severity, in the order the checks ran
    if len(found) > MAX_FINDINGS:
        more = len(found) - MAX_FINDINGS + 1
        found = [*found[: MAX_FINDINGS - 1], Found("changes", ChangeRisk.NONE, f"{more} more findings not listed")]
    risk = found[0].severity if found else ChangeRisk.NONE
    return ChangeReview(
        object=clip("/".join(p for p in (w.kind, w.namespace, w.name) if p), 320),
        live=live is not None,
        risk=risk,
        changes=changed[:MAX_CHANGES],
        findings=[_finding(f) for f in found],
        recommendation=clip(_recommend(found, risk, gaps), 2048),
        override=clip(reason, 1024) if reason else None,
    )


def _gap(check: str, what: str, why: str | None) -> Found:
    return Found(check, ChangeRisk.NONE, f"{what}: not checked ({why or 'the source was not available'})")


def _replicas(live: dict | None) -> int | None:
    spec = (live or {}).get("spec")
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    return replicas if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 0 else None


def _recommend(found: list[Found], risk: ChangeRisk, gaps: list[str]) -> str:
    """What to do first: the advice of the (at most two) most severe findings."""
    if risk == ChangeRisk.NONE:
        return "Nothing found that makes this change risky." + (f" Not checked: {', '.join(gaps)}." if gaps else "")
    advice = list(dict.fromkeys(f.do for f in found if f.severity == risk and f.do))
    return " ".join(advice[:2])


def _finding(f: Found) -> ChangeFinding:
    return ChangeFinding(
        check=f.check,
        severity=f.severity,
        message=clip(f"{f.what}. {f.do}" if f.do else f"{f.what}.", 1024),
        path=clip(f.path, 512) if f.path else None,
        evidence=[clip(e, 1024) for e in f.evidence[: checks.MAX_EVIDENCE]],
    )
