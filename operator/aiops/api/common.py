"""Shapes shared by every resource: the camelCase base model, conditions, references."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

# RFC 1123 label: what Kubernetes accepts as a name for most objects we point at.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# RFC 1123 subdomain: Secrets, ConfigMaps, nodes and pods may use dots.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class Model(BaseModel):
    """Base of every resource shape: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=False,
    )

    def wire(self) -> dict:
        """The JSON-ready dict as the API server stores it (aliases, no unset fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Status(Model):
    """Base of every status: validated on assignment, so writers can set fields from plain values."""

    model_config = ConfigDict(**Model.model_config, validate_assignment=True)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    """A Kubernetes-style condition (metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = Field(default=None, ge=0)


class LocalObjectReference(Model):
    """A reference to an object by name (same namespace, or cluster-scoped)."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)


class SecretKeyReference(Model):
    """A key of a Secret; the namespace defaults to the operator's own."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    namespace: str | None = Field(default=None, min_length=1, max_length=63, pattern=DNS_LABEL)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamps need a timezone (RFC 3339, e.g. 2026-11-23T20:00:00Z)")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class TimeWindow(Model):
    """The period to look at: absolute start/end, or a lookback from now."""

    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    lookback_minutes: int | None = Field(default=None, ge=1, le=10080)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be later than start")
        if self.lookback_minutes is not None and self.start is not None:
            raise ValueError("give either start/end or lookbackMinutes, not both")
        return self


class TimelineEntry(Model):
    time: datetime
    reason: str = Field(min_length=1, max_length=128)
    message: str = Field(default="", max_length=1024)


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class Kind:
    """What the CRD generator and the controllers need to know about one kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    spec: type[Model]
    status: type[Model]
    columns: tuple[PrinterColumn, ...] = field(default=())
    description: str = ""

    @property
    def singular(self) -> str:
        return self.kind.lower()


def field_path(loc: tuple) -> str:
    """Turns a pydantic error location into a dotted path such as spec.steps[2].action."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
