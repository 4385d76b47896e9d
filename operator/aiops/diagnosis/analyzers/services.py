"""The service at the root of a microservice symptom, from traces, logs and metrics together (aiops.diagnosis.rca).

Runs when spans or service log lines reach the incident (from detectedAt on). Every service of the namespace
that the evidence reaches is scored on each evidence (own latency, time between services, changed calls,
failed spans, error lines but those echoing a callee's, new log templates, its pods' metrics), the scores
are fused and walked along the call graph so a caller is not blamed for its callee, and the TOP best get a suspect
named `Service/<name>` (the workload's service name), citing the evidence that carried it. The
failure mode is that of its strongest evidence.

Scores: 0.45 rising towards 0.85 with the fused score: strong correlation, never proof.
"""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import finding, item, split_time, traced_after_split
from aiops.diagnosis.evidence import EvidenceBundle, Finding
from aiops.diagnosis.rca import logs, metrics, patterns, rank, spans

TOP = 5
SCORE_MIN, SCORE_SPAN = 0.45, 0.4
HALF = 8.0  # the fused score at which a suspect sits half-way up its range
NULLS = 4  # pseudo-incidents in the baseline that show each evidence's scores when nothing happened
# Per-pod signals of the Prometheus collector's neighbourhood templates.
SIGNALS = (
    "pod_cpu_usage",
    "pod_memory_working_set",
    "pod_network_receive",
    "pod_network_transmit",
    "pod_latency_p99",
    "pod_error_ratio",
)
MODES = {
    "own": ("SlowService", "Its own processing time rose while its callees' did not: profile it, check its CPU"
            " limits and what changed in it."),
    "gap": ("SlowCalls", "Calls to and from it take longer than it takes to serve them: look at the network"
            " path (node, CNI, sidecar, DNS) of its pods."),
    "fanout": ("ChangedCalls", "It stopped (or started) calling a dependency as it did: it fails early on"
               " some path; read its errors and recent changes."),
    "failed": ("FailingService", "Its own spans fail while its callees' do not: read its errors and roll back"
               " a recent change."),
    "errors": ("ErrorLogs", "It logs errors it did not log before: read them; roll back a recent change."),
    "novel": ("NewLogPatterns", "It logs messages never seen before the symptoms: read them."),
    "pattern": ("ChangedRequests", "Its requests no longer do what they did (a call, a local step or a log"
                " statement appeared or vanished) and nothing below them changed: read its errors and recent changes."),
    "shift": ("ChangedRequests", "A step of its requests (a call, a local step or a log statement) became much more"
              " or less common: read its errors and recent changes."),
    "metrics": ("ResourceAnomaly", "Its pods' resource or request signals moved: check saturation and limits."),
}  # fmt: skip
GAP_S = 60.0  # no data for longer than this: a hole in what the backend kept, not a quiet minute
TRACE_KINDS = ("own", "gap", "fanout", "failed", "pattern", "shift")
FAILURE_MODES = tuple(dict.fromkeys(mode for mode, _ in MODES.values()))


def _coverage(times: list[float], lo: float, hi: float) -> float:
    """Minutes that hold data between lo and hi: rates are per minute of data, so a backend that kept (or
    sampled) only some minutes of the window does not dilute them."""
    inside = sorted(t for t in times if lo <= t < hi)
    covered = sum(b - a for a, b in zip(inside, inside[1:], strict=False) if b - a <= GAP_S)
    return max(covered / 60, 1.0)


def _scores(
    bundle: EvidenceBundle,
    data: tuple[list[spans.Request], list[int], patterns.Held, set[int]],
    start: float,
    split: float,
    end: float,
) -> spans.Scores:
    """Every evidence's per-service scores for the data in [start, end), baseline before `split`."""
    reqs, templates, held, echoed = data
    evidence: spans.Scores = {}
    reqs = [r for r in reqs if start <= r.start < end]
    if reqs:
        times = [r.start for r in reqs]
        minutes = _coverage(times, start, split), _coverage(times, split, end)
        before = spans.window([r for r in reqs if r.start < split], minutes[0])
        after = spans.window([r for r in reqs if r.start >= split], minutes[1])
        evidence |= spans.scores(before, after)
        evidence |= patterns.scores(reqs, held, split, *minutes)
    inside = [i for i, line in enumerate(bundle.service_logs) if start <= line.time < end and i not in echoed]
    if inside:
        lines = [bundle.service_logs[i] for i in inside]
        times = [line.time for line in lines]
        evidence |= logs.scores(
            lines, split, _coverage(times, start, split), _coverage(times, split, end), [templates[i] for i in inside]
        )
    evidence |= metrics.scores(bundle.metrics, SIGNALS, split, start, end)
    return evidence


def _null_splits(bundle: EvidenceBundle, reqs: list[spans.Request], split: float) -> list[tuple[float, float]]:
    """Pseudo-incidents inside the baseline, each with as much data as the incident (as many requests, or
    log lines, as there are from `split` on), back to back before `split`, up to NULLS of them while the
    data before each keeps at least half of the baseline's."""
    times = [r.start for r in reqs] or [line.time for line in bundle.service_logs]
    before = sorted(t for t in times if t < split)
    n = max(sum(t >= split for t in times), 1)
    out, end = [], split
    for k in range(1, NULLS + 1):
        if len(before) - k * n < len(before) / 2:
            break
        out.append((before[-k * n], end))
        end = before[-k * n]
    return out


def evidence(bundle: EvidenceBundle) -> tuple[spans.Scores, set[tuple[str, str]], set[str], list[spans.Scores]]:
    """Every evidence's per-service scores, the call graph, the services seen, and the same scores on a
    split of the baseline alone (what each evidence says when nothing happened)."""
    start, end = bundle.window_start.timestamp(), bundle.window_end.timestamp() + 1
    split = split_time(bundle)
    tree = spans.tree(bundle.spans)
    reqs = spans.requests(bundle.spans, tree)
    templates = logs.templates(bundle.service_logs) if bundle.service_logs else []
    line_requests = spans.joined(bundle.spans, tree, bundle.service_logs)
    found = patterns.events(bundle.spans, tree, line_requests, templates)
    echoed = logs.echoes(bundle.service_logs, line_requests, {r.index: r.parent_request for r in reqs})
    data = (reqs, templates, patterns.held(reqs, found), echoed)
    now = _scores(bundle, data, start, split, end)
    null = [_scores(bundle, data, start, lo, hi) for lo, hi in _null_splits(bundle, reqs, split)]
    services = {r.service for r in reqs} | {line.service for line in bundle.service_logs}
    return now, spans.call_graph(reqs), services, null


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    if not traced_after_split(bundle):
        return []  # nothing of the incident to compare: the metrics analyzer ranks the pods
    now, graph, names, null = evidence(bundle)
    ranking = [r for r in rank.rank(now, graph, names, null) if r.score > 0][:TOP]
    findings = []
    for r in ranking:
        kind = r.evidence[0][0]
        mode, fix = MODES[kind]
        cited = [
            item("traces" if k in TRACE_KINDS else "logs" if k in ("errors", "novel") else "prometheus",
                 f"{r.service}: {f.detail}", "svc", k, r.service)
            for k, _, f in r.evidence
        ]  # fmt: skip
        why = "; ".join(f"{k} {z:.1f}" for k, z, _ in r.evidence)
        reason = f"{r.service} stands out on {why} (fused {r.total:.1f}, {r.score:.1f} after its callees)."
        score = SCORE_MIN + SCORE_SPAN * r.score / (r.score + HALF)
        findings.append(finding(f"Service/{r.service}", mode, score, reason, fix, cited))
    return findings
