"""Failures in plain words, for conditions, evidence gaps and errors: short messages, the root cause of a
wrapped connection error, and URLs without their credentials."""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit, urlunsplit

MESSAGE_LIMIT = 400


def short(exc: BaseException | str, limit: int = MESSAGE_LIMIT) -> str:
    """An exception's message without object reprs, on one line, bounded."""
    text = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*", "", str(exc))
    return re.sub(r"\s+", " ", text).strip()[:limit]


def root(exc: BaseException) -> BaseException:
    """The innermost cause of a wrapped urllib3/httpx error."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "reason", None)
        if isinstance(nxt, BaseException):
            exc = nxt
            continue
        nxt = exc.__cause__ or exc.__context__
        if isinstance(nxt, BaseException) and not isinstance(exc, ssl.SSLError):
            exc = nxt
            continue
        break
    return exc


def connection_words(exc: BaseException) -> str:
    """Why a connection failed, as an operator would say it."""
    text = short(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "resolution" in lowered:
        return f"the host name does not resolve ({text})"
    if "certificate" in lowered or "ssl" in lowered:
        return f"TLS failed: {text} (set insecureSkipVerify for a self-signed certificate)"
    if "timed out" in lowered or "timeout" in lowered:
        return "timed out"
    return text.removeprefix("Failed to establish a new connection: ")


def display_url(url: str, query: bool = True) -> str:
    """The URL without user:password (and without its query unless asked), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query if query else "", parts.fragment if query else ""))
