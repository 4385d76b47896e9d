"""Each channel delivering to a real receiver on 127.0.0.1 (tests/support/receivers.py): what arrives,
and what every kind of answer comes to — Sent, Retry (with Retry-After) or Failed."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aiops.notify.channels import EmailConfig, SecretRef, SlackConfig, TeamsConfig, WebhookConfig, build
from aiops.notify.notice import Failed, Notice, Retry, Sent, Stage
from support.notify import APPROVE, TRUNCATED, card_valid, email_config, notice, slack_blocks_valid
from support.receivers import CloudEventsReceiver, Reply, SlackApi, SmtpReceiver, scripted, self_signed

TOKEN = "xoxb-test-token"


def send(config, n: Notice, ref: str | None = None):
    return asyncio.run(build(config).send(n, ref))


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def secret(monkeypatch):
    """Puts a value in an environment variable and returns the SecretRef that names it."""
    names = iter(range(100))

    def put(value: str) -> SecretRef:
        name = f"AIOPS_TEST_NOTIFY_{next(names)}"
        monkeypatch.setenv(name, value)
        return SecretRef(env=name)

    return put


# Slack


def slack_hook(secret, url: str) -> SlackConfig:
    return SlackConfig(type="slack", name="ops-slack", webhook_url=secret(url), timeout_s=2)


def test_slack_webhook_posts_block_kit(secret):
    with scripted(Reply(200, "ok", {"Content-Type": "text/plain"})) as hook:
        assert send(slack_hook(secret, f"{hook.url}/services/T0/B0/x"), notice()) == Sent(ref=None)
    (request,) = hook.requests
    assert request.path == "/services/T0/B0/x" and request.headers["content-type"].startswith("application/json")
    body = request.json()
    slack_blocks_valid(body)
    assert body["text"].startswith("[CRITICAL] Checkout latency above SLO")


@pytest.mark.parametrize(
    "reply, expected",
    [
        (Reply(429, "rate_limited", {"Retry-After": "12"}), Retry("ops-slack: HTTP 429: rate_limited", 12.0)),
        (Reply(500, "rollup_error"), Retry("ops-slack: HTTP 500: rollup_error", None)),
        (Reply(404, "channel_not_found"), Failed("ops-slack: HTTP 404: channel_not_found")),
        (Reply(403, "action_prohibited"), Failed("ops-slack: HTTP 403: action_prohibited")),
        (Reply(410, "channel_is_archived"), Failed("ops-slack: HTTP 410: channel_is_archived")),
    ],
)
def test_slack_webhook_answers(secret, reply, expected):
    with scripted(reply) as hook:
        assert send(slack_hook(secret, f"{hook.url}/services/x"), notice()) == expected


def test_slack_webhook_too_slow_or_gone_is_retried(secret):
    with scripted(Reply(200, "ok", delay=3)) as hook:
        outcome = send(slack_hook(secret, hook.url), notice())
    assert outcome == Retry("ops-slack: no answer within 2s")
    outcome = send(slack_hook(secret, f"http://127.0.0.1:{closed_port()}/hook"), notice())
    assert isinstance(outcome, Retry) and outcome.reason.startswith("ops-slack: ConnectError")


def slack_bot(secret, api: SlackApi, token: str = TOKEN, channel: str = "C0123ABCD") -> SlackConfig:
    return SlackConfig(
        type="slack", name="ops-slack", bot_token=secret(token), channel=channel, api_url=f"{api.url}/api"
    )


def test_slack_bot_posts_once_then_updates_that_message(secret):
    with SlackApi(TOKEN) as api:
        config = slack_bot(secret, api)
        first = send(config, notice(Stage.DIAGNOSED))
        assert first == Sent(ref="C0123ABCD:1700000000.000001")
        second = send(config, notice(Stage.AWAITING_APPROVAL), first.ref)
        third = send(config, notice(Stage.RESOLVED), second.ref)
    assert second == third == first
    assert api.calls == ["chat.postMessage", "chat.update", "chat.update"]
    assert [r.headers["authorization"] for r in api.http.requests] == [f"Bearer {TOKEN}"] * 3
    ((key, message),) = api.messages.items()  # one message per Incident, updated in place
    assert key == ("C0123ABCD", "1700000000.000001") and message["ts"] == "1700000000.000001"
    slack_blocks_valid(message)
    assert message["blocks"][1]["fields"][0]["text"] == "*Stage*\nResolved"


def test_slack_bot_posts_anew_when_the_message_is_gone(secret):
    with SlackApi(TOKEN) as api:
        outcome = send(slack_bot(secret, api), notice(), ref="C0123ABCD:1600000000.000009")
    assert outcome == Sent(ref="C0123ABCD:1700000000.000001")
    assert api.calls == ["chat.update", "chat.postMessage"]


@pytest.mark.parametrize(
    "errors, token, channel, expected",
    [
        ((), "xoxb-wrong", "C0123ABCD", Failed("ops-slack: Slack chat.postMessage failed: invalid_auth")),
        ((), TOKEN, "C9999", Failed("ops-slack: Slack chat.postMessage failed: channel_not_found")),
        (("token_expired",), TOKEN, "C0123ABCD", Failed("ops-slack: Slack chat.postMessage failed: token_expired")),
        (("not_authed",), TOKEN, "C0123ABCD", Failed("ops-slack: Slack chat.postMessage failed: not_authed")),
        ((429,), TOKEN, "C0123ABCD", Retry('ops-slack: HTTP 429: {"ok": false, "error": "ratelimited"}', 7.0)),
        (("ratelimited",), TOKEN, "C0123ABCD", Retry("ops-slack: Slack chat.postMessage failed: ratelimited")),
        (("internal_error",), TOKEN, "C0123ABCD", Retry("ops-slack: Slack chat.postMessage failed: internal_error")),
        ((503,), TOKEN, "C0123ABCD", Retry('ops-slack: HTTP 503: {"ok": false, "error": "ratelimited"}', 7.0)),
    ],
)
def test_slack_bot_answers(secret, errors, token, channel, expected):
    with SlackApi(TOKEN, errors=errors) as api:
        assert send(slack_bot(secret, api, token, channel), notice()) == expected


def test_slack_bot_update_that_fails_otherwise_is_not_reposted(secret):
    with SlackApi(TOKEN, errors=("ratelimited",)) as api:
        outcome = send(slack_bot(secret, api), notice(), ref="C0123ABCD:1700000000.000001")
    assert outcome == Retry("ops-slack: Slack chat.update failed: ratelimited")
    assert api.calls == ["chat.update"]


# Teams


def teams_config(secret, url: str) -> TeamsConfig:
    return TeamsConfig(type="teams", name="ops-teams", webhook_url=secret(url), timeout_s=2)


def test_teams_posts_an_adaptive_card(secret):
    with scripted(Reply(202, "")) as hook:
        assert send(teams_config(secret, f"{hook.url}/workflows/abc"), notice()) == Sent(ref=None)
    (request,) = hook.requests
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    card = card_valid(request.body)
    assert any(block.get("text") == APPROVE for block in card["body"])


def test_teams_answers(secret):
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with scripted(Reply(429, "", {"Retry-After": later}), Reply(502, "bad gateway"), Reply(400, "bad card")) as hook:
        config = teams_config(secret, hook.url)
        throttled, down, refused = (send(config, notice()) for _ in range(3))
    assert isinstance(throttled, Retry) and 110 <= throttled.after_s <= 120
    assert down == Retry("ops-teams: HTTP 502: bad gateway")
    assert refused == Failed("ops-teams: HTTP 400: bad card")


def test_teams_delivers_a_3mb_root_cause_cut_to_size(secret):
    with scripted(Reply(202)) as hook:
        assert send(teams_config(secret, hook.url), notice(root_cause="q" * 3_000_000)) == Sent()
    (request,) = hook.requests
    assert len(request.body) <= 28_000 and TRUNCATED in json.dumps(card_valid(request.body), ensure_ascii=False)


# CloudEvents webhook


def test_webhook_delivers_a_cloudevent_once_per_key(secret):
    with CloudEventsReceiver(token="s3cret") as sink:
        config = WebhookConfig(
            type="webhook", name="events", url=secret(f"{sink.url}/events"), token=secret("s3cret"), source="/prod"
        )
        n = notice()
        assert send(config, n) == Sent()
        assert send(config, n) == Sent()  # at-least-once: the receiver recognises the repeat
        assert send(config, notice(Stage.RESOLVED)) == Sent()
    assert sink.duplicates == 1 and not sink.rejected
    assert list(sink.events) == [n.key, notice(Stage.RESOLVED).key]
    event = sink.events[n.key]
    assert event.get_type() == "dev.aiops.incident.awaiting-approval" and event.get_source() == "/prod"
    assert Notice.model_validate(event.get_data()) == n
    assert all(r.headers["idempotency-key"] == r.json()["id"] for r in sink.http.requests)


def test_webhook_delivers_a_3mb_root_cause_cut_to_1mb(secret):
    with CloudEventsReceiver() as sink:
        config = WebhookConfig(type="webhook", name="events", url=secret(sink.url))
        n = notice(root_cause="c" * 3_000_000)
        assert send(config, n) == Sent()
    (request,) = sink.http.requests
    assert len(request.body) <= 1_000_000
    assert sink.events[n.key].get_data()["rootCause"].endswith(TRUNCATED)


def test_webhook_answers(secret):
    with CloudEventsReceiver(fail_ratio=1.0, retry_after="3", seed=1) as sink:
        config = WebhookConfig(type="webhook", name="events", url=secret(sink.url))
        outcomes = [send(config, notice()) for _ in range(8)]
    assert sink.refused[429] and sink.refused[500] and not sink.events
    assert {o for o in outcomes} == {
        Retry('events: HTTP 429: {"error": "slow down"}', 3.0),
        Retry('events: HTTP 500: {"error": "injected failure"}', None),
    }
    with CloudEventsReceiver(token="right") as sink:
        config = WebhookConfig(type="webhook", name="events", url=secret(sink.url), token=secret("wrong"))
        assert send(config, notice()) == Failed('events: HTTP 401: {"error": "bad or missing bearer token"}')
    assert send(config, notice()).reason.startswith("events: ConnectError")  # the receiver is gone


# E-mail


def smtp_config(smtp: SmtpReceiver, secret, password: str = "pw-1", **changes) -> EmailConfig:
    fields = {"host": "127.0.0.1", "port": smtp.port, "ca_file": str(smtp.ca_file), "timeout_s": 5}
    return email_config(**fields, username=secret("aiops"), password=secret(password), **changes)


def test_email_over_starttls_arrives_threaded(tmp_path, secret):
    with SmtpReceiver(tmp_path, users={"aiops": "pw-1"}) as smtp:
        config = smtp_config(smtp, secret)
        first = send(config, notice(Stage.DIAGNOSED))
        second = send(config, notice(Stage.AWAITING_APPROVAL), first.ref)
    root = "<6f1c2a9e-0b7d-4c1e-9a55-3d2f1e0c8b7a.diagnosed@example.com>"
    assert first == second == Sent(ref=root)
    assert len(smtp.mails) == 2
    for mail in smtp.mails:
        assert mail.mail_from == "aiops@example.com" and mail.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    diagnosed, waiting = (email.message_from_bytes(m.content, policy=email.policy.default) for m in smtp.mails)
    assert diagnosed["Message-ID"] == root and diagnosed["Subject"].endswith("— Diagnosed")
    assert waiting["In-Reply-To"] == waiting["References"] == root
    assert waiting.get_content_type() == "multipart/alternative"
    assert f"    {APPROVE}\r\n" in waiting.get_body(("plain",)).get_content()  # SMTP's line ends
    assert "<pre>kubectl patch incident" in waiting.get_body(("html",)).get_content()


def test_email_login_refused_fails(tmp_path, secret):
    with SmtpReceiver(tmp_path, users={"aiops": "pw-1"}) as smtp:
        outcome = send(smtp_config(smtp, secret, password="guess"), notice())
    assert isinstance(outcome, Failed) and outcome.reason.startswith("oncall-mail: SMTP 535")
    assert not smtp.mails


@pytest.mark.parametrize(
    "data_reply, kind", [("451 4.3.0 mailbox busy, try later", Retry), ("554 5.7.1 rejected as spam", Failed)]
)
def test_email_server_replies(tmp_path, secret, data_reply, kind):
    with SmtpReceiver(tmp_path, users={"aiops": "pw-1"}, data_reply=data_reply) as smtp:
        outcome = send(smtp_config(smtp, secret), notice())
    assert outcome == kind(f"oncall-mail: SMTP {data_reply}")


def test_email_unreachable_server_is_retried():
    config = email_config(host="127.0.0.1", port=closed_port(), timeout_s=2)
    outcome = send(config, notice())
    assert isinstance(outcome, Retry) and outcome.reason.startswith("oncall-mail: cannot reach 127.0.0.1:")


def test_email_untrusted_certificate_fails(tmp_path):
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    with SmtpReceiver(tmp_path) as smtp:
        config = email_config(host="127.0.0.1", port=smtp.port, ca_file=str(other), timeout_s=5)
        outcome = send(config, notice())
    assert isinstance(outcome, Failed) and "certificate does not verify" in outcome.reason


def test_email_without_starttls_is_refused_by_a_server_that_requires_it(tmp_path):
    with SmtpReceiver(tmp_path) as smtp:
        outcome = send(email_config(host="127.0.0.1", port=smtp.port, starttls=False, timeout_s=5), notice())
    assert isinstance(outcome, Failed) and outcome.reason.startswith("oncall-mail: SMTP 530")
    assert not smtp.mails
