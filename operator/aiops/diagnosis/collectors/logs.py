"""Log evidence from a log backend (Loki): the lines of every service the call graph reaches (or, without
traces, of the whole namespace) over the Incident's window, into `bundle.service_logs`; the target's
own pods' lines also into `bundle.logs` under `loki:<pod>`, beside the pod log tails.

Too many lines are sampled by the source and said in `bundle.missing`; a backend that cannot be read
is a gap naming it.
"""

from __future__ import annotations

from aiops.clusters.telemetry import MAX_LOG_LINES, LogSource, SourceError
from aiops.diagnosis.evidence import EvidenceBundle


def collect(source: LogSource, bundle: EvidenceBundle, limit: int = MAX_LOG_LINES) -> EvidenceBundle:
    services = sorted({s.service for s in bundle.spans}) or None
    try:
        fetched = source.lines(bundle.target.namespace, services, bundle.window_start, bundle.window_end, limit)
    except SourceError as exc:
        bundle.missing.append(f"logs: {str(exc)[:300]}")
        return bundle
    if fetched.truncated:
        bundle.missing.append(f"logs (sampled): {fetched.truncated[:300]}")
    bundle.service_logs = sorted(fetched.items, key=lambda line: line.time)
    own = {p["metadata"]["name"] for p in bundle.pods}
    for line in bundle.service_logs:
        if line.pod in own:
            bundle.logs.setdefault(f"loki:{line.pod}", []).append(line.message)
    return bundle
