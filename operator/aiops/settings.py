"""Operator configuration, read once from the environment (the Helm chart sets it).

| variable | meaning |
| --- | --- |
| AIOPS_NAMESPACE | the operator's namespace (default Secret namespace), default aiops-system |
| AIOPS_PROMETHEUS_URL | Prometheus of the local cluster (ManagedClusters name their own) |
| AIOPS_LOKI_URL | Loki of the local cluster, optional |
| AIOPS_TEMPO_URL | Tempo (query frontend) of the local cluster, optional; read for traces before Jaeger |
| AIOPS_JAEGER_URL | Jaeger query service of the local cluster, e.g. http://jaeger-query.observability:16686, optional |
| AIOPS_LLM_BASE_URL | OpenAI-compatible endpoint, e.g. http://vllm.aiops-system:8000/v1; unset = no model |
| AIOPS_LLM_MODEL | served model name |
| AIOPS_LLM_API_KEY | key for external endpoints (from a Secret through the Deployment's env) |
| AIOPS_LLM_STRUCTURED_OUTPUT | json_schema (default) or json_object for servers without json_schema |
| AIOPS_LLM_TIMEOUT_S | per-request timeout, default 120 |
| AIOPS_LLM_SCHEMA_BOUNDS | send maxLength/maxItems in the schema (default true; false for OpenAI's strict mode) |
| AIOPS_LLM_MAX_TOKENS | completion budget, default 1024 |
| AIOPS_LLM_TOOL_CALLING | how query runs call tools: json (default; one schema-constrained reply a step) or native |
| AIOPS_QUERY_MAX_STEPS | a query run's budget of model replies, default 8 |
| AIOPS_QUERY_MAX_TOKENS | a query run's budget of tokens (prompt and completion), default 24000 |
| AIOPS_QUERY_MAX_SECONDS | a query run's budget of wall time, default 240 |
| AIOPS_ANALYSIS_WORKERS | analyses run at once, default 4 (per process: the operator, or each `aiops worker`) |
| AIOPS_RUN_EXECUTION | inline (default: the operator executes the runs it accepts) or workers (`aiops worker` does) |
| AIOPS_RUN_LEASE_S | a worker's claim on a run (its Lease) lapses this long after its last renewal, default 15 |
| AIOPS_WORKER_DRAIN_S | on SIGTERM a worker lets its runs finish this long, then releases their leases, default 25 |
| AIOPS_POSTGRES_DSN | postgresql:// URL of the history database; unset = history off |
| AIOPS_POSTGRES_DSN_FILE | a file holding that URL (a mounted Secret), used when AIOPS_POSTGRES_DSN is unset |
| AIOPS_HISTORY_RETENTION_DAYS | history and audit entries older than this are deleted, default 90 |
| AIOPS_EMBEDDINGS | local (default: all-MiniLM-L6-v2 on the CPU, from the package) or openai (/v1/embeddings) |
| AIOPS_EMBEDDINGS_MODEL_PATH | local: the model's model.zip or extracted folder, instead of the installed package |
| AIOPS_EMBEDDINGS_BASE_URL / AIOPS_EMBEDDINGS_MODEL | openai: the endpoint, e.g. http://embed:8000/v1, and model |
| AIOPS_EMBEDDINGS_API_KEY | openai: the key, for external endpoints |
| AIOPS_KNOWLEDGE_CONFIGMAPS | index the .md/.txt keys of ConfigMaps labelled aiops.dev/knowledge=true, default true |
| AIOPS_KNOWLEDGE_GIT_URL | a Git repository whose .md/.txt files are indexed (https, ssh, file URL); unset = none |
| AIOPS_KNOWLEDGE_GIT_REF / AIOPS_KNOWLEDGE_GIT_PATH | its branch or tag (default: the default one), folder (all) |
| AIOPS_KNOWLEDGE_GIT_INTERVAL_S | seconds between pulls of that repository, default 300 |
| AIOPS_KNOWLEDGE_GIT_TOKEN_SECRET | Secret in AIOPS_NAMESPACE: its token (key: host, or `token`); default GitOps one |
| AIOPS_REDIS_URL | redis:// URL for the event stream (the Redis stream aiops:events); unset = no stream |
| AIOPS_EVENTS_RATE_LIMIT | events published per object and type per minute, default 120 |
| AIOPS_EVENTS_DEDUP_TTL_S | how long a replayed event is recognised and not published again, default 3600 |
| AIOPS_EVENTS_STREAM_MAXLEN | the stream keeps about this many events (XADD MAXLEN ~), default 100000 |
| AIOPS_EVENTS_PUBSUB | also PUBLISH each event on the pub/sub channels of old, default true (deprecated) |
| AIOPS_CACHE_DIR | where the command line keeps files (`aiops watch`'s position), default ~/.cache/aiops-operator |
| AIOPS_CLUSTER_PROBE_INTERVAL_S | seconds between probes of each ManagedCluster, default 60 |
| AIOPS_WEBHOOK_ADDR | Alertmanager receiver listen address, e.g. :9443 or 127.0.0.1:9443; unset = off |
| AIOPS_WEBHOOK_TOKEN / AIOPS_WEBHOOK_TOKEN_FILE | the bearer token the receiver requires (the file wins) |
| AIOPS_WEBHOOK_TLS_CERT / AIOPS_WEBHOOK_TLS_KEY | PEM files: serve HTTPS; unset = plain HTTP |
| AIOPS_WEBHOOK_NAMESPACE | Incidents of alerts without a namespace label, default AIOPS_NAMESPACE |
| AIOPS_WEBHOOK_RATE / AIOPS_WEBHOOK_BURST | requests/s (and burst) per client, default 50 / 200; 0 = no limit |
| AIOPS_WEBHOOK_MAX_BODY | largest request body in bytes, default 1048576 |
| AIOPS_MODEL_CATALOGUE | YAML file of the models runs may name in spec.inference.pool (aiops.inference.catalogue) |
| AIOPS_MODEL_WAIT_S | how long a run waits for its pool to become ready, default 900 |
| AIOPS_POOL_SWEEP_INTERVAL_S | seconds between checks for idle pools and expired runs, default 30 |
| AIOPS_CORRELATION_INTERVAL_S | seconds between fleet correlation passes over the hub's Incidents, 15; 0 = off |
| AIOPS_API_RETRY_S | seconds a failing API request (5xx, refused) is retried before kopf gives up, 720 |
| AIOPS_RESYNC_INTERVAL_S | seconds between resync passes (objects whose handling was lost), 30; 0 = off |
| AIOPS_ANOMALY_SCAN_TICK_S | seconds between anomaly scan ticks per ManagedCluster (spec.anomalyScan), 30; 0 = off |
| AIOPS_ANOMALY_SCAN_BATCH | due queries one tick of one cluster runs at most, 10 |
| AIOPS_CORRELATION_WINDOW_S | Incidents detected this close together may share a cause, default 1800 |
| AIOPS_NOTIFY_CONFIG | YAML file of the notification channels and routes (aiops.notify.config); unset = none sent |
| AIOPS_KUBE_CACHE | watch-fed caches of pods, events, workloads, nodes, PVCs and quotas for diagnoses, default true |
| AIOPS_RUN_TTL_S | finished AnalysisRuns no Incident owns are deleted this long after, default 86400; 0 = never |
| AIOPS_LEADER_ELECTION | true: wait for a Lease before acting (replicas > 1, one active); default false (standalone) |
| AIOPS_LEADER_LEASE_S | how long a Lease holds without renewal, default 10 (failover takes about this plus 1-3 s) |
| AIOPS_LEADER_RENEW_S | seconds between renewals, default 2 (standbys check every 0.5 s); at most a third of lease |
| AIOPS_LEADER_LEASE_NAME | the Lease in AIOPS_NAMESPACE, default aiops-operator (a shard's gets -shard-i appended) |
| AIOPS_POD_NAME | this replica's pod (downward API): the Lease holder, labelled aiops.dev/leader while it leads |
| AIOPS_SHARD | i/N: this controller is shard i of N and handles only its share (aiops.core.sharding); default 0/1 |
| AIOPS_APPROVALS | verified (default: only approvals the admission webhook sealed count) or unverified-allowed (dev) |
| AIOPS_APPROVAL_KEY / AIOPS_APPROVAL_KEY_FILE | the key (32+ characters) the webhook seals approvals with (file wins) |
| AIOPS_APPROVAL_POLICY | YAML file of the cluster's default approval rules (`rules:` as in spec.approvalPolicy) |
| AIOPS_ADMISSION_ADDR | the approvals admission webhook's HTTPS listen address, e.g. :8443; unset = off |
| AIOPS_ADMISSION_TLS_CERT / AIOPS_ADMISSION_TLS_KEY | its PEM files; unset = a self-signed certificate made at start |
| AIOPS_ADMISSION_HOST | the name or IP the API server calls it by (self-signed certificate, managed configuration) |
| AIOPS_ADMISSION_MANAGED | e.g. approvals.aiops.dev: the operator keeps webhook configurations of that name (dev) |
| AIOPS_GITOPS_DELIVERY | SOP actions on Argo CD-managed workloads: auto (default: a pull request), pullRequest, live |
| AIOPS_GITOPS_ARGOCD_NAMESPACE | where the Argo CD Applications live, default argocd |
| AIOPS_GITOPS_TOKEN_SECRET | Secret in AIOPS_NAMESPACE: a forge token per host key (or `token`), default aiops-gitops |
| AIOPS_GITOPS_FORGES | host=KIND[@API URL] (KIND: github, gitlab, gitea), comma-separated, for other hosts |
| AIOPS_GITOPS_AUTHOR | the author of the operator's commits, `Name <email>`, default aiops-operator |
| AIOPS_POSTMORTEM_ENDPOINT | S3-compatible store of postmortems, e.g. https://minio.minio:9000; unset = none written |
| AIOPS_POSTMORTEM_BUCKET | the bucket postmortems go into (it must exist); required with the endpoint |
| AIOPS_POSTMORTEM_REGION | the bucket's region, default us-east-1 |
| AIOPS_POSTMORTEM_ACCESS_KEY / AIOPS_POSTMORTEM_SECRET_KEY | the credentials (each also as a _FILE; the file wins) |
"""

