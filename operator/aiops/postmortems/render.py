"""A resolved Incident's postmortem in Markdown, from the operator's own records: the Incident's spec and status.

The text is a function of the records alone (no clock), so rendering twice gives the same bytes and the
object store's check-then-put writes once. It is redacted as a whole before it leaves: it goes to object
storage and into the search index, outside the Incident's RBAC (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.api.incident import Approval
from aiops.core.status import parse_time
from aiops.diagnosis.redaction import Redactor


@dataclass(frozen=True)
class Factor:
    text: str
    evidence: list[str] = field(default_factory=list)  # ids of the diagnosis's evidence items


@dataclass(frozen=True)
class Summary:
    """A model's summary and contributing factors, each factor citing evidence ids of the diagnosis."""

    text: str
    factors: list[Factor]
    model: str | None = None


def object_key(incident: dict[str, Any]) -> str:
    meta = incident["metadata"]
    return f"postmortems/{meta['namespace']}/{meta['name']}-{meta['uid']}.md"


def mttr(incident: dict[str, Any]) -> str | None:
    """Detection to resolution, e.g. `1h 02m 05s`; None when either end is unknown."""
    status = incident.get("status") or {}
    start, end = parse_time(status.get("detectedAt")), parse_time(status.get("resolvedAt"))
    if start is None or end is None:
        return None
    seconds = max(int((end - start).total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def render(
    incident: dict[str, Any], summary: Summary | None, no_summary: str, verified: dict[int, bool] | None = None
) -> str:
    """The postmortem, redacted. `no_summary`: why there is no model summary, shown when `summary` is None.
    `verified`: by index in spec.approvals, whether the admission webhook's seal holds."""
    spec, status, meta = incident.get("spec") or {}, incident.get("status") or {}, incident["metadata"]
    lines = [f"# Postmortem: {_one_line(spec.get('title') or meta['name'])}", ""]
    lines += _facts(incident)
    lines += ["", "## Summary", ""]
    if summary is None:
        lines.append(f"No model summary: {no_summary}.")
    else:
        lines += [summary.text, "", "Contributing factors:", ""]
        lines += [f"- {f.text} (evidence: {', '.join(f'`{e}`' for e in f.evidence)})" for f in summary.factors]
        if summary.model:
            lines += ["", f"Written by the model {summary.model}; each factor cites the diagnosis's evidence."]
    if spec.get("description"):
        lines += ["", "## Description", "", spec["description"].strip()]
    lines += ["", "## Timeline", ""]
    lines += [
        f"- {e.get('time')} **{e.get('reason')}**: {_one_line(e.get('message') or '')}"
        for e in status.get("timeline") or []
    ] or ["No entries."]
    lines += _diagnosis(status.get("diagnosis"))
    lines += _runbook(status.get("sop"))
    lines += _approvals(spec.get("approvals") or [], verified or {})
    lines += _feedback(spec.get("feedback"))
    return Redactor().redact("\n".join(lines).rstrip() + "\n")


def _facts(incident: dict[str, Any]) -> list[str]:
    spec, status, meta = incident.get("spec") or {}, incident.get("status") or {}, incident["metadata"]
    target = spec.get("target")
    alert = spec.get("alert") or {}
    rows = [
        ("Incident", f"{meta['namespace']}/{meta['name']} (uid {meta['uid']})"),
        ("Severity", spec.get("severity")),
        ("Cluster", (spec.get("clusterRef") or {}).get("name") or "local"),
        ("Target", _target(target) if target else None),
        ("Source", spec.get("source") or "manual"),
        ("Alert", alert.get("name")),
        ("Detected", status.get("detectedAt")),
        ("Resolved", status.get("resolvedAt")),
        ("MTTR", mttr(incident) or "unknown: detection or resolution time not recorded"),
    ]
    return ["| | |", "| --- | --- |"] + [f"| {k} | {_cell(v)} |" for k, v in rows if v]


def _target(target: dict[str, Any]) -> str:
    where = f" in {target['namespace']}" if target.get("namespace") else ""
    return f"{target['kind']}/{target['name']}{where}"


def _diagnosis(d: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Diagnosis", ""]
    if not d:
        return lines + ["No diagnosis was recorded."]
    how = ", ".join(x for x in (d.get("executionStatus"), d.get("model") and f"model {d['model']}") if x)
    lines += [f"Root cause: {d.get('rootCause', '')}", "", f"Confidence: {d.get('confidence')}% ({how})"]
    for key, title in (("reasoning", "Reasoning"), ("mitigation", "Mitigation"), ("prevention", "Prevention")):
        if d.get(key):
            lines += ["", f"{title}: {d[key]}"]
    lines += ["", "### Evidence", ""]
    lines += [f"- `{e['id']}` ({e.get('source')}): {_one_line(e.get('summary', ''))}" for e in d.get("evidence") or []]
    if not d.get("evidence"):
        lines.append("None cited.")
    if d.get("suspects"):
        lines += ["", "### Suspects", ""]
        for s in d["suspects"]:
            cites = f" [evidence: {', '.join(s.get('evidence') or [])}]" if s.get("evidence") else ""
            reason = _one_line(s.get("reason", ""))
            lines.append(f"- {s['resource']}: {s['failureMode']} (score {s.get('score')}): {reason}{cites}")
    return lines


def _runbook(sop: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Runbook", ""]
    if not sop:
        return lines + ["No SOP was followed."]
    lines.append(f"SOP {sop['name']}" + (f": {_one_line(sop['reason'])}" if sop.get("reason") else ""))
    lines += ["", "| step | title | state | started | finished | output |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [
        f"| {s['id']} | {_cell(s.get('title'))} | {s.get('state')} | {_cell(s.get('startedAt'))} | "
        f"{_cell(s.get('finishedAt'))} | {_cell(s.get('output'))} |"
        for s in sop.get("steps") or []
    ]
    lines += ["", "### Audit", ""]
    for a in sop.get("audit") or []:
        what = "undo of " if a.get("undo") else ""
        entry = f"- {a['at']} step {a['step']}: {what}{a['action']} on {a['target']}: {_one_line(a.get('outcome', ''))}"
        entry += f"; approved by {a['approvedBy']}" if a.get("approvedBy") else "; allowed by policy"
        entry += f"; dry run: {_one_line(a.get('dryRun', ''))}"
        if a.get("before") or a.get("after"):
            entry += f"; before: {_one_line(a.get('before') or '-')}; after: {_one_line(a.get('after') or '-')}"
        if a.get("reason"):
            entry += f"; why: {_one_line(a['reason'])}"
        if a.get("pullRequest"):
            entry += f"; pull request {a['pullRequest']}"
        lines.append(entry)
    if not sop.get("audit"):
        lines.append("No cluster changes were made.")
    changes = [c for c in sop.get("changes") or [] if c.get("state")]
    if changes:
        lines += ["", "### Changes", ""]
        lines += [
            f"- step {c['step']}: {c['action']} on {c['target']}: {c['state']}"
            + (f" ({_one_line(c['reason'])})" if c.get("reason") else "")
            for c in changes
        ]
    return lines


def _approvals(approvals: list[dict[str, Any]], verified: dict[int, bool]) -> list[str]:
    lines = ["", "## Approvals", ""]
    for i, raw in enumerate(approvals):
        a = Approval.model_validate(raw)
        state = "verified by the admission webhook" if verified.get(i) else "unverified"
        if verified.get(i) and a.verification and a.verification.groups:
            state += f" (groups: {', '.join(a.verification.groups)})"
        when = f" at {raw['approvedAt']}" if raw.get("approvedAt") else ""
        comment = f": {_one_line(a.comment)}" if a.comment else ""
        lines.append(f"- step {a.step}: {a.approved_by}{when}, {state}{comment}")
    return lines if approvals else lines + ["None."]


def _feedback(feedback: dict[str, Any] | None) -> list[str]:
    lines = ["", "## Feedback", ""]
    if not feedback:
        return lines + ["None yet."]
    verdict = "correct" if feedback.get("correct") else "incorrect"
    by = f" (by {feedback['by']})" if feedback.get("by") else ""
    lines.append(f"The diagnosis was {verdict}{by}.")
    if feedback.get("rootCause"):
        lines += ["", f"Corrected root cause: {feedback['rootCause']}"]
    if feedback.get("comment"):
        lines += ["", f"Comment: {feedback['comment']}"]
    return lines


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _cell(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        value = value.isoformat()
    return _one_line(str(value)).replace("|", "\\|")
