"""A rollout that lines up with the start of the symptoms: the newest ReplicaSet of a Deployment,
created shortly before the first failure, and what its pod template changed against the previous one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aiops.api.incident import Cause
from aiops.core.status import parse_time
from aiops.diagnosis.analyzers.common import (
    clip,
    container_statuses,
    event_time,
    finding,
    image_cause,
    item,
    name,
)
from aiops.diagnosis.evidence import EvidenceBundle, Finding, Obj

FAILURE_MODES = ("RecentRollout",)
LEAD = timedelta(minutes=30)  # a rollout this long before the first failure still counts as its trigger
SKEW = timedelta(minutes=1)  # clocks of the API server and the kubelets differ a little
# Linear in how close the rollout came before the first failure: 0.8 right before, 0.55 at LEAD.
SCORE_MAX, SCORE_MIN = 0.8, 0.55
SCORE_WINDOW_ONLY = 0.5  # no failure time known: the rollout is only inside (or just before) the window
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
VALUE_MAX = 80


def analyze(bundle: EvidenceBundle) -> list[Finding]:
    failure = first_failure(bundle)
    findings = []
    for deployment in bundle.deployments:
        dep = name(deployment)
        history = sorted(
            (
                rs
                for rs in bundle.replicasets
                if any(
                    o.get("kind") == "Deployment" and o.get("name") == dep
                    for o in rs["metadata"].get("ownerReferences") or []
                )
            ),
            key=_revision,
        )
        if not history:
            continue
        newest = history[-1]
        created = parse_time(newest["metadata"].get("creationTimestamp"))
        if created is None:
            continue
        if failure is not None:
            if not failure - LEAD <= created <= failure + SKEW:
                continue
            gap = max(timedelta(0), failure - created)
            score = SCORE_MAX - (SCORE_MAX - SCORE_MIN) * (gap / LEAD)
            timing = f"{_minutes(gap)} before the first failure at {failure:%Y-%m-%dT%H:%M:%SZ}"
        elif bundle.window_start - LEAD <= created <= bundle.window_end:
            score, timing = SCORE_WINDOW_ONLY, "within the incident window (no failure time known)"
        else:
            continue
        old = history[-2] if len(history) > 1 else None
        findings.append(_finding(dep, newest, old, score, timing, _new_images(bundle, newest, old)))
    return findings


def _new_images(bundle: EvidenceBundle, new: Obj, old: Obj | None) -> list[Cause]:
    """The images the rollout brought in (not those it kept), by digest where its pods report one: what a
    rollout of the same image on another cluster would share with this one."""
    kept = set(_images(old)) if old else set()
    template_hash = (new["metadata"].get("labels") or {}).get(HASH_LABEL)
    digests = {
        status.get("image"): status.get("imageID")
        for pod in bundle.pods
        if template_hash and (pod["metadata"].get("labels") or {}).get(HASH_LABEL) == template_hash
        for status in container_statuses(pod)
    }
    return [image_cause(image, digests.get(image)) for image in _images(new) if image not in kept]


def first_failure(bundle: EvidenceBundle) -> datetime | None:
    """The earliest failure inside the window: a Warning event's first occurrence or a container's failed exit."""
    times = [parse_time(e.get("firstTimestamp") or event_time(e)) for e in bundle.events if e.get("type") == "Warning"]
    for pod in bundle.pods:
        for status in container_statuses(pod):
            for when in ("state", "lastState"):
                terminated = (status.get(when) or {}).get("terminated") or {}
                if terminated.get("exitCode", 0) != 0:
                    times.append(parse_time(terminated.get("finishedAt")))
    inside = [t for t in times if t is not None and bundle.window_start <= t <= bundle.window_end]
    return min(inside, default=None)


def _finding(dep: str, new: Obj, old: Obj | None, score: float, timing: str, causes: list[Cause]) -> Finding:
    revision = _revision(new)
    changes = template_diff(old, new) if old else []
    evidence = [
        item(
            "rollout",
            f"ReplicaSet/{name(new)} (Deployment {dep} revision {revision}) created"
            f" {new['metadata']['creationTimestamp']}, {timing}; images: {', '.join(_images(new))}",
            "rollout",
            dep,
            "rev",
            str(revision),
        )
    ]
    if old:
        old_revision = _revision(old)
        evidence.append(
            item(
                "rollout",
                f"Pod template of revision {revision} vs {old_revision} ({name(old)}): "
                + ("; ".join(changes) if changes else "no difference in the pod template"),
                "rollout-diff",
                dep,
                "rev",
                str(revision),
            )
        )
        fix = (
            f"If the change is the cause, roll back: kubectl rollout undo deployment/{dep}"
            f" --to-revision={old_revision}; then fix forward in Git so the next sync does not reapply it."
        )
    else:
        fix = f"Revision {revision} is the first: compare it with the last known-good manifest in Git."
    what = "; ".join(changes[:5]) if changes else ("first revision" if old is None else "no pod template change")
    return finding(
        f"Deployment/{dep}",
        "RecentRollout",
        score,
        f"Deployment {dep} rolled out revision {revision} {timing}: {what}.",
        fix,
        evidence,
        causes,
    )


def template_diff(old: Obj, new: Obj) -> list[str]:
    """Human-readable changes between two ReplicaSets' pod templates (containers field by field)."""
    a, b = old["spec"]["template"], new["spec"]["template"]
    changes = []
    for group in ("initContainers", "containers"):
        before = {c["name"]: c for c in a["spec"].get(group) or []}
        after = {c["name"]: c for c in b["spec"].get(group) or []}
        for container in sorted(before.keys() | after.keys()):
            if container not in before:
                changes.append(f"container {container} added")
            elif container not in after:
                changes.append(f"container {container} removed")
            else:
                changes += _container_diff(container, before[container], after[container])
    for key in sorted((a["spec"].keys() | b["spec"].keys()) - {"containers", "initContainers"}):
        if a["spec"].get(key) != b["spec"].get(key):
            changes.append(f"pod {key}: {_show(a['spec'].get(key))} -> {_show(b['spec'].get(key))}")
    for field in ("labels", "annotations"):
        # the hash label differs by construction; restartedAt is how `kubectl rollout restart` shows
        ma = {k: v for k, v in (a.get("metadata", {}).get(field) or {}).items() if k != HASH_LABEL}
        mb = {k: v for k, v in (b.get("metadata", {}).get(field) or {}).items() if k != HASH_LABEL}
        changes += _map_diff(f"pod {field[:-1]}", ma, mb)
    return changes