from __future__ import annotations

import functools
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from aiops.api.common import field_path
from aiops.api.sop import ApprovalPolicy
from aiops.core.sharding import Shard
from aiops.inference.catalogue import CatalogueError, ModelCatalogue
from aiops.inference.catalogue import load as load_catalogue
from aiops.inference.gateway import GatewayConfig


@dataclass(frozen=True)
class Settings:
    namespace: str = "aiops-system"
    prometheus_url: str | None = None
    loki_url: str | None = None
    tempo_url: str | None = None
    jaeger_url: str | None = None
    llm: GatewayConfig | None = None
    analysis_workers: int = 4
    run_execution: str = "inline"  # or "workers": aiops.worker executes the runs, the operator only accepts them
    run_lease_s: int = 15
    worker_drain_s: int = 25
    metrics_port: int = 0  # 0: no /metrics endpoint
    postgres_dsn: str | None = None  # history (aiops.stores.history); None: off
    postgres_dsn_file: str | None = None
    history_retention_days: int = 90
    redis_url: str | None = None  # event stream (aiops.stores.eventstream); None: off
    events_rate_limit: int = 120
    events_dedup_ttl_s: int = 3600
    events_stream_maxlen: int = 100_000
    events_pubsub: bool = True  # the pub/sub copy, for one release
    cluster_probe_interval_s: int = 60
    webhook: WebhookSettings | None = None  # None: no Alertmanager receiver
    models: ModelCatalogue | None = None  # the model catalogue (vLLM pools, external models); None: no pools
    model_wait_s: int = 900
    pool_sweep_interval_s: int = 30
    run_ttl_s: int = 86400  # 0: finished runs are kept
    notify_config: str | None = None  # path of the notifications configuration; None: no notifications
    kube_cache: bool = True  # watch-fed caches for the Kubernetes collector (local cluster)
    correlation_interval_s: int = 15  # 0: no fleet correlation
    resync_interval_s: int = 30  # 0: no resync passes (controllers/resync.py)
    api_retry_s: int = 720  # kopf's retries of a failing API request (observability/liveness.py)
    anomaly_scan_tick_s: int = 30  # 0: no periodic anomaly scans
    capacity_forecast_tick_s: int = 60  # 0: no periodic capacity forecasts
    tool_calling: str = "json"  # query runs: json | native
    query_max_steps: int = 8
    query_max_tokens: int = 24_000
    query_max_seconds: int = 240
    anomaly_scan_batch: int = 10
    correlation_window_s: int = 1800
    leader: LeaderSettings | None = None  # None: standalone, no leader election
    shard: Shard = Shard()
    approvals: ApprovalSettings = field(default_factory=lambda: ApprovalSettings())
    admission: AdmissionSettings | None = None  # None: this process serves no admission webhook
    gitops: GitOpsSettings = field(default_factory=lambda: GitOpsSettings())
    embeddings: EmbeddingSettings = field(default_factory=lambda: EmbeddingSettings())
    knowledge: KnowledgeSettings = field(default_factory=lambda: KnowledgeSettings())
    postmortems: PostmortemSettings | None = None  # None: no postmortems written


