"""Slack: a Block Kit message through an incoming webhook, or through the Web API with a bot token.

With a bot token the first notice of an Incident is a chat.postMessage and every later one a chat.update
of that message (`ref` is "channel:ts"), so a channel holds one message per Incident showing its latest
stage. An incoming webhook can only post, so each notice is a new message there.

The Web API answers HTTP 200 with `{"ok": false, "error": ...}` for most failures; those errors are mapped
like HTTP statuses: the temporary ones to Retry, the rest (a bad token, an unknown channel) to Failed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from aiops.notify.channels import render, transport
from aiops.notify.notice import Failed, Notice, Outcome, Retry, Sent

if TYPE_CHECKING:
    from aiops.notify.channels import SlackConfig

# Block Kit's limits (https://docs.slack.dev/reference/block-kit/blocks).
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
BLOCKS_MAX = 50

RETRYABLE = {"ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
# chat.update cannot change that message (deleted, or not the bot's): post a new one instead.
REPOST = {"message_not_found", "cant_update_message", "edit_window_closed"}


def escape(text: str) -> str:
    """mrkdwn's three control characters, so text from the cluster cannot mention @channel or make links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(notice: Notice, label: str, text: str) -> dict:
    """A mrkdwn section "*label*\\ntext", cut to Slack's section limit with the truncation line."""
    head = f"*{label}*\n"
    body = render.clip(text, SECTION_MAX, "\n" + render.truncated_line(notice), lambda s: len(head) + len(escape(s)))
    return {"type": "section", "text": {"type": "mrkdwn", "text": head + escape(body)}}


def _mrkdwn(text: str, limit: int) -> dict:
    return {"type": "mrkdwn", "text": escape(render.clip(text, limit, cost=lambda s: len(escape(s))))}


def render_message(notice: Notice) -> dict:
    """`{"text", "blocks"}`: what chat.postMessage, chat.update and an incoming webhook take."""
    title = render.clip(render.one_line(render.headline(notice)), HEADER_MAX)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "fields": [_mrkdwn(f"*{key}*\n{value}", FIELD_MAX) for key, value in render.facts(notice)]},
    ]
    if notice.root_cause:
        blocks.append(_section(notice, "Root cause", notice.root_cause))
    if notice.evidence:
        blocks.append(_section(notice, "Evidence", "\n".join(f"• {e}" for e in notice.evidence[: render.MAX_EVIDENCE])))
    if notice.next_step:
        blocks.append(_section(notice, "Next step", notice.next_step))
    if notice.approve_command:
        # Never cut: a cut command would approve nothing, or the wrong thing. It is one short kubectl line.
        text = f"*Approve it with*\n```{escape(notice.approve_command)}```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if notice.children:
        lines = "\n".join(f"• {child}" for child in notice.children)
        blocks.append(_section(notice, f"Affected ({len(notice.children)})", lines))
    context = f"{notice.incident} · {notice.at} · `{render.describe_command(notice)}`"
    blocks.append({"type": "context", "elements": [_mrkdwn(context, FIELD_MAX)]})
    fallback = f"{render.headline(notice)} — {render.stage_label(notice)} ({notice.cluster})"
    return {"text": escape(render.clip(render.one_line(fallback), 300)), "blocks": blocks[:BLOCKS_MAX]}


class SlackChannel:
    def __init__(self, config: SlackConfig):
        self.config = config
        self.name = config.name
        self.rate_per_minute = config.rate_per_minute

    async def send(self, notice: Notice, ref: str | None) -> Outcome:
        message = render_message(notice)
        try:
            secret = (self.config.webhook_url or self.config.bot_token).read()  # type: ignore[union-attr]
        except ValueError as exc:
            return Failed(f"{self.name}: {exc}")
        if self.config.webhook_url:
            answer = await self._post(secret, message, {})
            return answer if not isinstance(answer, httpx.Response) else transport.outcome(self.name, answer)
        if ref and ":" in ref:
            channel, _, ts = ref.partition(":")
            outcome, error = await self._call("chat.update", secret, {**message, "channel": channel, "ts": ts})
            if error not in REPOST:
                return outcome
        outcome, _ = await self._call("chat.postMessage", secret, {**message, "channel": self.config.channel})
        return outcome

    async def _post(self, url: str, body: dict, headers: dict[str, str]) -> httpx.Response | Outcome:
        content = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        return await transport.post(self.name, url, content, headers, self.config.timeout_s)

    async def _call(self, method: str, token: str, body: dict) -> tuple[Outcome, str | None]:
        """One Web API method: Sent(ref="channel:ts") when it answers ok; else the outcome and Slack's error
        code, if it named one."""
        url = f"{self.config.api_url.rstrip('/')}/{method}"
        answer = await self._post(url, body, {"Authorization": f"Bearer {token}"})
        if not isinstance(answer, httpx.Response):
            return answer, None
        if not 200 <= answer.status_code < 300:
            return transport.outcome(self.name, answer), None
        try:
            data = answer.json()
        except ValueError:
            return Retry(f"{self.name}: {method} answered HTTP {answer.status_code} without JSON"), None
        if not isinstance(data, dict):
            return Retry(f"{self.name}: {method} answered JSON that is not an object"), None
        if data.get("ok"):
            channel, ts = data.get("channel") or body["channel"], data.get("ts") or body.get("ts")
            return Sent(ref=f"{channel}:{ts}" if ts else None), None
        error = str(data.get("error") or "unknown_error")
        reason = f"{self.name}: Slack {method} failed: {error}"
        if error in RETRYABLE:
            return Retry(reason, transport.retry_after(answer.headers.get("Retry-After"))), error
        return Failed(reason), error
