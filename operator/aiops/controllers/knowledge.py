"""Documents into the knowledge index (aiops.knowledge.documents): labelled ConfigMaps and a Git path.

ConfigMaps labelled aiops.dev/knowledge=true, in the namespaces the operator watches: the watch asks the API
server for the label only (it also sends DELETED when the label is taken off), through the watch's events rather
than kopf's change handlers, which would write kopf's annotations, and a finalizer for deletions, onto the
users' ConfigMaps. Each event syncs the ConfigMap's documents (content hashes make unchanged ones free); a
document the index refuses gets a Warning Event on the ConfigMap; PostgreSQL or the embedder failing is
retried with exponential backoff (5 s doubling up to 5 minutes), logged with the next try, and a later event of
the same ConfigMap supersedes a pending retry.

A Git path (AIOPS_KNOWLEDGE_GIT_URL, _REF, _PATH): a loop clones it shallow (sops.remediation.gitrepo, the
token from a Secret as GitOps delivery takes it) every AIOPS_KNOWLEDGE_GIT_INTERVAL_S and syncs its documents;
a failure (remote, PostgreSQL, embedder) is logged with the next try, sooner with backoff.

Both run on shard 0 only and need history (AIOPS_POSTGRES_DSN): the index lives in the history database. The
ConfigMap watch is registered by `register` (operator.run), only when on: off, there is no ConfigMap watch.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import kopf

from aiops import settings
from aiops.api.conditions import Reason
from aiops.core import background
from aiops.core.status import now_utc
from aiops.knowledge import documents
from aiops.knowledge.embed import default_embedder
from aiops.settings import Settings
from aiops.sops.remediation import forges, gitops, gitrepo
from aiops.stores import history

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 5
BACKOFF_CAP_S = 300
MAX_EVENT = 1024  # characters of an Event's message

_retries: dict[str, asyncio.Task] = {}  # ConfigMap uid -> its pending retry


def backoff(failures: int, cap: int = BACKOFF_CAP_S) -> int:
    return min(BACKOFF_BASE_S * 2 ** max(failures - 1, 0), cap)


def _at(delay: int) -> str:
    return (now_utc() + timedelta(seconds=delay)).strftime("%H:%M:%SZ")


def sync_source(prefix: str, docs: list, refused: list) -> documents.SyncResult:
    """Syncs one source's documents through the history sink (from a thread); raises history.HistoryOff."""
    embedder = default_embedder(settings.current())
    return history.call(documents.sync, prefix, docs, refused, embedder)


def sync_configmap(body: dict) -> documents.SyncResult:
    meta = body["metadata"]
    docs, refused = documents.from_configmap(body)
    result = sync_source(documents.configmap_prefix(meta["namespace"], meta["name"]), docs, refused)
    if result.written or result.deleted:
        log.info("knowledge: ConfigMap %s/%s: %d documents written, %d unchanged, %d removed, %d refused",
                 meta["namespace"], meta["name"], result.written, result.unchanged, result.deleted,
                 len(result.refused))  # fmt: skip
    return result


def forget_configmap(namespace: str, name: str) -> documents.SyncResult:
    return sync_source(documents.configmap_prefix(namespace, name), [], [])


def _warn(body: dict, reason: str, message: str) -> None:
    kopf.event(body, type="Warning", reason=reason, message=message[:MAX_EVENT])


async def _configmap(event_type: str | None, body: dict, failures: int = 0) -> None:
    meta = body["metadata"]
    where = f"ConfigMap {meta['namespace']}/{meta['name']}"
    try:
        if event_type == "DELETED":  # deleted, or the label taken off: its documents leave the index
            await asyncio.to_thread(forget_configmap, meta["namespace"], meta["name"])
            return
        result = await asyncio.to_thread(sync_configmap, body)
    except history.HistoryOff as exc:
        log.info("knowledge: %s not indexed: %s", where, exc)
        return
    except Exception as exc:  # noqa: BLE001  (PostgreSQL, the embedder: transient until proven otherwise)
        delay = backoff(failures + 1)
        message = f"documents not indexed: {type(exc).__name__}: {exc}"[:900] + f"; next try in {delay}s"
        log.warning("knowledge: %s: %s (at %s)", where, message, _at(delay))
        if event_type != "DELETED":
            _warn(body, Reason.INDEX_FAILED, message)
        _retry(event_type, body, failures + 1, delay)
        return
    for refusal in result.refused:
        key = refusal.key.removeprefix(documents.configmap_prefix(meta["namespace"], meta["name"]))
        _warn(body, Reason.DOCUMENT_REJECTED, f"key {key!r} not indexed for search: {refusal.message}")