@dataclass(frozen=True)
class PostmortemSettings:
    """Where resolved Incidents' postmortems are stored (aiops.postmortems): an S3-compatible bucket."""

    endpoint: str  # http(s)://host[:port], no path
    bucket: str
    region: str = "us-east-1"
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class EmbeddingSettings:
    """How the knowledge index embeds text (aiops.knowledge.embed)."""

    backend: str = "local"  # local | openai
    model_path: str | None = None  # local: a model.zip or folder; None: the installed package's
    base_url: str = ""  # openai
    model: str = ""
    api_key: str = field(default="not-needed", repr=False)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class KnowledgeSettings:
    """Documents the knowledge index loads (aiops.controllers.knowledge): labelled ConfigMaps and a Git path."""

    configmaps: bool = True
    git_url: str = ""  # "": no Git documents
    git_ref: str = ""  # a branch or tag; "": the default branch
    git_path: str = ""  # a folder of the repository; "": all of it
    git_interval_s: int = 300
    git_token_secret: str = "aiops-gitops"


FORGE_KINDS = ("github", "gitlab", "gitea")
DELIVERIES = ("auto", "pullRequest", "live")


@dataclass(frozen=True)
class ForgeSetting:
    host: str
    kind: str  # one of FORGE_KINDS
    api_url: str | None = None  # None: the kind's usual place on the host