def _container_diff(container: str, a: Obj, b: Obj) -> list[str]:
    changes = []
    for field in ("image", "command", "args"):
        if a.get(field) != b.get(field):
            changes.append(f"container {container} {field}: {_show(a.get(field))} -> {_show(b.get(field))}")
    env_a = {e["name"]: e.get("value", e.get("valueFrom")) for e in a.get("env") or []}
    env_b = {e["name"]: e.get("value", e.get("valueFrom")) for e in b.get("env") or []}
    changes += _map_diff(f"container {container} env", env_a, env_b)
    changes += _map_diff(
        f"container {container} resources", _flatten(a.get("resources") or {}), _flatten(b.get("resources") or {})
    )
    rest = (a.keys() | b.keys()) - {"name", "image", "command", "args", "env", "resources"}
    changes += [f"container {container} {key} changed" for key in sorted(rest) if a.get(key) != b.get(key)]
    return changes


def _map_diff(what: str, a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    changes = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            changes.append(f"{what} {key} added ({_show(b[key])})")
        elif key not in b:
            changes.append(f"{what} {key} removed")
        elif a[key] != b[key]:
            changes.append(f"{what} {key}: {_show(a[key])} -> {_show(b[key])}")
    return changes


def _flatten(resources: Obj) -> dict[str, Any]:
    return {f"{kind}.{res}": qty for kind, values in resources.items() for res, qty in (values or {}).items()}


def _show(value: Any) -> str:
    return clip(
        value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True), VALUE_MAX
    )


def _revision(rs: Obj) -> int:
    """The Deployment revision a ReplicaSet carries (0 if the annotation is missing)."""
    return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))


def _images(rs: Obj) -> list[str]:
    return [c.get("image", "?") for c in rs["spec"]["template"]["spec"].get("containers") or []]


def _minutes(gap: timedelta) -> str:
    return f"{gap.total_seconds() / 60:.0f} min"
