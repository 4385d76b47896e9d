"""Requests whose pattern of events changed, blamed on the deepest one in each trace.

A request (an entry span, see spans.py) of service S for operation O holds *events*:
`o:<op>` a local span inside it, `c:<callee>:<op>` a call it made (the callee's entry span), `l:<template>`
a log line written inside it (joined by span id). The baseline requests of each kind g = (S, O) give a
profile: n_g requests, k_g(e) of them holding event e. A request of a kind with n_g >= MIN_CALLS is
*anomalous* when its most surprising event passes TAU (in nats), an event being surprising when

- it appeared:  -log((k + SMOOTH) / (n + 1)) for an event it holds (rare in the profile);
- it is missing: -log((n - k + SMOOTH) / (n + 1)) for an event most baseline requests hold (k >= n / 2).

A failing service changes its own requests (it stops calling what comes next, logs a new error, skips a
statement); its callers' requests change too, as they see the failure. Within one trace, only the anomalous
requests with no anomalous request below them are *blamed*: the deepest divergence is the origin. A
service's score (`pattern`) is the surprise of its blamed requests per minute rising, incident over
baseline (stats.rise; the baseline's blamed requests are found the same way, against the same profile).

A statement that only some requests reach vanishes from all of them when a step before it fails: no
single request is then surprising, but the share of requests holding the event is. `shift` scores, per
service, the event of one kind of request whose share moved most surprisingly.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from aiops.clusters.telemetry import Span
from aiops.diagnosis.rca import stats
from aiops.diagnosis.rca.spans import MIN_CALLS, Finding, Request, Scores, Tree

TAU = 3.0  # nats: an event rarer than about 1 in 20 baseline requests of its kind
SMOOTH = 0.5

Event = tuple[str, ...]
NONE: frozenset[Event] = frozenset()


def events(
    spans: Sequence[Span], t: Tree, line_requests: Sequence[int | None] = (), templates: Sequence[int] = ()
) -> dict[int, frozenset[Event]]:
    """Request (its entry span's index) -> the events inside it; `line_requests`: each log line's request
    (spans.joined), `templates` its template."""
    found: dict[int, set[Event]] = defaultdict(set)
    for i, s in enumerate(spans):
        if not t.is_entry[i]:
            found[t.entry[i]].add(("o", s.operation))
        elif t.parent[i] is not None:
            found[t.entry[t.parent[i]]].add(("c", s.service, s.operation))  # type: ignore[index]
    for request, tid in zip(line_requests, templates, strict=True):
        if request is not None:
            found[request].add(("l", str(tid)))
    return {request: frozenset(held) for request, held in found.items()}


def _describe(e: Event) -> str:
    return {"o": "local span {}", "c": "call to {}: {}", "l": "log template #{}"}[e[0]].format(*e[1:])


@dataclass(frozen=True, slots=True)
class Held:
    """What each request holds, interned: requests of one kind mostly hold the same events (a few dozen
    distinct ones among thousands of requests), so each distinct (kind, events) is counted and weighed once."""

    of: dict[int, int]  # request (its entry span's index) -> the id of what it holds
    what: list[tuple[tuple[str, str], frozenset[Event]]]  # id -> (its kind of request, its events)


def held(reqs: Sequence[Request], found: dict[int, frozenset[Event]]) -> Held:
    ids: dict[tuple[tuple[str, str], frozenset[Event]], int] = {}
    of = {r.index: ids.setdefault(((r.service, r.operation), found.get(r.index, NONE)), len(ids)) for r in reqs}
    return Held(of, list(ids))


def scores(reqs: list[Request], h: Held, split: float, base_minutes: float, incident_minutes: float) -> Scores:
    n: Counter = Counter()
    k: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for sid, count in Counter(h.of[r.index] for r in reqs if r.start < split).items():
        g, have = h.what[sid]
        n[g] += count
        for e in have:
            k[g][e] += count
    expected = {g: sorted(e for e, c in counts.items() if c >= n[g] / 2) for g, counts in k.items()}

    def surprise(g: tuple[str, str], have: frozenset[Event]) -> tuple[float, str]:
        ng = n[g]
        if ng < MIN_CALLS:
            return 0.0, ""
        worst, why = 0.0, ""
        for e in sorted(have):  # sorted: of equal surprises, the same event is named on every run
            s = -math.log((k[g][e] + SMOOTH) / (ng + 1))
            if s > worst:
                worst, why = s, f"{g[1]} now has {_describe(e)}"
        for e in expected.get(g, ()):
            if e not in have:
                s = -math.log((ng - k[g][e] + SMOOTH) / (ng + 1))
                if s > worst:
                    worst, why = s, f"{g[1]} lost its {_describe(e)}"
        return worst, why

    weighed = {sid: surprise(*h.what[sid]) for sid in {h.of[r.index] for r in reqs}}
    anomalous = {r.index: weighed[sid][1] for r in reqs if weighed[sid := h.of[r.index]][0] > TAU}
    parent = {r.index: r.parent_request for r in reqs}
    below: set[int] = set()  # requests with an anomalous request somewhere under them
    for i in anomalous:
        p = parent.get(i)
        while p is not None and p not in below:
            below.add(p)
            p = parent.get(p)
    blamed: dict[str, Counter] = defaultdict(Counter)
    example: dict[str, str] = {}
    for r in reqs:
        if r.index in anomalous and r.index not in below:
            window = "base" if r.start < split else "now"
            blamed[r.service][window] += 1
            if window == "now":
                example.setdefault(r.service, anomalous[r.index])
    result: Scores = {"pattern": {}, "shift": shifts(reqs, h, split)}
    for service, counts in blamed.items():
        surprise = stats.rise(counts["base"], counts["now"], base_minutes, incident_minutes)
        if surprise > 0:
            b, i = counts["base"] / max(base_minutes, 1e-9), counts["now"] / max(incident_minutes, 1e-9)
            words = f"requests that diverge first in it: {b:.1f}/min -> {i:.1f}/min, e.g. {example[service]}"
            result["pattern"][service] = Finding(surprise, words)
    return result


def shifts(reqs: list[Request], h: Held, split: float) -> dict[str, Finding]:
    """Per service, the event whose share of its kind of request moved most surprisingly, incident against
    baseline (stats.rise / fall on event counts per request). A statement after a failing call, or a call
    after a failing check, that only some requests reach vanishes from all of them: no single request is
    surprising, the share is."""
    n: dict[str, Counter] = {"base": Counter(), "now": Counter()}
    k: dict[str, Counter] = {"base": Counter(), "now": Counter()}
    for (window, sid), count in Counter(("base" if r.start < split else "now", h.of[r.index]) for r in reqs).items():
        g, have = h.what[sid]
        n[window][g] += count
        for e in have:
            k[window][(g, e)] += count
    out: dict[str, Finding] = {}
    for g, e in sorted(k["base"].keys() | k["now"].keys()):  # sorted, as above
        nb, ni = n["base"][g], n["now"][g]
        if nb < MIN_CALLS or ni < MIN_CALLS:
            continue
        kb, ki = k["base"][(g, e)], k["now"][(g, e)]
        surprise = max(stats.rise(kb, ki, nb, ni), stats.fall(kb, ki, nb, ni))
        if surprise > out.get(g[0], Finding(0.0, "")).score:
            words = f"{g[1]}: share of requests with {_describe(e)} {kb / nb:.0%} -> {ki / ni:.0%}"
            out[g[0]] = Finding(surprise, words)
    return out