@dataclass(frozen=True)
class GitOpsSettings:
    """SOP actions on Argo CD-managed workloads, delivered as pull requests (aiops.sops.remediation.gitops)."""

    delivery: str = "auto"  # one of DELIVERIES, the default of steps that do not say
    argocd_namespace: str = "argocd"
    token_secret: str = "aiops-gitops"
    forges: tuple[ForgeSetting, ...] = ()
    author_name: str = "aiops-operator"
    author_email: str = "aiops-operator@users.noreply.invalid"


@dataclass(frozen=True)
class ApprovalSettings:
    """What an approval of an SOP action must carry (aiops.sops.approvals, aiops.sops.attestation)."""

    unverified_allowed: bool = False  # AIOPS_APPROVALS=unverified-allowed: a dev setup without the webhook
    key: bytes = field(default=b"", repr=False)  # seals what the webhook saw; empty: no approval verifies
    policy: ApprovalPolicy | None = None  # the cluster default, after an SOP's own rules


@dataclass(frozen=True)
class AdmissionSettings:
    """The admission webhook that binds approvals to the requester (aiops.controllers.admission)."""

    host: str  # listen address
    port: int
    url_host: str  # what the API server calls: the self-signed certificate's name, the managed configuration's URL
    tls_cert: str | None = None  # None: a self-signed certificate made at start
    tls_key: str | None = None
    managed: str | None = None  # the webhook configurations' name when the operator keeps them itself


@dataclass(frozen=True)
class LeaderSettings:
    lease_name: str = "aiops-operator"
    lease_s: int = 10
    renew_s: int = 2
    identity: str = ""  # the pod name, or hostname-pid outside a pod
    pod_name: str | None = None  # labelled while it leads; None outside a pod


@dataclass(frozen=True)
class WebhookSettings:
    host: str
    port: int
    token: str = field(repr=False)
    namespace: str = "aiops-system"
    tls_cert: str | None = None
    tls_key: str | None = None
    rate: float = 50.0
    burst: int = 200
    max_body: int = 1 << 20


