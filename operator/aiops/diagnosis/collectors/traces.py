"""Trace evidence: the spans of the target's namespace over the Incident's window, from Tempo or Jaeger.

They land in `bundle.spans` (start order). A backend that cannot be read, or that had more than the
limit, is an evidence gap naming it: the diagnosis goes on with what there is.
"""

from __future__ import annotations

from aiops.clusters.telemetry import MAX_SPANS, SourceError, TraceSource
from aiops.diagnosis.evidence import EvidenceBundle


def collect(source: TraceSource, bundle: EvidenceBundle, limit: int = MAX_SPANS) -> EvidenceBundle:
    try:
        fetched = source.spans(bundle.target.namespace, bundle.window_start, bundle.window_end, limit)
    except SourceError as exc:
        bundle.missing.append(f"traces: {str(exc)[:300]}")
        return bundle
    if fetched.truncated:
        bundle.missing.append(f"traces (sampled): {fetched.truncated[:300]}")
    bundle.spans = sorted(fetched.items, key=lambda s: s.start)
    return bundle
