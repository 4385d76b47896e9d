"""Microsoft Teams: an Adaptive Card (schema 1.4) posted to a Workflows webhook.

A Workflows ("Post to a channel when a webhook request is received") webhook takes a message whose
attachments hold the card, and answers 202; it cannot update a message, so each notice is a new card.
Teams refuses a message over about 28 KB, so a bigger card is cut (render.fit).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from aiops.notify.channels import render, transport
from aiops.notify.notice import Failed, Notice, Outcome, Stage

if TYPE_CHECKING:
    from aiops.notify.channels import TeamsConfig

SIZE_MAX = 28_000
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"

# The headline's colour: a person tells a page from a heads-up before reading it.
COLOURS = {"critical": "Attention", "high": "Attention", "warning": "Warning"}


def _text(text: str, **style: object) -> dict:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def card(notice: Notice) -> dict:
    colour = "Good" if notice.stage == Stage.RESOLVED else COLOURS.get(notice.severity, "Default")
    body: list[dict] = [
        _text(render.one_line(render.headline(notice)), size="Large", weight="Bolder", color=colour),
        _text(f"{render.stage_label(notice)} · {notice.incident}", isSubtle=True, spacing="None"),
        {"type": "FactSet", "facts": [{"title": key, "value": value} for key, value in render.facts(notice)]},
    ]
    if notice.root_cause:
        body += [_text("Root cause", weight="Bolder"), _text(notice.root_cause, spacing="Small")]
    if notice.evidence:
        body.append(_text("Evidence", weight="Bolder"))
        body += [_text(f"• {item}", spacing="Small") for item in notice.evidence[: render.MAX_EVIDENCE]]
    if notice.next_step:
        body += [_text("Next step", weight="Bolder"), _text(notice.next_step, spacing="Small")]
    if notice.approve_command:
        body += [_text("Approve it with", weight="Bolder"), _text(notice.approve_command, fontType="Monospace")]
    if notice.children:
        body.append(_text(f"Affected ({len(notice.children)})", weight="Bolder"))
        body += [_text(f"• {child}", spacing="None") for child in notice.children]
    body.append(_text(f"{notice.at} · {render.describe_command(notice)}", isSubtle=True, size="Small"))
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.4", "body": body}


def message(notice: Notice) -> dict:
    content = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card(notice)}
    return {"type": "message", "attachments": [content]}


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def render_body(notice: Notice) -> bytes:
    """The request body, within Teams' size limit."""
    return render.fit(notice, lambda n: encode(message(n)), len, SIZE_MAX)


class TeamsChannel:
    def __init__(self, config: TeamsConfig):
        self.config = config
        self.name = config.name
        self.rate_per_minute = config.rate_per_minute

    async def send(self, notice: Notice, ref: str | None) -> Outcome:
        body = render_body(notice)
        try:
            url = self.config.webhook_url.read()
        except ValueError as exc:
            return Failed(f"{self.name}: {exc}")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        answer = await transport.post(self.name, url, body, headers, self.config.timeout_s)
        return transport.outcome(self.name, answer) if isinstance(answer, httpx.Response) else answer