def _retry(event_type: str | None, body: dict, failures: int, delay: int) -> None:
    async def later() -> None:
        await asyncio.sleep(delay)
        _retries.pop(uid, None)
        await _configmap(event_type, body, failures)

    uid = body["metadata"]["uid"]
    _retries[uid] = background.spawn(later(), f"aiops-knowledge-{uid}")


def register(conf: Settings) -> None:
    """Watches labelled ConfigMaps, with AIOPS_KNOWLEDGE_CONFIGMAPS on and on shard 0 only: registered here
    rather than at import, so that otherwise the operator neither watches ConfigMaps nor needs the right to."""
    if not (conf.knowledge.configmaps and conf.shard.primary):
        return

    @kopf.on.startup()
    def watch_labelled_only(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.label_selectors["v1", "configmaps"] = f"{documents.LABEL}=true"

    @kopf.on.event("v1", "configmaps", labels={documents.LABEL: "true"}, id="knowledge")
    async def configmap_changed(type: str | None, body: kopf.Body, **_: Any) -> None:  # noqa: A002  (kopf's)
        if (pending := _retries.pop(body["metadata"]["uid"], None)) is not None:
            pending.cancel()  # this event carries the newer content
        await _configmap(type, dict(body))


# Git


def sync_git(config: Settings) -> documents.SyncResult:
    """Clones the configured repository (shallow, one branch) and syncs the documents under its path."""
    cfg = config.knowledge
    try:
        user = forges.repository(cfg.git_url, config.gitops.forges).git_user
    except forges.ForgeError:
        user = "x-access-token"  # a host no forge setting names: the token is the password, the user unchecked
    host = cfg.git_url.split("//", 1)[-1].split("/", 1)[0].rpartition("@")[2]
    token = gitops.secret_tokens(config.namespace, cfg.git_token_secret)(host) if host else None
    remote = gitrepo.Remote(cfg.git_url, user, token or "")
    with tempfile.TemporaryDirectory(prefix="aiops-knowledge-") as tmp:
        ref = cfg.git_ref or gitrepo.branch(remote, "")
        checkout = gitrepo.clone(remote, ref, Path(tmp) / "repo")
        docs, refused = documents.from_tree(checkout, cfg.git_url, cfg.git_path)
    result = sync_source(documents.git_prefix(cfg.git_url), docs, refused)
    for refusal in result.refused:
        log.warning("knowledge: %s not indexed for search: %s", refusal.key, refusal.message)
    log.info("knowledge: %s@%s/%s: %d documents written, %d unchanged, %d removed, %d refused", cfg.git_url, ref,
             cfg.git_path, result.written, result.unchanged, result.deleted, len(result.refused))  # fmt: skip
    return result


@kopf.on.startup()
async def poll_git(**_: Any) -> None:
    config = settings.current()
    cfg = config.knowledge
    if not cfg.git_url or not config.shard.primary:
        return

    async def loop() -> None:
        failures = 0
        while True:
            try:
                await asyncio.to_thread(sync_git, config)
                failures, delay = 0, cfg.git_interval_s
            except history.HistoryOff as exc:
                log.warning("knowledge: Git documents from %s are not indexed: %s", cfg.git_url, exc)
                return
            except Exception as exc:  # noqa: BLE001  (the remote, PostgreSQL, the embedder)
                failures += 1
                delay = backoff(failures, max(cfg.git_interval_s, BACKOFF_CAP_S))
                log.warning("knowledge: Git documents from %s not indexed: %s: %s; next try in %ss at %s",
                            cfg.git_url, type(exc).__name__, exc, delay, _at(delay))  # fmt: skip
            await asyncio.sleep(delay)

    background.spawn(loop(), "aiops-knowledge-git")