def token_from_env(env: dict[str, str], name: str) -> str:
    """A bearer token from NAME_FILE (a mounted Secret; it wins) or NAME; "" when neither is set."""
    token = env.get(name) or ""
    if path := env.get(f"{name}_FILE"):
        try:
            token = open(path).read().strip()
        except OSError as exc:
            raise SystemExit(f"{name}_FILE={path!r}: {exc.strerror}") from None
    return token


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: expected an integer") from None


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    llm = None
    if env.get("AIOPS_LLM_BASE_URL"):
        if not env.get("AIOPS_LLM_MODEL"):
            raise SystemExit("AIOPS_LLM_BASE_URL is set but AIOPS_LLM_MODEL is not: name the served model")
        try:
            llm = _gateway_config(env)
        except ValueError as exc:
            raise SystemExit(f"AIOPS_LLM_*: {exc}") from None
    return Settings(
        namespace=env.get("AIOPS_NAMESPACE") or "aiops-system",
        prometheus_url=env.get("AIOPS_PROMETHEUS_URL") or None,
        loki_url=env.get("AIOPS_LOKI_URL") or None,
        tempo_url=env.get("AIOPS_TEMPO_URL") or None,
        jaeger_url=env.get("AIOPS_JAEGER_URL") or None,
        llm=llm,
        analysis_workers=_int(env, "AIOPS_ANALYSIS_WORKERS", 4),
        run_execution=_choice(env, "AIOPS_RUN_EXECUTION", ("inline", "workers")),
        run_lease_s=_lease(env),
        worker_drain_s=max(_int(env, "AIOPS_WORKER_DRAIN_S", 25), 0),
        metrics_port=_int(env, "AIOPS_METRICS_PORT", 0),
        postgres_dsn=env.get("AIOPS_POSTGRES_DSN") or None,
        postgres_dsn_file=env.get("AIOPS_POSTGRES_DSN_FILE") or None,
        history_retention_days=_positive(env, "AIOPS_HISTORY_RETENTION_DAYS", 90),
        redis_url=env.get("AIOPS_REDIS_URL") or None,
        events_rate_limit=_positive(env, "AIOPS_EVENTS_RATE_LIMIT", 120),
        events_dedup_ttl_s=_positive(env, "AIOPS_EVENTS_DEDUP_TTL_S", 3600),
        events_stream_maxlen=_positive(env, "AIOPS_EVENTS_STREAM_MAXLEN", 100_000),
        events_pubsub=_flag(env, "AIOPS_EVENTS_PUBSUB", True),
        cluster_probe_interval_s=_probe_interval(env),
        webhook=_webhook(env, env.get("AIOPS_NAMESPACE") or "aiops-system"),
        models=_catalogue(env),
        model_wait_s=_positive(env, "AIOPS_MODEL_WAIT_S", 900),
        pool_sweep_interval_s=_positive(env, "AIOPS_POOL_SWEEP_INTERVAL_S", 30),
        run_ttl_s=max(_int(env, "AIOPS_RUN_TTL_S", 86400), 0),
        kube_cache=(env.get("AIOPS_KUBE_CACHE") or "true").lower() not in ("0", "false", "no", "off"),
        correlation_interval_s=max(_int(env, "AIOPS_CORRELATION_INTERVAL_S", 15), 0),
        resync_interval_s=max(_int(env, "AIOPS_RESYNC_INTERVAL_S", 30), 0),
        api_retry_s=_positive(env, "AIOPS_API_RETRY_S", 720),
        anomaly_scan_tick_s=max(_int(env, "AIOPS_ANOMALY_SCAN_TICK_S", 30), 0),
        capacity_forecast_tick_s=max(_int(env, "AIOPS_CAPACITY_FORECAST_TICK_S", 60), 0),
        tool_calling=_tool_calling(env),
        query_max_steps=_positive(env, "AIOPS_QUERY_MAX_STEPS", 8),
        query_max_tokens=_positive(env, "AIOPS_QUERY_MAX_TOKENS", 24_000),
        query_max_seconds=_positive(env, "AIOPS_QUERY_MAX_SECONDS", 240),
        anomaly_scan_batch=_positive(env, "AIOPS_ANOMALY_SCAN_BATCH", 10),
        correlation_window_s=_positive(env, "AIOPS_CORRELATION_WINDOW_S", 1800),
        notify_config=env.get("AIOPS_NOTIFY_CONFIG") or None,
        leader=_leader(env, shard := _shard(env)),
        shard=shard,
        approvals=_approvals(env),
        admission=_admission(env),
        gitops=_gitops(env),
        embeddings=_embeddings(env),
        knowledge=_knowledge(env),
        postmortems=_postmortems(env),
    )


def _postmortems(env: dict[str, str]) -> PostmortemSettings | None:
    endpoint = (env.get("AIOPS_POSTMORTEM_ENDPOINT") or "").strip().rstrip("/")
    if not endpoint:
        return None
    scheme, sep, host = endpoint.partition("://")
    if not sep or scheme not in ("http", "https") or not host or "/" in host:
        raise SystemExit(f"AIOPS_POSTMORTEM_ENDPOINT={endpoint!r}: expected http(s)://host[:port], without a path")
    bucket = (env.get("AIOPS_POSTMORTEM_BUCKET") or "").strip()
    if not bucket:
        raise SystemExit("AIOPS_POSTMORTEM_ENDPOINT is set but AIOPS_POSTMORTEM_BUCKET is not: name the bucket")
    return PostmortemSettings(
        endpoint=endpoint,
        bucket=bucket,
        region=env.get("AIOPS_POSTMORTEM_REGION") or "us-east-1",
        access_key=token_from_env(env, "AIOPS_POSTMORTEM_ACCESS_KEY"),
        secret_key=token_from_env(env, "AIOPS_POSTMORTEM_SECRET_KEY"),
    )


