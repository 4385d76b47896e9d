"""Notification channels: their configuration, and one `Channel` per configured entry.

Each channel module renders a Notice in its service's format and sends it:
slack.py (incoming webhook, or chat.postMessage / chat.update with a bot token), teams.py (Workflows
webhook with an Adaptive Card), email.py (SMTP with STARTTLS), webhook.py (CloudEvents 1.0 JSON).

Secrets (webhook URLs, tokens, passwords) are never written in the configuration itself: a `SecretRef`
names an environment variable or a file (a mounted Secret) that holds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import Field, model_validator

from aiops.api.common import Model
from aiops.notify.channels.email import EmailChannel
from aiops.notify.channels.slack import SlackChannel
from aiops.notify.channels.teams import TeamsChannel
from aiops.notify.channels.webhook import WebhookChannel
from aiops.notify.notice import Notice, Outcome

NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SecretRef(Model):
    """Where a secret value is read from: an environment variable or a file (a mounted Secret's key)."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("name exactly one of env or file")
        return self

    def read(self) -> str:
        """The value; ValueError naming the variable or file when it is missing or empty."""
        if self.env:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        try:
            value = Path(self.file).read_text(encoding="utf-8").strip()  # type: ignore[arg-type]
        except OSError as exc:
            raise ValueError(f"cannot read {self.file}: {exc.strerror or exc}") from None
        if not value:
            raise ValueError(f"{self.file} is empty")
        return value


class _Channel(Model):
    name: str = Field(min_length=1, max_length=63, pattern=NAME)
    rate_per_minute: int = Field(default=60, ge=1, le=100_000, description="sends per minute at most")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class SlackConfig(_Channel):
    type: Literal["slack"]
    webhook_url: SecretRef | None = Field(default=None, description="incoming webhook: posts only, no updates")
    bot_token: SecretRef | None = Field(default=None, description="xoxb token: chat.postMessage, then chat.update")
    channel: str | None = Field(default=None, max_length=80, description="channel id for the bot token")
    api_url: str = Field(default="https://slack.com/api", description="Slack's Web API base (tests point it elsewhere)")

    @model_validator(mode="after")
    def _how(self) -> SlackConfig:
        if bool(self.webhook_url) == bool(self.bot_token):
            raise ValueError("name exactly one of webhookUrl or botToken")
        if self.bot_token and not self.channel:
            raise ValueError("botToken needs channel (the channel id to post in)")
        return self


class TeamsConfig(_Channel):
    type: Literal["teams"]
    webhook_url: SecretRef = Field(description="the Workflows (Power Automate) webhook that posts Adaptive Cards")


class EmailConfig(_Channel):
    type: Literal["email"]
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="false only for a relay on loopback")
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server; default: the system's")
    username: SecretRef | None = None
    password: SecretRef | None = None
    sender: str = Field(alias="from", min_length=3, max_length=254)
    to: list[str] = Field(min_length=1, max_length=100)


class WebhookConfig(_Channel):
    type: Literal["webhook"]
    url: SecretRef
    source: str = Field(default="/aiops-operator", max_length=1024, description="the CloudEvents source attribute")
    token: SecretRef | None = Field(default=None, description="sent as Authorization: Bearer")


ChannelConfig = Annotated[SlackConfig | TeamsConfig | EmailConfig | WebhookConfig, Field(discriminator="type")]


class Channel(Protocol):
    name: str
    rate_per_minute: int

    async def send(self, notice: Notice, ref: str | None) -> Outcome:
        """Delivers `notice`; `ref` is what an earlier Sent for the same Incident returned (update in place
        where the service allows it). Never raises: every failure is a Retry or a Failed naming it."""
        ...


_KINDS = {"slack": SlackChannel, "teams": TeamsChannel, "email": EmailChannel, "webhook": WebhookChannel}


def build(config: ChannelConfig) -> Channel:
    """The channel for one configured entry; it reads its secrets at each send, so a rotated Secret is
    picked up without a restart."""
    return _KINDS[config.type](config)
