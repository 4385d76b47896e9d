"""The service at the root of a microservice symptom, from traces, logs and metrics together (aiops.diagnosis.rca).

Runs when the bundle holds spans or service logs. Every service of the namespace that the evidence
reaches is scored on each evidence (own latency, time between services, lost requests, changed
calls, failed spans, error lines, new log templates, its pods' metrics), the scores are fused and
walked along the call graph so a caller is not blamed for its callee, and the TOP best get a suspect
named `Service/<name>` (the workload's service name), citing the evidence that carried it. The
failure mode is that of its strongest evidence.

Scores: 0.45 rising towards 0.85 with the fused score: strong correlation, never proof.
"""

from __future__ import annotations

from aiops.diagnosis.analyzers.common import finding, item
from aiops.diagnosis.evidence import EvidenceBundle, Finding
from aiops.diagnosis.rca import logs, metrics, rank, spans

TOP = 5
SCORE_MIN, SCORE_SPAN = 0.45, 0.4
HALF = 8.0  # the fused score at which a suspect sits half-way up its range
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
    "lost": ("LostRequests", "It serves fewer requests than before: check its readiness, restarts and what"
             " its callers get back."),
    "fanout": ("ChangedCalls", "It stopped (or started) calling a dependency as it did: it fails early on"
               " some path; read its errors and recent changes."),
    "failed": ("FailingService", "Its own spans fail while its callees' do not: read its errors and roll back"
               " a recent change."),
    "errors": ("ErrorLogs", "It logs errors it did not log before: read them; roll back a recent change."),
    "novel": ("NewLogPatterns", "It logs messages never seen before the symptoms: read them."),
    "metrics": ("ResourceAnomaly", "Its pods' resource or request signals moved: check saturation and limits."),
}  # fmt: skip
FAILURE_MODES = tuple(mode for mode, _ in MODES.values())


def _coverage(times: list[float], lo: float, hi: float) -> float:
    """Minutes of data actually present between lo and hi (recorded data may cover part of a window)."""
    inside = [t for t in times if lo <= t < hi]
    return max((max(inside) - min(inside)) / 60, 1.0) if inside else 1.0


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    if not bundle.spans and not bundle.service_logs:
        return []
    start, end = bundle.window_start.timestamp(), bundle.window_end.timestamp()
    split = bundle.detected_at.timestamp() if bundle.detected_at else end - (end - start) / 4
    evidence: spans.Scores = {}
    reqs = spans.requests(bundle.spans)
    if reqs:
        times = [r.start for r in reqs]
        before = spans.window([r for r in reqs if r.start < split], _coverage(times, start, split))
        after = spans.window([r for r in reqs if r.start >= split], _coverage(times, split, end + 1))
        evidence |= spans.scores(before, after)
    if bundle.service_logs:
        times = [line.time for line in bundle.service_logs]
        evidence |= logs.scores(
            bundle.service_logs, split, _coverage(times, start, split), _coverage(times, split, end + 1)
        )
    evidence |= metrics.scores(bundle.metrics, SIGNALS, split)
    services = {r.service for r in reqs} | {line.service for line in bundle.service_logs}
    ranking = [r for r in rank.rank(evidence, spans.call_graph(reqs), services) if r.score > 0][:TOP]
    findings = []
    for r in ranking:
        kind = r.evidence[0][0]
        mode, fix = MODES[kind]
        cited = [
            item("traces" if k in ("own", "gap", "lost", "fanout", "failed") else "logs" if k in ("errors", "novel")
                 else "prometheus", f"{r.service}: {f.detail}", "svc", k, r.service)
            for k, _, f in r.evidence
        ]  # fmt: skip
        why = "; ".join(f"{k} {z:.1f}" for k, z, _ in r.evidence)
        reason = f"{r.service} stands out on {why} (fused {r.total:.1f}, {r.score:.1f} after its callees)."
        score = SCORE_MIN + SCORE_SPAN * r.score / (r.score + HALF)
        findings.append(finding(f"Service/{r.service}", mode, score, reason, fix, cited))
    return findings
