"""Which service of a microservice system is at the root of a symptom, from traces, logs and metrics together.

Each evidence gives every service a score, comparing the incident window (from `detected_at`) with the
baseline before it: `spans.py` (own latency, slow calls into a service, changed calls,
failed spans), `patterns.py` (requests whose calls, steps or log statements changed), `logs.py` (error
lines, templates never seen before), `metrics.py` (each pod's signals against its own past), each as a
surprise that knows how much data it rests on (`stats.py`). `rank.py` fuses them and walks the call
graph, so that the callers of a faulty service, which only see its failure, are not blamed for it.
"""