def _embeddings(env: dict[str, str]) -> EmbeddingSettings:
    backend = _choice(env, "AIOPS_EMBEDDINGS", ("local", "openai"))
    if backend == "local":
        return EmbeddingSettings(model_path=env.get("AIOPS_EMBEDDINGS_MODEL_PATH") or None)
    base_url, model = env.get("AIOPS_EMBEDDINGS_BASE_URL") or "", env.get("AIOPS_EMBEDDINGS_MODEL") or ""
    if not base_url or not model:
        raise SystemExit("AIOPS_EMBEDDINGS=openai needs AIOPS_EMBEDDINGS_BASE_URL and AIOPS_EMBEDDINGS_MODEL")
    return EmbeddingSettings(
        backend, base_url=base_url, model=model, api_key=env.get("AIOPS_EMBEDDINGS_API_KEY") or "not-needed"
    )


def _knowledge(env: dict[str, str]) -> KnowledgeSettings:
    url = (env.get("AIOPS_KNOWLEDGE_GIT_URL") or "").strip()
    if url and not re.match(r"^(https?|ssh|file|git)://|^[\w.-]+@[\w.-]+:", url):
        raise SystemExit(f"AIOPS_KNOWLEDGE_GIT_URL={url!r}: expected https://, ssh://, file:// or user@host:path")
    return KnowledgeSettings(
        configmaps=_flag(env, "AIOPS_KNOWLEDGE_CONFIGMAPS", True),
        git_url=url,
        git_ref=(env.get("AIOPS_KNOWLEDGE_GIT_REF") or "").strip(),
        git_path=(env.get("AIOPS_KNOWLEDGE_GIT_PATH") or "").strip().strip("/"),
        git_interval_s=_positive(env, "AIOPS_KNOWLEDGE_GIT_INTERVAL_S", 300),
        git_token_secret=env.get("AIOPS_KNOWLEDGE_GIT_TOKEN_SECRET")
        or env.get("AIOPS_GITOPS_TOKEN_SECRET")
        or "aiops-gitops",
    )


def _gitops(env: dict[str, str]) -> GitOpsSettings:
    raw = (env.get("AIOPS_GITOPS_DELIVERY") or "auto").strip()
    delivery = next((d for d in DELIVERIES if d.lower() == raw.lower()), None)
    if delivery is None:
        raise SystemExit(f"AIOPS_GITOPS_DELIVERY={raw!r}: expected one of {', '.join(DELIVERIES)}")
    forges = []
    for item in filter(None, (i.strip() for i in (env.get("AIOPS_GITOPS_FORGES") or "").split(","))):
        host, sep, rest = item.partition("=")
        kind, _, api = rest.partition("@")
        if not sep or not host or kind not in FORGE_KINDS or (api and not api.startswith(("http://", "https://"))):
            raise SystemExit(
                f"AIOPS_GITOPS_FORGES: {item!r}: expected host=github|gitlab|gitea or host=KIND@https://API-URL"
            )
        forges.append(ForgeSetting(host.lower(), kind, api.rstrip("/") or None))
    author = (env.get("AIOPS_GITOPS_AUTHOR") or "").strip()
    name, email = GitOpsSettings.author_name, GitOpsSettings.author_email
    if author:
        name, sep, rest = author.partition("<")
        email = rest.rstrip().removesuffix(">")
        if not sep or not name.strip() or "@" not in email or not rest.rstrip().endswith(">"):
            raise SystemExit(f"AIOPS_GITOPS_AUTHOR={author!r}: expected 'Name <email>'")
    return GitOpsSettings(
        delivery=delivery,
        argocd_namespace=env.get("AIOPS_GITOPS_ARGOCD_NAMESPACE") or "argocd",
        token_secret=env.get("AIOPS_GITOPS_TOKEN_SECRET") or "aiops-gitops",
        forges=tuple(forges),
        author_name=name.strip(),
        author_email=email.strip(),
    )


