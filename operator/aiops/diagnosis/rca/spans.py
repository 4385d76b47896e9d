"""Spans -> requests -> per-service scores.

A *request* is an entry span: one whose parent is missing or belongs to another service. Its parent,
when there is one, is the caller's client span, so `client_time - duration` is the time the call spent
between the two services (the network, queues, sidecars): the *gap*. A request's *own time* is its
duration less the client time of the calls it made, so a service waiting on a slow callee keeps its
own time. Per service, baseline against incident, each as a surprise (stats.py):

- own:    own time rose (Mann-Whitney), worst operation, when its median or p90 rose by EFFECT;
- gap:    the gap rose on the calls into and out of the service, averaged over its edges, so the one
          service all slow edges share outranks a neighbour that owns one of them;
  both weighed by how far the time rose (`_weighed`): a surprise says how sure a change is, not how large,
  and many fast calls make a +25% shift as certain as a tenfold one on a few;
- fanout: the largest change in calls to a callee per request served (a service that fails early
          stops calling what comes next);
- failed: more of its requests' spans say they failed, per request served.
Comparisons of times need MIN_CALLS in both windows; counts carry their own uncertainty, so a change
from 2 calls to 0 is no finding while one from 200 to 0 is. A fall in the requests a service serves is
no evidence against it: its callers slowed down or failed, or the users' mix moved (measured on the
evaluation's dev data, it mostly blamed the callees of a faulty service); a service that stops serving shows
in its callers' failed spans and its Kubernetes state.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aiops.clusters.telemetry import LogLine, Span
from aiops.diagnosis.rca import stats

MIN_CALLS = 5
OWN_FLOOR = 0.1  # of the median request duration
SHRINK = 1.0  # added to the edge count when averaging edge scores per service
EFFECT = 0.2  # log-ratio of own time or gap (about +22%) below which a shift is not a finding
FULL = math.log(10)  # log-ratio from which a rise of own time or gap counts in full: tenfold


@dataclass(frozen=True, slots=True)
class Request:
    index: int  # into the span list
    service: str
    operation: str
    start: float
    duration: float
    own: float
    caller: str | None
    gap: float | None
    error: bool
    parent_request: int | None  # the caller's request, as an index into the span list


@dataclass(frozen=True, slots=True)
class Tree:
    """Each span's parent and its *entry* (the request it belongs to), as indices into the span list."""

    parent: list[int | None]
    entry: list[int]
    is_entry: list[bool]


def tree(spans: Sequence[Span]) -> Tree:
    by_id = {s.span_id: i for i, s in enumerate(spans)}
    parent = [by_id.get(s.parent_id) if s.parent_id else None for s in spans]
    is_entry = [p is None or spans[p].service != s.service for s, p in zip(spans, parent, strict=True)]
    entry: list[int | None] = [i if e else None for i, e in enumerate(is_entry)]
    for i in range(len(spans)):
        path = []
        j = i
        while entry[j] is None and len(path) <= len(spans):  # (a malformed parent cycle ends the walk)
            path.append(j)
            j = parent[j]  # type: ignore[assignment]  # a non-entry span has a parent
        root = entry[j] if entry[j] is not None else j
        for k in path:
            entry[k] = root
    return Tree(parent, entry, is_entry)  # type: ignore[arg-type]


def requests(spans: Sequence[Span], t: Tree | None = None) -> list[Request]:
    """The entry spans of `spans`, with own time and gap (a clock-skewed negative gap counts as none)."""
    t = t or tree(spans)
    parent, entry, is_entry = t.parent, t.entry, t.is_entry
    out_time = [0.0] * len(spans)
    for i in range(len(spans)):
        if is_entry[i] and parent[i] is not None:
            out_time[entry[parent[i]]] += spans[parent[i]].duration
    found = []
    for i, s in enumerate(spans):
        if not is_entry[i]:
            continue
        p = parent[i]
        found.append(
            Request(
                index=i,
                service=s.service,
                operation=s.operation,
                start=s.start,
                duration=s.duration,
                own=max(0.0, s.duration - out_time[i]),
                caller=spans[p].service if p is not None else None,
                gap=max(0.0, spans[p].duration - s.duration) if p is not None else None,
                error=s.error,
                parent_request=entry[p] if p is not None else None,
            )
        )
    return found


def joined(spans: Sequence[Span], t: Tree, lines: Sequence[LogLine]) -> list[int | None]:
    """Each log line's request (its entry span's index), by the span id it carries; None if it carries none
    of these spans."""
    by_id = {s.span_id: i for i, s in enumerate(spans)}
    spans_of = [by_id.get(line.span_id) if line.span_id else None for line in lines]
    return [t.entry[i] if i is not None else None for i in spans_of]


@dataclass
class Window:
    minutes: float
    own: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    gaps: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    served: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)  # (caller, callee)
    durations: list[float] = field(default_factory=list)


