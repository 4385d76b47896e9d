"""What every channel shows of a Notice, and how text too big for a service is cut.

Each channel lays out the same parts (headline, facts, root cause, top evidence, the next step and the
kubectl line that approves it, a fleet parent's children) in its own format. A rendering over its
service's limit is cut field by field, each cut field ending with a line that says where the whole
diagnosis is, so the person still gets the headline and the approval command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiops.notify.notice import Notice, Stage

MAX_EVIDENCE = 3

STAGE_LABELS = {
    Stage.DIAGNOSED: "Diagnosed",
    Stage.AWAITING_APPROVAL: "Awaiting approval",
    Stage.RESOLVED: "Resolved",
}

T = TypeVar("T")


def stage_label(notice: Notice) -> str:
    return STAGE_LABELS[Stage(notice.stage)]


def headline(notice: Notice) -> str:
    return f"[{notice.severity.upper()}] {notice.title}"


def describe_command(notice: Notice) -> str:
    namespace, _, name = notice.incident.partition("/")
    return f"kubectl describe incident -n {namespace} {name}"


def truncated_line(notice: Notice) -> str:
    return f"… truncated; full diagnosis: {describe_command(notice)}"


def facts(notice: Notice) -> list[tuple[str, str]]:
    """The short labelled values a person reads first, in order; absent ones are left out."""
    rows = [("Stage", stage_label(notice)), ("Severity", notice.severity), ("Cluster", notice.cluster)]
    if notice.target:
        rows.append(("Target", f"{notice.target} in {notice.namespace}"))
    if notice.confidence is not None:
        rows.append(("Confidence", f"{notice.confidence}%"))
    if notice.sop:
        rows.append(("SOP", notice.sop))
    return rows


def one_line(text: str) -> str:
    """Whitespace runs (line breaks included) as one space: for headers and titles."""
    return " ".join(text.split())


def clip(text: str, limit: int, tail: str = "…", cost: Callable[[str], int] = len) -> str:
    """`text` when `cost(text) <= limit`, else its longest prefix that fits with `tail` after it.

    `cost` measures the text as the service counts it (after escaping, say). Every character costs at
    least one, so no prefix longer than `limit` fits: the search looks at short prefixes only, however
    long the text."""
    if cost(text) <= limit:
        return text
    lo, hi = 0, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(text[:mid].rstrip() + tail) <= limit:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo].rstrip() + tail
    return cut if cost(cut) <= limit else tail.strip()[:limit]


def shrink(notice: Notice, cap: int) -> Notice:
    """A copy whose free-text fields are at most about `cap` characters, each cut one ending with the
    truncation line; evidence keeps the top MAX_EVIDENCE, children as many as fit `cap`. The fields the
    key and the approval are made of (uid, stage, detail, approve_command) are never cut."""
    tail = "\n" + truncated_line(notice)

    def cut(text: str | None) -> str | None:
        return None if text is None else clip(text, cap + len(tail), tail)

    children = notice.children
    keep = max(1, cap // 80)
    if len(children) > keep:
        children = [*children[:keep], f"… and {len(children) - keep} more; {describe_command(notice)}"]
    return notice.model_copy(
        update={
            "title": clip(notice.title, min(cap, 200)),
            "root_cause": cut(notice.root_cause),
            "evidence": [cut(item) for item in notice.evidence[:MAX_EVIDENCE]],
            "next_step": cut(notice.next_step),
            "children": [clip(child, 200) for child in children],
            "labels": {key: clip(value, 200) for key, value in notice.labels.items()},
        }
    )


def fit(notice: Notice, render: Callable[[Notice], T], size: Callable[[T], int], limit: int) -> T:
    """`render(notice)` when its `size` is within `limit`; else the rendering of ever smaller `shrink`s
    until one fits (or the fields are down to a few dozen characters)."""
    out = render(notice)
    cap = limit // 2
    while size(out) > limit and cap >= 32:
        out = render(shrink(notice, cap))
        cap //= 2
    return out
