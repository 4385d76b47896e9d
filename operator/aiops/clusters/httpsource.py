"""HTTP plumbing shared by the trace and log clients (tempo.py, jaeger.py, loki.py).

One attempt per request, a timeout on every request and a deadline on the whole query, bodies bounded by
telemetry.MAX_BYTES, and every failure a SourceError naming the backend, the URL without credentials and
the reason in plain words.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import certifi
import httpx

from aiops.clusters.telemetry import MAX_BYTES, SourceError
from aiops.clusters.words import MESSAGE_LIMIT, connection_words, display_url, short

_HEX = re.compile(r"[0-9a-fA-F]+")


class BodyTooLarge(SourceError):
    """The backend answered more than telemetry.MAX_BYTES: the body is not parsed."""


class Deadline:
    """The time one query (all its requests together) may take."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._until = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._until - time.monotonic()


@functools.cache
def _tls(insecure: bool) -> ssl.SSLContext:
    """One TLS context per setting, shared by every query (building one reads the CA bundle: ~0.1 s)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HttpJson:
    """GETs JSON from one backend. Use as a context manager: the connection pool lives for one query."""

    def __init__(
        self,
        backend: str,
        url: str,
        bearer_token: str | None,
        insecure: bool,
        timeout: float,
        headers: dict[str, str] | None = None,
    ):
        self.backend = backend
        self.base = url.rstrip("/")
        self.timeout = timeout
        all_headers = {"Accept": "application/json", **(headers or {})}
        if bearer_token:
            all_headers["Authorization"] = f"Bearer {bearer_token}"
        # trust_env=False: no proxies or netrc from the operator's environment between it and the cluster.
        self._client = httpx.Client(
            headers=all_headers, verify=_tls(insecure), timeout=timeout, follow_redirects=False, trust_env=False
        )

    def __enter__(self) -> HttpJson:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def fail(self, path: str, words: str) -> SourceError:
        return SourceError(
            f"{self.backend} at {display_url(self.base + path, query=False)}: {words}"[: MESSAGE_LIMIT * 2]
        )

    def get(self, path: str, params: dict[str, Any], deadline: Deadline) -> Any:
        """The decoded JSON body of GET base+path; SourceError (BodyTooLarge for a body over MAX_BYTES) otherwise."""
        left = deadline.remaining()
        if left <= 0:
            raise self.fail(path, f"gave up: the query's deadline of {deadline.seconds:g}s passed")
        timeout = min(self.timeout, left)
        chunks: list[bytes] = []
        try:
            with self._client.stream("GET", self.base + path, params=params, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise self.fail(path, self._status_words(resp))
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_BYTES:
                    raise BodyTooLarge(self.fail(path, f"answered {int(declared)} bytes, over {MAX_BYTES}").args[0])
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise BodyTooLarge(self.fail(path, f"answered more than {MAX_BYTES} bytes").args[0])
                    if deadline.remaining() <= 0:
                        raise self.fail(path, f"gave up: the query's deadline of {deadline.seconds:g}s passed")
                    chunks.append(chunk)
        except httpx.TimeoutException:
            raise self.fail(path, f"no answer within {timeout:g}s (timed out)") from None
        except httpx.ConnectError as exc:
            raise self.fail(path, connection_words(exc)) from None
        except httpx.HTTPError as exc:
            raise self.fail(path, connection_words(exc)) from None
        try:
            return json.loads(b"".join(chunks))
        except ValueError as exc:
            sample = short(b"".join(chunks)[:80].decode(errors="replace"), 80)
            raise self.fail(path, f"answered something that is not JSON ({exc}): {sample!r}") from None

    def _status_words(self, resp: httpx.Response) -> str:
        if resp.status_code in (401, 403):
            return f"answered {resp.status_code}: the token was refused, or it needs one (authSecretRef)"
        body = b""
        for chunk in resp.iter_bytes():
            body += chunk
            if len(body) >= 300:
                break
        text = short(body[:300].decode(errors="replace"), 300)
        return f"answered {resp.status_code} {resp.reason_phrase}".strip() + (f": {text}" if text else "")


def hex_id(raw: object) -> str | None:
    """A trace or span id as lowercase hex, whether the backend wrote hex (OTLP JSON, Jaeger; leading zeros
    possibly trimmed) or base64 (Tempo's protobuf JSON). None for an absent or all-zero id."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    if _HEX.fullmatch(text) and len(text) in (16, 32):
        out = text.lower()
    else:
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) in (8, 16):
            out = decoded.hex()
        elif _HEX.fullmatch(text) and len(text) < 32:
            out = text.lower().zfill(16 if len(text) <= 16 else 32)
        else:
            out = text.lower()
    return None if not out.strip("0") else out


@dataclass(frozen=True)
class Backend:
    """Where a telemetry backend answers, with what credentials, and how long to wait: `timeout` for one
    request, `deadline` for one query, all its requests together."""

    url: str
    bearer_token: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout: float = 10.0
    deadline: float = 120.0

    name = "backend"

    def http(self, headers: dict[str, str] | None = None) -> HttpJson:
        return HttpJson(self.name, self.url, self.bearer_token, self.insecure, self.timeout, headers)
