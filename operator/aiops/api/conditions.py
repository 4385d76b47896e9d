"""Condition types and reasons of the four kinds: the words `kubectl describe` shows, in one place.

Who writes which condition is in docs/architecture.md ("One writer per status field").
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    READY = "Ready"  # every kind: the spec is valid and its references resolve (ManagedCluster: probed)
    # Incident
    DIAGNOSED = "Diagnosed"
    MODEL_ANSWERED = "ModelAnswered"  # Incident and AnalysisRun
    SOP_MATCHED = "SOPMatched"
    APPROVALS_VALID = "ApprovalsValid"
    APPROVED = "Approved"  # the current action step has the approvals its policy asks for
    FEEDBACK = "Feedback"
    ALERT_FIRING = "AlertFiring"
    CORRELATED = "Correlated"  # a child: folded into a fleet-wide parent
    NOTIFIED = "Notified"
    SUSPENDED = "Suspended"  # the kill switch holds its runbook (fleet-wide or its cluster's)
    CHANGE_VERIFIED = "ChangeVerified"  # the last SOP change: verified, or undone
    POSTMORTEM_WRITTEN = "PostmortemWritten"  # the resolved Incident's postmortem is in object storage
    # SOP
    INDEXED = "Indexed"  # its steps are in the knowledge index (history on only)
    # AnalysisRun
    SCHEDULED = "Scheduled"
    MODEL_READY = "ModelReady"
    ANOMALIES_FOUND = "AnomaliesFound"
    EXHAUSTION_FORECAST = "ExhaustionForecast"  # capacityForecast: a resource reaches a limit inside the horizon
    CHANGE_RISK = "ChangeRisk"  # changeReview: True when the change carries medium or high risk
    CLAIMED = "Claimed"  # a worker (aiops worker) holds its Lease; written only when claiming failed or resumed
    # ManagedCluster
    API_SERVER_REACHABLE = "APIServerReachable"
    NODES_READY = "NodesReady"
    HISTORY_RECORDED = "HistoryRecorded"


class Reason(StrEnum):
    # Ready, on every kind
    ACCEPTED = "Accepted"
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    MISSING_REFERENCE = "MissingReference"
    ANALYSIS_SCHEDULED = "AnalysisScheduled"
    # Incident
    ANALYSIS_STARTED = "AnalysisStarted"
    ROOT_CAUSE_IDENTIFIED = "RootCauseIdentified"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_FALLBACK = "AnalysisFallback"
    COMPLETED = "Completed"
    MATCHED = "Matched"
    NO_MATCH = "NoMatch"
    SOP_GONE = "SOPGone"
    SOP_INVALID = "SOPInvalid"
    UNKNOWN_STEP = "UnknownStep"
    # Approved: verified by the admission webhook, or not (AIOPS_APPROVALS)
    APPROVED = "Approved"
    APPROVED_UNVERIFIED = "ApprovedUnverified"
    AWAITING_APPROVAL = "AwaitingApproval"
    UNVERIFIED_APPROVAL = "UnverifiedApproval"
    DIAGNOSIS_CORRECT = "DiagnosisCorrect"
    DIAGNOSIS_INCORRECT = "DiagnosisIncorrect"
    RESOLVED = "Resolved"
    RESOLVED_DURING_REMEDIATION = "ResolvedDuringRemediation"
    SHARED_CAUSE = "SharedCause"
    DELIVERED = "Delivered"
    DELIVERY_PENDING = "DeliveryPending"
    DELIVERY_FAILED = "DeliveryFailed"
    # PostmortemWritten
    POSTMORTEM_WRITTEN = "PostmortemWritten"
    STORE_UNREACHABLE = "StoreUnreachable"
    BUCKET_MISSING = "BucketMissing"
    STORE_REJECTED = "StoreRejected"
    # Indexed (SOP)
    INDEXED = "Indexed"
    INDEX_FAILED = "IndexFailed"  # PostgreSQL or the embedder failed: retried with backoff
    STEP_REJECTED = "StepRejected"  # a step the index refuses (aiops.knowledge.chunking): fixed in the spec
    DOCUMENT_REJECTED = "DocumentRejected"  # Event on a knowledge ConfigMap: a key the index refuses
    # Suspended (also ModelAnswered: the model was not called), ChangeVerified
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    VERIFIED = "Verified"
    UNDONE = "Undone"
    UNDO_FAILED = "UndoFailed"
    # Events of an SOP action delivered as a pull request (sops/remediation/gitops.py)
    PULL_REQUEST_OPENED = "PullRequestOpened"
    PULL_REQUEST_MERGED = "PullRequestMerged"
    PULL_REQUEST_CLOSED = "PullRequestClosed"
    PULL_REQUEST_FAILED = "PullRequestFailed"
    SYNCED = "Synced"
    # AnalysisRun
    NO_MODEL_CONFIGURED = "NoModelConfigured"
    INVALID_ANSWER = "InvalidAnswer"
    MODEL_UNREACHABLE = "ModelUnreachable"
    QUEUED = "Queued"
    ADMITTED = "Admitted"
    WAITING = "Waiting"
    READY = "Ready"
    WEIGHTS_MISSING = "WeightsMissing"
    TIMEOUT = "Timeout"
    NO_ANOMALIES = "NoAnomalies"
    ANOMALY_SCAN_FAILED = "AnomalyScanFailed"  # Event on a ManagedCluster: a scan query could not run
    EXHAUSTION_FORECAST = "ExhaustionForecast"
    NO_EXHAUSTION = "NoExhaustion"
    HIGH_RISK = "HighRisk"
    MEDIUM_RISK = "MediumRisk"
    LOW_RISK = "LowRisk"
    OVERRIDDEN = "Overridden"  # high or medium risk, let through by the object's override annotation
    CAPACITY_FORECAST_FAILED = "CapacityForecastFailed"  # Event on a ManagedCluster: a forecast query could not run
    QUESTION_REFUSED = "QuestionRefused"  # query runs: the question asked for more than reading
    BUDGET_EXHAUSTED = "BudgetExhausted"
    TOOLS_FAILED = "ToolsFailed"
    ANOMALIES_FOUND = "AnomaliesFound"
    INCIDENT_OPENED = "IncidentOpened"
    CLAIMED = "Claimed"
    LEASE_UNAVAILABLE = "LeaseUnavailable"
    # ManagedCluster
    PROBED = "Probed"
    REACHABLE = "Reachable"
    NODES_NOT_READY = "NodesNotReady"
    ALL_NODES_READY = "AllNodesReady"
    DEGRADED = "Degraded"
    API_SERVER_UNREACHABLE = "APIServerUnreachable"
    UNREACHABLE = "Unreachable"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    TLS_ERROR = "TLSError"
    INVALID_KUBECONFIG = "InvalidKubeconfig"
    API_ERROR = "APIError"
    CONNECTION_FAILED = "ConnectionFailed"
    NOT_READY = "NotReady"
    AUTH_SECRET_MISSING = "AuthSecretMissing"
    AUTH_SECRET_UNREADABLE = "AuthSecretUnreadable"
    GPU_XID_ERRORS = "GPUXidErrors"
    GPU_ECC_ERRORS = "GPUECCErrors"
    RECORDING = "Recording"
    OFF = "Off"
    FAILING = "Failing"
