"""One HTTP POST for a channel, and what its answer comes to.

The mapping every HTTP channel shares: 2xx is Sent; 429 is Retry after the server's Retry-After; 408, 5xx,
timeouts and broken connections are Retry; any other status, and a URL or header that cannot make a
request, is Failed. Reasons name the channel and the status, never the URL: a webhook URL is a secret.
"""

from __future__ import annotations

import functools
import math
import re
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from aiops.notify.notice import Failed, Outcome, Retry, Sent

_SECONDS = re.compile(r"\d+(\.\d+)?")


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3);
    None when absent or unreadable, 0 for a date already past."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every send: building one loads the CA bundle (tens of ms of CPU), which
    per send would cap delivery at a few dozen notices a second."""
    return httpx.create_ssl_context()


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of the answer's body on one line: services say there what was wrong."""
    text = " ".join(response.text.split())
    return f": {text[:limit]}" if text else ""


def outcome(channel: str, response: httpx.Response) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Sent()
    reason = f"{channel}: HTTP {status}{excerpt(response)}"
    if status in (408, 429) or status >= 500:
        return Retry(reason, retry_after(response.headers.get("Retry-After")))
    return Failed(reason)


async def post(
    channel: str, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response | Retry | Failed:
    """POSTs `body`; the response whatever its status, or the Retry / Failed that stopped the request.
    Redirects are not followed: a 3xx is a misconfigured URL, and following it would carry the headers
    (a bearer token) elsewhere."""

    def scrub(exc: Exception) -> str:
        return str(exc).replace(url, "<url>") or type(exc).__name__

    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls()) as client:
            return await client.post(url, content=body, headers=headers)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        # ValueError: a header value httpx cannot encode (a token with non-ASCII in it).
        return Failed(f"{channel}: cannot make the request: {scrub(exc)}")
    except httpx.TimeoutException:
        return Retry(f"{channel}: no answer within {timeout:g}s")
    except httpx.HTTPError as exc:
        return Retry(f"{channel}: {type(exc).__name__}: {scrub(exc)}")
