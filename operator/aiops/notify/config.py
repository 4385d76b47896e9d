"""The notifications configuration: which channels exist and which notices go to which of them.

Loaded once at start from the YAML file named by AIOPS_NOTIFY_CONFIG (the Helm chart mounts it from a
ConfigMap); a bad file stops the operator with the file and the field named, e.g.

    notify config /etc/aiops/notify.yaml: routes[2].channels[0]: no channel named 'ops'

    channels:
      - {name: oncall, type: slack, botToken: {env: SLACK_TOKEN}, channel: C0123456}
      - {name: audit, type: webhook, url: {file: /var/run/secrets/audit/url}}
    routes:                               # in order; the first that matches wins, unless it says continue
      - matchers: {severity: [critical, high], namespace: "=~prod-.*"}
        channels: [oncall]
        continue: true                    # and go on to the next routes as well
      - matchers: {labels: {team: payments}}
        channels: [audit]
    default: [audit]                      # when no route matched

Matching is Alertmanager's: a value is exact, or `=~regex` for a regular expression that must match the
whole value; a label the notice does not carry is the empty string.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from aiops.api.common import Model, field_path
from aiops.api.incident import Severity
from aiops.notify.channels import ChannelConfig
from aiops.notify.notice import Notice

REGEX = "=~"


class NotifyConfigError(ValueError):
    """A configuration that cannot be used; the message names the file and the field."""


def _check_value(value: str) -> str:
    if value.startswith(REGEX):
        try:
            re.compile(value[len(REGEX) :])
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


def matches(pattern: str, value: str) -> bool:
    """`pattern` is exact, or `=~regex` anchored at both ends (as Alertmanager anchors its regexes)."""
    if pattern.startswith(REGEX):
        return re.fullmatch(pattern[len(REGEX) :], value) is not None
    return pattern == value


class Matchers(Model):
    """What a notice must carry for a route to take it; every matcher given must match, none given matches all."""

    severity: list[Severity] | None = Field(default=None, description="one severity, or a list of them")
    namespace: str | None = Field(default=None, description="exact, or =~regex")
    cluster: str | None = Field(default=None, description="the ManagedCluster's name or 'local'; exact, or =~regex")
    labels: dict[str, str] = Field(default_factory=dict, description="label: exact value, or =~regex")

    @field_validator("severity", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("namespace", "cluster")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return None if value is None else _check_value(value)

    @field_validator("labels")
    @classmethod
    def _label_patterns(cls, labels: dict[str, str]) -> dict[str, str]:
        for name, value in labels.items():
            try:
                _check_value(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return labels

    def match(self, notice: Notice) -> bool:
        if self.severity is not None and notice.severity not in self.severity:
            return False
        if self.namespace is not None and not matches(self.namespace, notice.namespace):
            return False
        if self.cluster is not None and not matches(self.cluster, notice.cluster):
            return False
        return all(matches(p, notice.labels.get(name, "")) for name, p in self.labels.items())


class Route(Model):
    matchers: Matchers = Field(default_factory=Matchers)
    channels: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue", description="go on to the next routes after a match")


class NotifyConfig(Model):
    channels: list[ChannelConfig] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default: list[str] = Field(default_factory=list, description="channels for a notice no route matched")
    group_wait_seconds: int = Field(
        default=30,
        ge=0,
        le=600,
        description="how long a diagnosis claiming a shareable cause waits for a fleet-wide parent to form"
        " (Alertmanager's group_wait); only while fleet correlation is on and ManagedClusters exist",
    )

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        names: set[str] = set()
        for i, channel in enumerate(self.channels):
            if channel.name in names:
                raise ValueError(f"channels[{i}].name: a second channel named {channel.name!r}")
            names.add(channel.name)
        lists = [(f"routes[{i}].channels", r.channels) for i, r in enumerate(self.routes)]
        for where, refs in [*lists, ("default", self.default)]:
            for j, ref in enumerate(refs):
                if ref not in names:
                    raise ValueError(f"{where}[{j}]: no channel named {ref!r}")
        return self


def route(config: NotifyConfig, notice: Notice) -> list[str]:
    """The names of the channels `notice` goes to, each once, in the order the routes name them."""
    chosen: list[str] = []
    matched = False
    for r in config.routes:
        if not r.matchers.match(notice):
            continue
        matched = True
        chosen += [c for c in r.channels if c not in chosen]
        if not r.continue_:
            break
    return chosen if matched else list(dict.fromkeys(config.default))


_CHANNEL_TAGS = {"slack", "teams", "email", "webhook"}


def _describe(error: dict) -> str:
    loc = tuple(error["loc"])
    if len(loc) > 2 and loc[0] == "channels" and loc[2] in _CHANNEL_TAGS:
        loc = loc[:2] + loc[3:]  # pydantic puts the discriminator's value in the path: channels[0].slack.url
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown field"
    head, sep, rest = msg.partition(": ")
    if loc and sep and " " not in head:  # a validator naming the key inside the field (labels: "team: ...")
        return f"{field_path(loc)}.{head}: {rest}"
    return f"{field_path(loc)}: {msg}" if loc else msg


def parse(data: object, source: str) -> NotifyConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NotifyConfigError(f"notify config {source}: expected a mapping with channels and routes")
    try:
        return NotifyConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise NotifyConfigError(f"notify config {source}: {problems[0]}{more}") from None


def load(path: str | Path) -> NotifyConfig:
    """The configuration in a YAML file; NotifyConfigError names the file and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotifyConfigError(f"notify config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NotifyConfigError(f"notify config {path}: not YAML: {exc}") from None
    return parse(data, str(path))
