"""The channels' renderings, checked against the services' published schemas where one exists (Slack's Block
Kit models in slack_sdk, the Adaptive Card 1.4 JSON schema, the CloudEvents SDK: tests/support/notify.py),
and the mapping of answers to outcomes. No servers here: sending is tested against real receivers in
tests/integration/test_notify_channels.py."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import jsonschema
import pytest

from aiops.notify.channels import (
    SecretRef,
    SlackConfig,
    TeamsConfig,
    WebhookConfig,
    build,
    render,
    slack,
    teams,
    transport,
    webhook,
)
from aiops.notify.channels import email as mail
from aiops.notify.channels.email import EmailChannel
from aiops.notify.channels.slack import SlackChannel
from aiops.notify.channels.teams import TeamsChannel
from aiops.notify.channels.webhook import WebhookChannel
from aiops.notify.notice import Failed, Notice, Retry, Sent, Stage
from support.notify import (
    ADAPTIVE_CARD_SCHEMA,
    APPROVE,
    TRUNCATED,
    card_texts,
    card_valid,
    cloudevent,
    email_config,
    notice,
    slack_blocks_valid,
    slack_text,
)


def parsed_email(notice_: Notice, ref: str | None = None) -> email.message.EmailMessage:
    raw = mail.render_message(notice_, email_config(), ref).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


STAGE_LABELS = {Stage.DIAGNOSED: "Diagnosed", Stage.AWAITING_APPROVAL: "Awaiting approval", Stage.RESOLVED: "Resolved"}


def shows_what_matters(text: str, n: Notice) -> None:
    """The ten-second read: what, how bad, where, why, how sure, what backs it, what to do."""
    for part in ("Checkout latency above SLO", "critical", "prod-eu", "Deployment/checkout", "82%"):
        assert part in text
    assert "N+1 query" in text and "rollback-deployment" in text
    assert "ev-1" in text and "ev-3" in text and "ev-4" not in text
    assert STAGE_LABELS[n.stage] in text


# Slack


@pytest.mark.parametrize("stage", list(Stage))
def test_slack_message_is_block_kit_and_shows_the_incident(stage):
    n = notice(stage)
    message = slack.render_message(n)
    blocks = slack_blocks_valid(message)
    assert [b.type for b in blocks][:2] == ["header", "section"] and blocks[-1].type == "context"
    text = slack_text(message)
    shows_what_matters(text, n)
    assert message["text"] == f"[CRITICAL] Checkout latency above SLO — {STAGE_LABELS[stage]} (prod-eu)"
    if stage == Stage.AWAITING_APPROVAL:
        command = next(b["text"]["text"] for b in message["blocks"] if "Approve it with" in str(b))
        assert command == f"*Approve it with*\n```{APPROVE}```"
    else:
        assert "Approve it with" not in text


def test_slack_escapes_what_would_notify_or_link():
    hostile = "<!channel> see <https://evil.example|the fix> & run it"
    message = slack.render_message(notice(root_cause=hostile, title="<!here> down"))
    slack_blocks_valid(message)
    text = slack_text(message)
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; see &lt;https://evil.example|the fix&gt; &amp; run it" in text
    # plain_text is shown as written, so the header is not escaped, and cannot notify either.
    assert message["blocks"][0]["text"] == {"type": "plain_text", "text": "[CRITICAL] <!here> down"}


def test_slack_lists_a_fleet_parents_children():
    children = [f"edge-{i} shop/checkout-latency" for i in range(12)]
    message = slack.render_message(notice(Stage.DIAGNOSED, children=children, target=None))
    slack_blocks_valid(message)
    text = slack_text(message)
    assert "*Affected (12)*" in text and "edge-0 shop/checkout-latency" in text and "edge-11" in text
    assert "Target" not in text


def test_slack_cuts_a_3mb_root_cause_within_block_kit_limits():
    huge = ("x<y & " * 600_000)[:3_000_000]
    many = [f"cluster-{i:04d} shop/checkout-latency" for i in range(2000)]
    message = slack.render_message(notice(root_cause=huge, evidence=[huge] * 3, children=many))
    slack_blocks_valid(message)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    assert all(len(t) <= slack.SECTION_MAX for t in sections)
    cut = [t for t in sections if t.startswith("*Root cause*")][0]
    assert cut.endswith("\n" + TRUNCATED) and len(cut) > 2500
    assert f"*Approve it with*\n```{APPROVE}```" in sections
    assert len(slack_text(message)) < 20_000


# Teams


@pytest.mark.parametrize("stage", list(Stage))
def test_teams_card_follows_the_adaptive_card_schema(stage):
    n = notice(stage)
    card = card_valid(teams.render_body(n))
    text = card_texts(card)
    shows_what_matters(text, n)
    assert (APPROVE in text) == (stage == Stage.AWAITING_APPROVAL)
    monospace = [b["text"] for b in card["body"] if b.get("fontType") == "Monospace"]
    assert monospace == ([APPROVE] if stage == Stage.AWAITING_APPROVAL else [])
    assert card["body"][0]["color"] == ("Good" if stage == Stage.RESOLVED else "Attention")


def test_the_adaptive_card_schema_rejects_what_teams_would():
    card = teams.card(notice())
    card["body"][0]["color"] = "Red"  # not one of the schema's colours
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft6Validator(ADAPTIVE_CARD_SCHEMA).validate(card)


def test_teams_card_of_a_3mb_root_cause_fits_28kb():
    many = [f"cluster-{i:04d} shop/checkout-latency" for i in range(2000)]
    body = teams.render_body(notice(root_cause="y" * 3_000_000, children=many))
    assert len(body) <= teams.SIZE_MAX
    card = card_valid(body)
    text = card_texts(card)
    assert TRUNCATED in text and APPROVE in text
    assert "… and" in text and "more; kubectl describe incident -n shop checkout-latency" in text


# E-mail


@pytest.mark.parametrize("stage", list(Stage))
def test_email_is_plain_and_html_alternatives(stage):
    n = notice(stage)
    msg = parsed_email(n)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == f"[CRITICAL] Checkout latency above SLO — {STAGE_LABELS[stage]}"
    assert msg["To"] == "oncall@example.com, sre@example.com" and msg["Auto-Submitted"] == "auto-generated"
    text = msg.get_body(("plain",)).get_content()
    shows_what_matters(text, n)
    html_part = msg.get_body(("html",)).get_content()
    shows_what_matters(html_part, n)
    if stage == Stage.AWAITING_APPROVAL:
        assert f"    {APPROVE}\n" in text
        assert "<pre>kubectl patch incident -n shop checkout-latency --type merge -p &#x27;{&quot;spec&quot;" in (
            html_part
        )


def test_email_message_ids_repeat_per_key_and_thread_per_incident():
    first = parsed_email(notice(Stage.DIAGNOSED))
    root = "<6f1c2a9e-0b7d-4c1e-9a55-3d2f1e0c8b7a.diagnosed@example.com>"
    assert first["Message-ID"] == root and first["In-Reply-To"] is None and first["References"] is None
    waiting = parsed_email(notice())
    assert waiting["Message-ID"] == parsed_email(notice())["Message-ID"]  # a repeat is recognisable
    assert waiting["Message-ID"].startswith("<6f1c2a9e-0b7d-4c1e-9a55-3d2f1e0c8b7a.awaiting-approval.")
    other_step = parsed_email(notice(detail="scale-up"))
    assert other_step["Message-ID"] != waiting["Message-ID"]
    assert waiting["In-Reply-To"] == waiting["References"] == root
    # With the first message's id from an earlier Sent, that one is the parent.
    assert parsed_email(notice(Stage.RESOLVED), ref="<first@mail.example.com>")["References"] == (
        "<first@mail.example.com>"
    )


def test_email_escapes_hostile_text_and_keeps_headers_whole():
    n = notice(
        title="pwned\r\nBcc: victim@example.org",
        root_cause="<script>alert('x')</script> & <img src=x onerror=alert(1)>",
        evidence=['"><a href="https://evil.example">click</a>'],
        children=["edge-1 <b>shop</b>/x"],
    )
    msg = parsed_email(n)
    assert msg["Bcc"] is None and "\n" not in msg["Subject"] and msg["Subject"].startswith("[CRITICAL] pwned Bcc:")
    html_part = msg.get_body(("html",)).get_content()
    for raw in ("<script>", "<img", '<a href="https://evil', "<b>shop</b>"):
        assert raw not in html_part
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html_part
    assert "&quot;&gt;&lt;a href=&quot;https://evil.example&quot;&gt;click&lt;/a&gt;" in html_part
    assert "<script>alert('x')</script>" in msg.get_body(("plain",)).get_content()


def test_email_of_a_3mb_root_cause_fits_1mb():
    msg = mail.render_message(notice(root_cause="z" * 3_000_000), email_config(), None)
    assert len(msg.as_bytes()) <= mail.SIZE_MAX
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    for kind in ("plain", "html"):
        content = parsed.get_body((kind,)).get_content()
        assert TRUNCATED in content and "Checkout latency above SLO" in content
    assert APPROVE in parsed.get_body(("plain",)).get_content()


# CloudEvents webhook


@pytest.mark.parametrize("stage", list(Stage))
def test_webhook_body_is_a_structured_cloudevent(stage):
    n = notice(stage)
    event = cloudevent(webhook.render_body(n, "/aiops-operator/prod"))
    assert event.get_specversion() == "1.0"
    assert event.get_id() == n.key
    assert event.get_source() == "/aiops-operator/prod"
    assert event.get_type() == f"dev.aiops.incident.{stage}"
    assert event.get_subject() == "shop/checkout-latency"
    assert event.get_time() == datetime(2025, 5, 1, 10, 7, tzinfo=UTC)
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == n.wire() and Notice.model_validate(event.get_data()) == n


def test_webhook_event_of_a_3mb_root_cause_fits_1mb():
    n = notice(root_cause="w" * 3_000_000)
    body = webhook.render_body(n, "/aiops-operator")
    assert len(body) <= webhook.SIZE_MAX
    event = cloudevent(body)
    assert event.get_id() == n.key
    data = event.get_data()
    assert data["rootCause"].endswith("\n" + TRUNCATED) and len(data["rootCause"]) > 200_000
    assert data["approveCommand"] == APPROVE


# Cutting


def test_clip_counts_as_the_service_does():
    cost = lambda s: len(slack.escape(s))  # noqa: E731
    cut = render.clip("&" * 100, 50, "…", cost)
    assert cost(cut) <= 50 and cut == "&" * 9 + "…"
    assert render.clip("short", 50) == "short"
    assert render.clip("a" * 10, 3, "……") == "a……"


def test_shrink_never_cuts_the_key_or_the_approval():
    n = notice(root_cause="r" * 10_000, detail="d" * 500, labels={"team": "t" * 5000})
    small = render.shrink(n, 1000)
    assert small.key == n.key and small.approve_command == APPROVE
    assert len(small.root_cause) <= 1000 + len(TRUNCATED) + 1 and small.root_cause.endswith(TRUNCATED)
    assert len(small.evidence) == 3 and len(small.labels["team"]) <= 200


# Outcomes


@pytest.mark.parametrize(
    "value, seconds",
    [("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("", None), ("soon", None), ("-3", None)],
)
def test_retry_after_seconds(value, seconds):
    assert transport.retry_after(value) == seconds


def test_retry_after_http_date():
    now = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    assert transport.retry_after("Thu, 01 May 2025 10:01:30 GMT", now) == 90.0
    assert transport.retry_after(format_datetime(now + timedelta(seconds=45), usegmt=True), now) == 45.0
    assert transport.retry_after("Thu, 01 May 2025 09:00:00 GMT", now) == 0.0  # already past: now
    assert transport.retry_after("Thu, 41 May 2025 09:00:00 GMT", now) is None


@pytest.mark.parametrize(
    "status, headers, expected",
    [
        (200, {}, Sent()),
        (202, {}, Sent()),
        (429, {"Retry-After": "30"}, Retry("hook: HTTP 429: busy", 30.0)),
        (429, {}, Retry("hook: HTTP 429: busy", None)),
        (408, {}, Retry("hook: HTTP 408: busy", None)),
        (500, {}, Retry("hook: HTTP 500: busy", None)),
        (503, {"Retry-After": "9"}, Retry("hook: HTTP 503: busy", 9.0)),
        (301, {"Location": "https://elsewhere.example"}, Failed("hook: HTTP 301: busy")),
        (400, {}, Failed("hook: HTTP 400: busy")),
        (401, {}, Failed("hook: HTTP 401: busy")),
        (404, {}, Failed("hook: HTTP 404: busy")),
        (410, {}, Failed("hook: HTTP 410: busy")),
    ],
)
def test_http_outcomes(status, headers, expected):
    response = httpx.Response(status, headers=headers, text="" if status < 300 else "  busy\n")
    assert transport.outcome("hook", response) == expected


SLACK_HOOK = {"type": "slack", "name": "ops-slack", "webhook_url": SecretRef(env="AIOPS_TEST_NO_SUCH_VAR")}


@pytest.mark.parametrize(
    "config",
    [
        SlackConfig(**SLACK_HOOK),
        SlackConfig(type="slack", name="ops-slack", bot_token=SecretRef(file="/nonexistent/token"), channel="C1"),
        TeamsConfig(type="teams", name="ops-slack", webhook_url=SecretRef(env="AIOPS_TEST_NO_SUCH_VAR")),
        WebhookConfig(type="webhook", name="ops-slack", url=SecretRef(env="AIOPS_TEST_NO_SUCH_VAR")),
        email_config(name="ops-slack", username=SecretRef(env="AIOPS_TEST_NO_SUCH_VAR"), password=SecretRef(env="X")),
    ],
    ids=["slack-webhook", "slack-bot", "teams", "webhook", "email"],
)
def test_a_secret_that_cannot_be_read_fails_naming_it(config):
    outcome = asyncio.run(build(config).send(notice(), None))
    assert isinstance(outcome, Failed)
    assert outcome.reason.startswith("ops-slack: ") and (
        "AIOPS_TEST_NO_SUCH_VAR" in outcome.reason or ("/nonexistent/token" in outcome.reason)
    )


@pytest.mark.parametrize("url", ["not a url", "ftp://files.example/hook", "http://[::1"])
def test_a_bad_url_fails_without_saying_it(url, monkeypatch):
    monkeypatch.setenv("AIOPS_TEST_HOOK", url)
    config = WebhookConfig(type="webhook", name="events", url=SecretRef(env="AIOPS_TEST_HOOK"))
    outcome = asyncio.run(build(config).send(notice(), None))
    assert isinstance(outcome, Failed) and outcome.reason.startswith("events: cannot make the request")
    assert url not in outcome.reason


def test_email_needs_both_username_and_password():
    config = email_config(username=SecretRef(env="AIOPS_TEST_USER"))
    outcome = asyncio.run(build(config).send(notice(), None))
    assert outcome == Failed("oncall-mail: name both username and password, or neither")


def test_build_makes_the_configured_kind():
    configs = {
        SlackChannel: SlackConfig(**SLACK_HOOK, rate_per_minute=5),
        TeamsChannel: TeamsConfig(type="teams", name="t", webhook_url=SecretRef(env="T")),
        EmailChannel: email_config(),
        WebhookChannel: WebhookConfig(type="webhook", name="w", url=SecretRef(file="/run/secrets/url")),
    }
    for kind, config in configs.items():
        channel = build(config)
        assert type(channel) is kind and channel.name == config.name
        assert channel.rate_per_minute == config.rate_per_minute
