"""Which service of a microservice system is at the root of a symptom, from traces, logs and metrics together.

Each evidence gives every service a score, comparing the incident window (from `detected_at`) with the
baseline before it: `spans.py` (own latency, slow calls into a service, lost requests, changed calls,
failed spans), `logs.py` (error lines, templates never seen before), `metrics.py` (each pod's signals
against its own past). `rank.py` fuses them and walks the call graph, so that the callers of a faulty
service, which only see its failure, are not blamed for it.
"""
