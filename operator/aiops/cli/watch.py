"""`aiops watch`: the operator's event stream (Redis pub/sub) printed live, one line an event."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any, TextIO

import redis

from aiops.core.events import EventType
from aiops.stores.eventstream import CHANNEL, channel


def _short(value: Any, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(event: dict[str, Any]) -> str:
    """A short, type-specific description of an event's payload."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event.get("type")
    if kind == EventType.INCIDENT_CREATED:
        target = data.get("target") if isinstance(data.get("target"), dict) else {}
        where = f" on {target.get('kind')}/{target.get('name')}" if target.get("name") else ""
        return _short(f"{data.get('severity') or '?'}: {data.get('title') or ''}{where}")
    if kind == EventType.DIAGNOSED:
        d = data.get("diagnosis") if isinstance(data.get("diagnosis"), dict) else data
        return _short(f"{d.get('confidence', '?')}% {d.get('rootCause') or ''} ({d.get('model') or '?'})")
    if kind == EventType.FEEDBACK:
        verdict = "correct" if data.get("correct") else "incorrect"
        by = f" by {data['by']}" if data.get("by") else ""
        return _short(f"diagnosis {verdict}{by}" + (f": {data['comment']}" if data.get("comment") else ""))
    if kind == EventType.SOP_ACTION:
        return _short(
            f"{data.get('sop')} {data.get('step')}: {data.get('action')} {data.get('target') or ''} "
            f"-> {data.get('outcome') or '?'}"
        )
    scalars = [f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float | bool)]
    return _short(" ".join(scalars[:6]) or json.dumps(data, default=str))


def format_line(event: dict[str, Any]) -> str:
    at = str(event.get("at") or "")
    try:
        at = datetime.fromisoformat(at.replace("Z", "+00:00")).strftime("%H:%M:%SZ")
    except ValueError:
        at = at[:9] or "?"
    return f"{at} {str(event.get('type')):<22} {event.get('key')} {summary(event)}"


def watch(
    url: str,
    types: list[str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    count: int | None = None,
    raw: bool = False,
) -> int:
    """Prints events as they are published until interrupted (or after `count` events)."""
    channels = [channel(t) for t in types] if types else [CHANNEL]
    client = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    seen = 0
    delay = 0.5
    try:
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(*channels)
                print(f"watching {', '.join(channels)} on {url.rpartition('@')[2]}", file=err, flush=True)
                delay = 0.5
                for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                        line = json.dumps(event) if raw else format_line(event)
                    except (ValueError, TypeError, AttributeError):
                        print(f"not an event on {message.get('channel')!r}: {message.get('data')!r:.200}", file=err)
                        continue
                    print(line, file=out, flush=True)
                    seen += 1
                    if count and seen >= count:
                        return 0
            except redis.ConnectionError as exc:
                print(f"Redis unreachable ({exc}); retrying in {delay:.1f}s", file=err, flush=True)
                time.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                pubsub.close()
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
