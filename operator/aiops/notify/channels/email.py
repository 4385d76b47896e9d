"""E-mail: a multipart/alternative message (plain text and HTML) over SMTP with STARTTLS.

`Message-ID` is made from the Notice's key, so a repeat of one delivery has the same id and mail clients
and archives can tell; `In-Reply-To` and `References` point at the first message of the Incident (`ref`,
or the id its diagnosis notice has) so clients show an Incident as one thread.

smtplib blocks, so a delivery runs in a thread. SMTP's own classes of reply decide the outcome: a 4xx is
temporary (Retry), a 5xx permanent (Failed), as are a refused login and a certificate that does not verify.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

from aiops.notify.channels import render
from aiops.notify.notice import Failed, Notice, Outcome, Retry, Sent, Stage

if TYPE_CHECKING:
    from aiops.notify.channels import EmailConfig

log = logging.getLogger(__name__)

SIZE_MAX = 1_000_000
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")


def message_id(uid: str, stage: str, detail: str, domain: str) -> str:
    """`<uid.stage[.hash of detail]@domain>`: the same for the same key; the detail (a step id, free text)
    is hashed so the id stays a valid RFC 5322 msg-id whatever it holds."""
    left = f"{_NOT_ATEXT.sub('-', uid)}.{stage}"
    if detail:
        left += "." + hashlib.sha256(detail.encode()).hexdigest()[:16]
    return f"<{left}@{domain}>"


def domain_of(sender: str) -> str:
    """The sender's domain, the right side of every Message-ID (RFC 5322 3.6.4: unique to this sender)."""
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]+", domain) else "aiops.invalid"


def plain(notice: Notice) -> str:
    lines = [render.headline(notice), ""]
    lines += [f"{key}: {value}" for key, value in render.facts(notice)]
    if notice.root_cause:
        lines += ["", "Root cause:", notice.root_cause]
    if notice.evidence:
        lines += ["", "Evidence:", *(f"- {item}" for item in notice.evidence[: render.MAX_EVIDENCE])]
    if notice.next_step:
        lines += ["", f"Next step: {notice.next_step}"]
    if notice.approve_command:
        lines += ["", "Approve it with:", f"    {notice.approve_command}"]
    if notice.children:
        lines += ["", f"Affected ({len(notice.children)}):", *(f"- {child}" for child in notice.children)]
    lines += ["", f"Incident {notice.incident} · {notice.at}", f"Full diagnosis: {render.describe_command(notice)}"]
    return "\n".join(lines) + "\n"


def rich(notice: Notice) -> str:
    """The HTML part; every value from the Notice is escaped, so hostile text stays text."""
    e = html.escape

    def para(text: str) -> str:
        return e(text).replace("\n", "<br>")

    rows = "".join(
        f'<tr><th align="left" style="padding-right:12px">{e(key)}</th><td>{e(value)}</td></tr>'
        for key, value in render.facts(notice)
    )
    parts = [f"<h2>{e(render.headline(notice))}</h2>", f"<table>{rows}</table>"]
    if notice.root_cause:
        parts.append(f"<h3>Root cause</h3><p>{para(notice.root_cause)}</p>")
    if notice.evidence:
        items = "".join(f"<li>{para(item)}</li>" for item in notice.evidence[: render.MAX_EVIDENCE])
        parts.append(f"<h3>Evidence</h3><ul>{items}</ul>")
    if notice.next_step:
        parts.append(f"<h3>Next step</h3><p>{para(notice.next_step)}</p>")
    if notice.approve_command:
        parts.append(f"<p>Approve it with:</p><pre>{e(notice.approve_command)}</pre>")
    if notice.children:
        items = "".join(f"<li>{e(child)}</li>" for child in notice.children)
        parts.append(f"<h3>Affected ({len(notice.children)})</h3><ul>{items}</ul>")
    parts.append(
        f'<p style="color:#666">Incident {e(notice.incident)} · {e(notice.at)}<br>'
        f"Full diagnosis: <code>{e(render.describe_command(notice))}</code></p>"
    )
    body = "\n".join(parts)
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'


def compose(notice: Notice, config: EmailConfig, ref: str | None, now: datetime | None = None) -> EmailMessage:
    domain = domain_of(config.sender)
    own = message_id(notice.uid, notice.stage, notice.detail, domain)
    first = ref or message_id(notice.uid, Stage.DIAGNOSED, "", domain)
    msg = EmailMessage()
    # Header values on one line: a title with a line break must not become a header of its own.
    msg["Subject"] = render.one_line(f"{render.headline(notice)} — {render.stage_label(notice)}")
    msg["From"] = config.sender
    msg["To"] = ", ".join(config.to)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = own
    if first != own:
        msg["In-Reply-To"] = first
        msg["References"] = first
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the operator
    msg.set_content(plain(notice))
    msg.add_alternative(rich(notice), subtype="html")
    return msg


def render_message(notice: Notice, config: EmailConfig, ref: str | None) -> EmailMessage:
    """The message, within 1 MB."""
    return render.fit(notice, lambda n: compose(n, config, ref), lambda m: len(m.as_bytes()), SIZE_MAX)


def _by_code(channel: str, code: int, text: object) -> Outcome:
    what = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    reason = f"{channel}: SMTP {code} {' '.join(what.split())}"
    return Retry(reason) if 400 <= code < 500 else Failed(reason)


class EmailChannel:
    def __init__(self, config: EmailConfig):
        self.config = config
        self.name = config.name
        self.rate_per_minute = config.rate_per_minute

    async def send(self, notice: Notice, ref: str | None) -> Outcome:
        if bool(self.config.username) != bool(self.config.password):
            return Failed(f"{self.name}: name both username and password, or neither")
        login = None
        try:
            if self.config.username and self.config.password:
                login = (self.config.username.read(), self.config.password.read())
        except ValueError as exc:
            return Failed(f"{self.name}: {exc}")
        msg = render_message(notice, self.config, ref)
        # The thread's root, the first message's id, which every later message of the Incident refers to.
        thread = str(msg["References"] or msg["Message-ID"])
        return await asyncio.to_thread(self._deliver, msg, login, thread)

    def _deliver(self, msg: EmailMessage, login: tuple[str, str] | None, thread: str) -> Outcome:
        config = self.config
        try:
            context = ssl.create_default_context(cafile=config.ca_file) if config.starttls else None
        except OSError as exc:
            return Failed(f"{self.name}: cannot load the CA file {config.ca_file}: {exc}")
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
                if context:
                    smtp.starttls(context=context)
                if login:
                    smtp.login(*login)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            detail = ", ".join(f"{rcpt} {code}" for rcpt, (code, _) in exc.recipients.items())
            reason = f"{self.name}: SMTP refused every recipient ({detail})"
            temporary = any(400 <= code < 500 for code, _ in exc.recipients.values())
            return Retry(reason) if temporary else Failed(reason)
        except smtplib.SMTPResponseException as exc:
            return _by_code(self.name, exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPServerDisconnected as exc:
            return Retry(f"{self.name}: the server closed the connection: {exc}")
        except smtplib.SMTPException as exc:
            # What is left is the server lacking something the configuration needs (STARTTLS, AUTH).
            return Failed(f"{self.name}: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return Failed(f"{self.name}: the server's certificate does not verify: {exc.verify_message}")
        except OSError as exc:
            return Retry(f"{self.name}: cannot reach {config.host}:{config.port}: {exc}")
        if refused:
            log.warning("%s: delivered, but these recipients were refused: %s", self.name, refused)
        return Sent(ref=thread)
