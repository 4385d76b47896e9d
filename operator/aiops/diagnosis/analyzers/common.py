"""Helpers shared by the analyzers: evidence ids, findings, object access, events and log scanning."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from aiops.api.incident import Cause, CauseKind, EvidenceItem, EvidenceSource, Suspect
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

ID_MAX = 64
SUMMARY_MAX = 2048
MAX_EVIDENCE_PER_FINDING = 10  # Suspect.evidence allows 50; a few examples prove a pattern


def split_time(bundle: EvidenceBundle) -> float:
    """Where the baseline ends (unix s): when the symptoms began, or else three quarters into the window."""
    if bundle.detected_at:
        return bundle.detected_at.timestamp()
    start, end = bundle.window_start.timestamp(), bundle.window_end.timestamp() + 1
    return end - (end - start) / 4


def traced_after_split(bundle: EvidenceBundle) -> bool:
    """Whether spans or service log lines reach the incident (from `split_time` on): without them the service
    ranking has nothing but the pods' metrics to compare, and the metrics analyzer ranks the pods itself."""
    split = split_time(bundle)
    return any(s.start >= split for s in bundle.spans) or any(line.time >= split for line in bundle.service_logs)


def evidence_id(*parts: str) -> str:
    """A readable, deterministic id: the parts slugged and joined; over 64 characters it is cut and
    given a short hash of the whole so two long ids that share a prefix stay distinct."""
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-") or "evidence"
    if len(slug) <= ID_MAX:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: ID_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def clip(text: str, limit: int = SUMMARY_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def item(source: EvidenceSource | str, summary: str, *id_parts: str) -> EvidenceItem:
    return EvidenceItem(id=evidence_id(*id_parts), source=EvidenceSource(source), summary=clip(summary))


def finding(
    resource: str,
    failure_mode: str,
    score: float,
    reason: str,
    mitigation: str,
    evidence: list[EvidenceItem],
    causes: Iterable[Cause] = (),
) -> Finding:
    """A Finding whose suspect cites its own evidence (at least one item, as the diagnosis must cite)."""
    if not evidence:
        raise ValueError(f"{failure_mode} on {resource}: a finding needs evidence")
    evidence = list({e.id: e for e in evidence}.values())[:MAX_EVIDENCE_PER_FINDING]
    suspect = Suspect(
        resource=resource,
        failure_mode=failure_mode,
        score=round(min(1.0, max(0.0, score)), 3),
        reason=clip(reason),
        evidence=[e.id for e in evidence],
        mitigation=clip(mitigation),
        causes=list({(c.kind, c.value): c for c in causes}.values())[:10],
    )
    return Finding(suspect=suspect, evidence=evidence)


def image_cause(image: str, image_id: str | None = None) -> Cause:
    """The image by digest when the kubelet reported one (the same tag may name other bytes elsewhere)."""
    digest = (image_id or "").rpartition("@")[2]
    if digest.startswith("sha256:"):
        repository = image.split("@")[0]
        if ":" in repository.rsplit("/", 1)[-1]:  # a tag, not a registry port
            repository = repository.rsplit(":", 1)[0]
        return Cause(kind=CauseKind.IMAGE, value=f"{repository}@{digest}")
    return Cause(kind=CauseKind.IMAGE, value=image)


def registry_host(image: str) -> str:
    """The registry an image reference pulls from (Docker Hub when its first part is not a host)."""
    first, sep, _ = image.partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else "docker.io"


def dependency_cause(host: str) -> Cause:
    return Cause(kind=CauseKind.DEPENDENCY, value=host.lower().rstrip("."))


def name(obj: Obj) -> str:
    return obj["metadata"]["name"]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def workload_resource(bundle: EvidenceBundle, pod_names: list[str]) -> str:
    """The suspect for a problem shared by pods: the pod itself when there is one, else the target."""
    if len(set(pod_names)) == 1:
        return f"Pod/{pod_names[0]}"
    return f"{bundle.target.kind}/{bundle.target.name}"


# --- pods and containers -----------------------------------------------------------------------


def container_statuses(pod: Obj) -> Iterator[Obj]:
    """Init containers first (they run first), then app containers."""
    status = pod.get("status") or {}
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def container_spec(pod: Obj, container: str) -> Obj:
    spec = pod.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if c.get("name") == container:
            return c
    return {}


def limit_of(pod: Obj, container: str, resource: str) -> str | None:
    return ((container_spec(pod, container).get("resources") or {}).get("limits") or {}).get(resource)


def pod_revision(bundle: EvidenceBundle, pod: Obj) -> str | None:
    """The Deployment revision of the ReplicaSet that owns the pod."""
    owners = {o["name"] for o in pod["metadata"].get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"}
    for rs in bundle.replicasets:
        if name(rs) in owners:
            return (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
    return None


# --- events ------------------------------------------------------------------------------------


def events_for(bundle: EvidenceBundle, reasons: set[str], kind: str | None = None) -> list[Obj]:
    return [
        e
        for e in bundle.events
        if e.get("reason") in reasons and (kind is None or e["involvedObject"].get("kind") == kind)
    ]


def event_time(event: Obj) -> str:
    """When the event last happened ("" if unknown); events.k8s.io-era writers fill only eventTime."""
    return (
        event.get("lastTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get("creationTimestamp")
    ) or ""


def event_summary(event: Obj) -> str:
    obj = event["involvedObject"]
    count = event.get("count") or 1
    return (
        f"{event.get('type', 'Normal')} {event.get('reason')} on {obj.get('kind')}/{obj.get('name')}"
        f" (x{count}, last {event_time(event) or '?'}): {event.get('message', '')}"
    )


def event_item(prefix: str, event: Obj) -> EvidenceItem:
    """Evidence of one event; the short digest of the event's own name keeps two events of one object apart."""
    obj = event["involvedObject"]
    key = (event.get("metadata") or {}).get("name") or event_summary(event)
    digest = hashlib.sha256(key.encode()).hexdigest()[:6]
    return item("events", event_summary(event), prefix, obj.get("name", ""), event.get("reason", ""), digest)


# --- logs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogHit:
    pod: str
    container: str
    count: int
    first: str  # the first matching line, as evidence


def scan_logs(bundle: EvidenceBundle, classify: Callable[[str], str | None]) -> dict[str, list[LogHit]]:
    """Lines grouped by the key `classify` gives them (None = not interesting), per container.

    The kubelet tail ("pod/container") and Loki ("loki:pod/container") can hold the same lines:
    per container the larger count of the two is kept, never the sum.
    """
    found: dict[tuple[str, str, str], LogHit] = {}
    for stream, lines in sorted(bundle.logs.items()):
        pod, _, container = stream.removeprefix("loki:").partition("/")
        counts: dict[str, int] = {}
        firsts: dict[str, str] = {}
        for line in lines:
            key = classify(line)
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
                firsts.setdefault(key, line)
        for key, count in counts.items():
            seen = found.get((key, pod, container))
            if seen is None or count > seen.count:
                found[(key, pod, container)] = LogHit(pod, container, count, clip(firsts[key].strip(), 500))
    grouped: dict[str, list[LogHit]] = {}
    for (key, _, _), hit in sorted(found.items()):
        grouped.setdefault(key, []).append(hit)
    return grouped


def log_item(prefix: str, hit: LogHit, what: str) -> EvidenceItem:
    return item(
        "logs",
        f"{hit.pod}/{hit.container}: {plural(hit.count, 'line')} {what}; first: {hit.first}",
        prefix,
        hit.pod,
        hit.container,
    )
