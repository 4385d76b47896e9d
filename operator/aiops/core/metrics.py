"""The operator's own activity counters, in one registry that the /metrics endpoint serves.

They are counted where the work happens (runs, the model gateway, SOP actions, the webhook), so they
live low in the layers; the endpoint and the figures computed from cluster state are in
aiops.observability.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

ANALYSIS_SECONDS = Histogram(
    "aiops_analysis_duration_seconds",
    "AnalysisRun execution time.",
    ["type", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "aiops_llm_tokens", "Tokens sent to and received from models.", ["model", "kind"], registry=REGISTRY
)
LLM_ERRORS = Counter(
    "aiops_llm_errors", "Model answers that failed, by reason.", ["model", "reason"], registry=REGISTRY
)
FALLBACKS = Counter("aiops_diagnosis_fallbacks", "Diagnoses that fell back to the analyzers.", registry=REGISTRY)
REDACTIONS = Counter("aiops_redactions", "Values redacted before a model saw them.", ["kind"], registry=REGISTRY)
SOP_ACTIONS = Counter(
    "aiops_sop_actions", "SOP actions run against a cluster.", ["action", "outcome"], registry=REGISTRY
)

# The Alertmanager receiver's own figures (aiops.ingest.alertmanager), served with the others.
WEBHOOK_REQUESTS = Counter(
    "aiops_webhook_requests",
    "Alertmanager webhook requests by outcome (created, updated, deduplicated, resolved, ignored, "
    "unauthorized, too_large, invalid, rate_limited, error).",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_LATENCY = Histogram(
    "aiops_webhook_request_duration_seconds",
    "Alertmanager webhook request latency, receipt to response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)

# Notifications (aiops.notify.delivery): each send's outcome, and the outbox's backlog.
NOTIFICATIONS = Counter(
    "aiops_notifications",
    "Notification sends by channel and outcome (sent, retry, dead).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
NOTIFICATIONS_PENDING = Gauge(
    "aiops_notifications_pending",
    "Notifications in the outbox not yet sent nor dead letters.",
    registry=REGISTRY,
)

# `aiops worker` (aiops.worker): its claims on runs. The queue it scales on, aiops_runs_queued, is state and is
# computed from the API server by the operator's /metrics (aiops.observability.server).
WORKER_CLAIMING = Gauge(
    "aiops_worker_claiming",
    "1 while this worker claims runs, 0 while the Lease API refuses or cannot be reached.",
    registry=REGISTRY,
)
WORKER_RUNS = Counter(
    "aiops_worker_runs",
    "Runs this worker claimed, by how they ended here (finished, abandoned: the lease was lost before the outcome, "
    "crashed, released: given up on shutdown).",
    ["outcome"],
    registry=REGISTRY,
)
WORKER_IN_FLIGHT = Gauge("aiops_worker_runs_in_flight", "Runs this worker is executing.", registry=REGISTRY)

# Model trials (aiops.diagnosis.rollout): each root-cause diagnosis by the version that made it or was asked to,
# `<catalogue model>/<served model>@<prompt version>`, and its role (primary, canary, shadow). The version label
# is bounded: past aiops.diagnosis.rollout.MAX_VERSIONS distinct versions a new one counts as "other".
MODEL_TRIALS = Counter(
    "aiops_model_trials",
    "Root-cause model trials by version, role and the gateway's status (completed: valid JSON; invalid; "
    "unreachable; error: the trial broke).",
    ["version", "role", "status"],
    registry=REGISTRY,
)
MODEL_TRIAL_SECONDS = Histogram(
    "aiops_model_trial_duration_seconds",
    "Model answer time of root-cause trials that got an answer, by version and role.",
    ["version", "role"],
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
    registry=REGISTRY,
)
MODEL_TRIAL_TOKENS = Counter(
    "aiops_model_trial_tokens",
    "Tokens of root-cause trials by version and kind.",
    ["version", "kind"],
    registry=REGISTRY,
)
MODEL_TRIAL_COST = Counter(
    "aiops_model_trial_cost",
    "Cost of root-cause trials at the catalogue's pricePerMillionTokens, by version (priced versions only).",
    ["version"],
    registry=REGISTRY,
)
MODEL_AGREEMENT = Counter(
    "aiops_model_shadow_agreement",
    "Shadow answers by version and whether their top suspect agrees with the primary's (true, false).",
    ["version", "agrees"],
    registry=REGISTRY,
)
MODEL_TRIALS_LOST = Counter(
    "aiops_model_trials_lost",
    "Model trials lost: shadow_dropped (the shadow queue was full: the candidate not asked), unrecorded (rows not "
    "written: their queue was full or the history refused them).",
    ["reason"],
    registry=REGISTRY,
)

# Objects handed again to the handlers by a resync pass (aiops.controllers.resync), by kind and why.
RESYNCS = Counter(
    "aiops_resyncs",
    "Incidents and AnalysisRuns whose handling was lost (an API server or etcd outage) and that a resync pass handed "
    "again to the handlers, by kind and reason (never-handled, retry-overdue, deletion, run-missing, run-idle).",
    ["kind", "reason"],
    registry=REGISTRY,
)