APPROVAL_KEY_MIN_CHARS = 32


def _approvals(env: dict[str, str]) -> ApprovalSettings:
    mode = _choice(env, "AIOPS_APPROVALS", ("verified", "unverified-allowed"))
    key = token_from_env(env, "AIOPS_APPROVAL_KEY")
    if key and len(key) < APPROVAL_KEY_MIN_CHARS:
        raise SystemExit(f"AIOPS_APPROVAL_KEY: expected at least {APPROVAL_KEY_MIN_CHARS} characters")
    if env.get("AIOPS_ADMISSION_ADDR") and not key:
        raise SystemExit(
            "the admission webhook seals the approvals it checks: set AIOPS_APPROVAL_KEY_FILE (or AIOPS_APPROVAL_KEY), "
            f"at least {APPROVAL_KEY_MIN_CHARS} characters, the same for every replica"
        )
    return ApprovalSettings(mode == "unverified-allowed", key.encode(), _approval_policy(env))


def _approval_policy(env: dict[str, str]) -> ApprovalPolicy | None:
    path = env.get("AIOPS_APPROVAL_POLICY")
    if not path:
        return None
    try:
        return ApprovalPolicy.model_validate(yaml.safe_load(Path(path).read_text()) or {})
    except OSError as exc:
        raise SystemExit(f"AIOPS_APPROVAL_POLICY={path!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SystemExit(f"AIOPS_APPROVAL_POLICY={path!r}: not YAML ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SystemExit(f"AIOPS_APPROVAL_POLICY={path!r}: {field_path(err['loc'])}: {err['msg']}") from None


def _listen(env: dict[str, str], name: str, example: str) -> tuple[str, int] | None:
    """(host, port) of a [host]:port listen address, host 0.0.0.0 when left out; None when unset."""
    addr = env.get(name)
    if not addr:
        return None
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SystemExit(f"{name}={addr!r}: expected [host]:port, e.g. {example}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _tls_files(env: dict[str, str], prefix: str) -> tuple[str | None, str | None]:
    cert, key = env.get(f"{prefix}_TLS_CERT") or None, env.get(f"{prefix}_TLS_KEY") or None
    if bool(cert) != bool(key):
        raise SystemExit(f"{prefix}_TLS_CERT and {prefix}_TLS_KEY go together: set both or neither")
    return cert, key


def _admission(env: dict[str, str]) -> AdmissionSettings | None:
    if (listen := _listen(env, "AIOPS_ADMISSION_ADDR", ":8443")) is None:
        return None
    host, port = listen
    cert, key = _tls_files(env, "AIOPS_ADMISSION")
    managed = env.get("AIOPS_ADMISSION_MANAGED") or None
    if managed and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+", managed):
        # kopf names each webhook <handler id>.<this name>, which the API server wants with three dots' worth
        raise SystemExit(
            f"AIOPS_ADMISSION_MANAGED={managed!r}: expected a DNS name with a dot, e.g. approvals.aiops.dev"
        )
    return AdmissionSettings(
        host=host,
        port=port,
        url_host=env.get("AIOPS_ADMISSION_HOST") or ("127.0.0.1" if host == "0.0.0.0" else host),
        tls_cert=cert,
        tls_key=key,
        managed=managed,
    )


def _shard(env: dict[str, str]) -> Shard:
    try:
        return Shard.parse(env.get("AIOPS_SHARD") or "0/1")
    except ValueError as exc:
        raise SystemExit(f"AIOPS_SHARD={env['AIOPS_SHARD']!r}: {exc}") from None


def _leader(env: dict[str, str], shard: Shard) -> LeaderSettings | None:
    if (env.get("AIOPS_LEADER_ELECTION") or "false").lower() in ("0", "false", "no", "off"):
        return None
    lease_s, renew_s = _positive(env, "AIOPS_LEADER_LEASE_S", 10), _positive(env, "AIOPS_LEADER_RENEW_S", 2)
    if renew_s * 3 > lease_s:
        raise SystemExit(
            f"AIOPS_LEADER_RENEW_S={renew_s} with AIOPS_LEADER_LEASE_S={lease_s}: renew at most every third of the "
            "lease, so that a leader that cannot renew stops before a standby may take over"
        )
    name = env.get("AIOPS_LEADER_LEASE_NAME") or "aiops-operator"
    pod = env.get("AIOPS_POD_NAME") or None
    return LeaderSettings(
        lease_name=f"{name}-shard-{shard.index}" if shard.sharded else name,
        lease_s=lease_s,
        renew_s=renew_s,
        identity=pod or f"{socket.gethostname()}-{os.getpid()}",
        pod_name=pod,
    )


def _catalogue(env: dict[str, str]) -> ModelCatalogue | None:
    path = env.get("AIOPS_MODEL_CATALOGUE")
    if not path:
        return None
    try:
        return load_catalogue(path)
    except CatalogueError as exc:
        raise SystemExit(f"AIOPS_MODEL_CATALOGUE: {exc}") from None


def _webhook(env: dict[str, str], namespace: str) -> WebhookSettings | None:
    if (listen := _listen(env, "AIOPS_WEBHOOK_ADDR", ":9443")) is None:
        return None
    token = token_from_env(env, "AIOPS_WEBHOOK_TOKEN")
    if len(token) < 16:
        raise SystemExit(
            "the Alertmanager receiver needs a bearer token of at least 16 characters: "
            "set AIOPS_WEBHOOK_TOKEN or AIOPS_WEBHOOK_TOKEN_FILE (or unset AIOPS_WEBHOOK_ADDR)"
        )
    cert, key = _tls_files(env, "AIOPS_WEBHOOK")
    try:
        rate = float(env.get("AIOPS_WEBHOOK_RATE") or 50)
    except ValueError:
        raise SystemExit(f"AIOPS_WEBHOOK_RATE={env['AIOPS_WEBHOOK_RATE']!r}: expected a number") from None
    return WebhookSettings(
        host=listen[0],
        port=listen[1],
        token=token,
        namespace=env.get("AIOPS_WEBHOOK_NAMESPACE") or namespace,
        tls_cert=cert,
        tls_key=key,
        rate=rate,
        burst=_int(env, "AIOPS_WEBHOOK_BURST", 200),
        max_body=_int(env, "AIOPS_WEBHOOK_MAX_BODY", 1 << 20),
    )


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise SystemExit(f"{name}={env[name]!r}: expected one of {', '.join(choices)}")
    return value


def _lease(env: dict[str, str]) -> int:
    value = _int(env, "AIOPS_RUN_LEASE_S", 15)
    if value < 3:  # renewed every third of it, at most once a second
        raise SystemExit(f"AIOPS_RUN_LEASE_S={value}: expected at least 3 (seconds)")
    return value


def _probe_interval(env: dict[str, str]) -> int:
    value = _int(env, "AIOPS_CLUSTER_PROBE_INTERVAL_S", 60)
    if value < 1:
        raise SystemExit(f"AIOPS_CLUSTER_PROBE_INTERVAL_S={value}: expected at least 1 (seconds)")
    return value


def _tool_calling(env: dict[str, str]) -> str:
    value = (env.get("AIOPS_LLM_TOOL_CALLING") or "json").strip().lower()
    if value not in ("json", "native"):
        raise SystemExit(f"AIOPS_LLM_TOOL_CALLING={value}: expected json or native")
    return value


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise SystemExit(f"{name}={env[name]!r}: expected true or false")
    return raw in ("1", "true", "yes", "on")


def _positive(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SystemExit(f"{name}={value}: expected a positive integer")
    return value


def _gateway_config(env: dict[str, str]) -> GatewayConfig:
    return GatewayConfig(
        base_url=env["AIOPS_LLM_BASE_URL"],
        model=env["AIOPS_LLM_MODEL"],
        api_key=env.get("AIOPS_LLM_API_KEY") or "not-needed",
        timeout_s=float(env.get("AIOPS_LLM_TIMEOUT_S") or 120),
        max_tokens=_int(env, "AIOPS_LLM_MAX_TOKENS", 1024),
        structured_output=env.get("AIOPS_LLM_STRUCTURED_OUTPUT") or "json_schema",
        schema_bounds=(env.get("AIOPS_LLM_SCHEMA_BOUNDS") or "true").lower() not in ("false", "0", "no"),
    )


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """Where the command line keeps files between runs (`aiops watch`'s position, the dev tools' downloads):
    AIOPS_CACHE_DIR, else $XDG_CACHE_HOME/aiops-operator, else ~/.cache/aiops-operator."""
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(env.get("AIOPS_CACHE_DIR") or os.path.join(cache, "aiops-operator"))


@functools.cache
def current() -> Settings:
    """The operator's settings, read from the environment once."""
    return from_env()