def window(reqs: list[Request], minutes: float) -> Window:
    w = Window(max(minutes, 1e-9))
    for r in reqs:
        w.own[(r.service, r.operation)].append(r.own)
        w.served[r.service] += 1
        w.failed[r.service] += r.error
        w.durations.append(r.duration)
        if r.caller is not None:
            w.gaps[(r.caller, r.service)].append(r.gap)
            w.calls[(r.caller, r.service)] += 1
    return w


def _rise(base: list[float], now: list[float], floor: float) -> float:
    """The larger log-ratio of the median and the p90, incident over baseline."""
    b50, b90 = np.percentile(base, [50, 90])
    n50, n90 = np.percentile(now, [50, 90])
    return max(math.log((n50 + floor) / (b50 + floor)), math.log((n90 + floor) / (b90 + floor)))


def _weighed(base: list[float], now: list[float], floor: float) -> float:
    """The surprise that `now` times sit above `base`, in proportion to their rise up to FULL; 0 under EFFECT.
    On the evaluation's dev data (`aiops-dev eval nezha`) a slow service's 9x own time lost to a neighbour's
    +50% gap, and a network delay's 80x gap on a few calls to a +21% own time on many. FULL was chosen there:
    of 0.7, 1.0, 1.5, 2.3 and 3.0, the last two did best on both systems; 4.6 (100x) shrank own time too far."""
    rise = _rise(base, now, floor + 1e-9)
    return stats.larger(base, now) * min(1.0, rise / FULL) if rise >= EFFECT else 0.0


@dataclass
class Finding:
    """One service's score on one evidence, with the words that justify it."""

    score: float
    detail: str


Scores = dict[str, dict[str, Finding]]  # evidence -> service -> finding


def _keep(out: dict[str, Finding], service: str, score: float, detail: str) -> None:
    if score > out.get(service, Finding(-math.inf, "")).score:
        out[service] = Finding(score, detail)


def scores(base: Window, now: Window) -> Scores:
    """Each evidence as a surprise (stats.py); own time and gaps weighed by how far they rose (`_weighed`),
    so a tiny shift that many samples make certain is not a finding."""
    result: Scores = {k: {} for k in ("own", "gap", "fanout", "failed")}
    floor = OWN_FLOOR * float(np.median(base.durations)) if base.durations else 0.0
    for key, samples in now.own.items():
        before = base.own.get(key, [])
        if len(before) >= MIN_CALLS and len(samples) >= MIN_CALLS and (score := _weighed(before, samples, floor)) > 0:
            b, n = np.median(before), np.median(samples)
            _keep(
                result["own"], key[0], score,
                f"own time of {key[1]}: median {b * 1e3:.1f} ms -> {n * 1e3:.1f} ms",
            )  # fmt: skip
    gap_floor = float(np.median([np.median(g) for g in base.gaps.values()])) if base.gaps else 0.0
    per_service: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for (caller, callee), samples in now.gaps.items():
        before = base.gaps.get((caller, callee), [])
        if len(before) >= MIN_CALLS and len(samples) >= MIN_CALLS:
            r = _weighed(before, samples, gap_floor)
            words = (
                f"calls {caller} -> {callee}: time between the services median "
                f"{np.median(before) * 1e3:.1f} ms -> {np.median(samples) * 1e3:.1f} ms"
            )
            per_service[caller].append((r, words))
            per_service[callee].append((r, words))
    for service, edges in per_service.items():
        worst = max(edges)
        _keep(result["gap"], service, sum(r for r, _ in edges) / (len(edges) + SHRINK), worst[1])
    # Sorted: of equal changes, the same callee is named on every run.
    for caller, callee in sorted(base.calls.keys() | now.calls.keys()):
        nb, ni = base.served.get(caller, 0), now.served.get(caller, 0)
        if nb < MIN_CALLS or ni < MIN_CALLS:
            continue
        cb, ci = base.calls.get((caller, callee), 0), now.calls.get((caller, callee), 0)
        _keep(
            result["fanout"], caller, max(stats.rise(cb, ci, nb, ni), stats.fall(cb, ci, nb, ni)),
            f"calls to {callee} per request served: {cb / nb:.2f} -> {ci / ni:.2f}",
        )  # fmt: skip
    for service, n in now.served.items():
        nb = base.served.get(service, 0)
        if n < MIN_CALLS or not now.failed.get(service, 0):
            continue
        fb, fi = base.failed.get(service, 0), now.failed[service]
        _keep(
            result["failed"], service, stats.rise(fb, fi, max(nb, 1), n),
            f"failed requests: {fb / max(nb, 1):.1%} -> {fi / n:.1%}",
        )  # fmt: skip
    return result


def call_graph(reqs: list[Request]) -> set[tuple[str, str]]:
    return {(r.caller, r.service) for r in reqs if r.caller is not None and r.caller != r.service}
