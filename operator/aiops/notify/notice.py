"""What a notification says, independent of the channel, and what sending it came to.

A `Notice` is built from an Incident at one *stage* of its life (diagnosis landed, a step waits for
approval, resolved); every channel renders the same Notice in its own format. Text in it has already
passed the Redactor: channels send it as it is.

`key` of a Notice (incident uid, stage, detail) is the idempotency key of one delivery: the outbox keeps
one row per key and channel, and channels pass it on where the service has a place for it (CloudEvents
`id`, an `Idempotency-Key` header), so a receiver can drop a repeat of an at-least-once delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field

from aiops.api.common import Model


class Stage(StrEnum):
    DIAGNOSED = "diagnosed"
    AWAITING_APPROVAL = "awaiting-approval"
    RESOLVED = "resolved"


class Notice(Model):
    incident: str = Field(description="namespace/name of the Incident")
    uid: str
    stage: Stage
    detail: str = Field(default="", description="what distinguishes two notices of one stage, e.g. the step id")
    title: str
    severity: str
    cluster: str = Field(description="the ManagedCluster's name, or 'local'")
    namespace: str
    target: str | None = Field(default=None, description="Kind/name of the workload, when the Incident names one")
    root_cause: str | None = None
    confidence: int | None = None
    evidence: list[str] = Field(default_factory=list, description="the top evidence summaries, most telling first")
    sop: str | None = Field(default=None, description="the matched SOP's name")
    next_step: str | None = Field(default=None, description="the step waiting for approval: 'id: title'")
    approve_command: str | None = Field(default=None, description="the exact kubectl line that approves it")
    children: list[str] = Field(default_factory=list, description="for a fleet-wide parent: 'cluster ns/name' each")
    labels: dict[str, str] = Field(default_factory=dict, description="what routing rules match on besides the above")
    at: str = Field(description="when the stage was reached, RFC 3339")

    @property
    def key(self) -> str:
        return f"{self.uid}:{self.stage}:{self.detail}" if self.detail else f"{self.uid}:{self.stage}"


@dataclass(frozen=True)
class Sent:
    """Delivered. `ref` is the channel's handle on the message (Slack channel and ts) for later updates."""

    ref: str | None = None


@dataclass(frozen=True)
class Retry:
    """Not delivered, worth trying again: a timeout, a 5xx, a 429 (`after_s` from Retry-After)."""

    reason: str
    after_s: float | None = None


@dataclass(frozen=True)
class Failed:
    """Not delivered and never will be as configured: a 4xx, a bad URL, a refused token."""

    reason: str


Outcome = Sent | Retry | Failed
