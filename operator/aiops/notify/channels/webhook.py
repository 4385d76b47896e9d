"""A generic webhook: the Notice as a CloudEvents 1.0 event in structured JSON mode.

The event's `id` is the Notice's key and the request carries it again as `Idempotency-Key`: a receiver
drops a repeat of an at-least-once delivery by either. `type` names the stage
(`dev.aiops.incident.diagnosed`, `.awaiting-approval`, `.resolved`), `subject` the Incident, `data` the
Notice itself; bodies are kept within 1 MB (render.fit).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from aiops.notify.channels import render, transport
from aiops.notify.notice import Failed, Notice, Outcome

if TYPE_CHECKING:
    from aiops.notify.channels import WebhookConfig

SIZE_MAX = 1_000_000
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TYPE_PREFIX = "dev.aiops.incident."


def event(notice: Notice, source: str) -> dict:
    return {
        "specversion": "1.0",
        "id": notice.key,
        "source": source,
        "type": f"{TYPE_PREFIX}{notice.stage}",
        "subject": notice.incident,
        "time": notice.at,
        "datacontenttype": "application/json",
        "data": notice.wire(),
    }


def render_body(notice: Notice, source: str) -> bytes:
    return render.fit(notice, lambda n: json.dumps(event(n, source), ensure_ascii=False).encode(), len, SIZE_MAX)


class WebhookChannel:
    def __init__(self, config: WebhookConfig):
        self.config = config
        self.name = config.name
        self.rate_per_minute = config.rate_per_minute

    async def send(self, notice: Notice, ref: str | None) -> Outcome:
        body = render_body(notice, self.config.source)
        headers = {"Content-Type": CONTENT_TYPE, "Idempotency-Key": notice.key}
        try:
            url = self.config.url.read()
            if self.config.token:
                headers["Authorization"] = f"Bearer {self.config.token.read()}"
        except ValueError as exc:
            return Failed(f"{self.name}: {exc}")
        answer = await transport.post(self.name, url, body, headers, self.config.timeout_s)
        return transport.outcome(self.name, answer) if isinstance(answer, httpx.Response) else answer
