"""`aiops watch`: the operator's event stream (the Redis stream aiops:events) printed, one line an event.

A restarted watch prints what it missed: it keeps the id of the last event it printed in a file
(`state_path`, or --state) and reads on after it next time; without one it starts from now. --since and
--from-start choose the start; --no-resume neither reads nor writes the file. With --group it reads as a
member of a consumer group instead (aiops.stores.eventconsumer.GroupConsumer): Redis keeps the group's
position, and an event is acknowledged once printed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import redis

from aiops.core.events import EventType
from aiops.settings import cache_dir
from aiops.stores.eventconsumer import STREAM_ID, Entry, GroupConsumer, Reader, trimmed_after
from aiops.stores.eventstream import STREAM, connect, where


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


BATCH = 100  # entries a read returns at most; the state file is written once a batch


class StateError(ValueError):
    """The state file cannot be used; the message says which file and what to do."""


def state_path(url: str) -> Path:
    """The default state file of one Redis (host, port, database): a position in one stream is
    meaningless in another."""
    client = connect(url)
    try:
        place = re.sub(r"[^A-Za-z0-9.]+", "-", where(client)).strip("-")
    finally:
        client.close()
    return cache_dir() / f"watch-{place}.id"


def load_position(path: Path) -> str | None:
    """The id saved in `path`, None when there is no file yet."""
    try:
        saved = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}; fix it, or pass --no-resume") from None
    if not STREAM_ID.match(saved):
        raise StateError(f"{path} holds {saved[:40]!r}, not a stream id: delete the file, or pass --no-resume")
    return saved


def save_position(path: Path, entry_id: str) -> None:
    """Writes `entry_id` to `path` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(entry_id + "\n")
    os.replace(tmp, path)


def watch(
    url: str,
    types: list[str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    count: int | None = None,
    raw: bool = False,
    since: str | None = None,
    state: Path | None = None,
    resume: bool = True,
    group: str | None = None,
    consumer: str | None = None,
    block_s: float = 5.0,
) -> int:
    """Prints events until interrupted (or after `count` events).

    Without a group it reads after `since`, else after the id saved in the state file (`state`, by default
    `state_path(url)`), else from now, and saves the id of the last event printed there; `resume` False
    keeps no file. With `group` it reads as member `consumer` (a group created now starts at `since`, else
    now) and acknowledges what it has printed, or skipped."""
    try:
        if group or not resume:
            state = None  # a group keeps its position in Redis
        elif state is None:
            state = state_path(url)
        start = since or (load_position(state) if state else None)
        if group:
            source: Reader | GroupConsumer = GroupConsumer(url, group, consumer or "", start=since or "$",
                                                           block_s=block_s)  # fmt: skip
        else:
            source = Reader(url, start or "$", block_s=block_s)
    except ValueError as exc:  # the state file, the URL, a group or consumer name
        print(f"aiops watch: {exc}", file=err)
        return 2
    if group:
        origin = f"as {consumer} of group {group}"
    else:
        origin = "from now" if not start else f"resuming ({state})" if not since else "from --since/--from-start"
    printed, delay, connected = 0, 0.5, False
    try:
        while True:
            try:
                if not connected:
                    _announce(source, origin, None if group else start, err)
                    connected, delay = True, 0.5
                entries = source.read(min(BATCH, count - printed) if count else BATCH)
                last_printed = None  # a read returns at most the events still to print: `count` is never passed
                for entry in entries:
                    if _show(entry, types, raw, out, err):
                        printed, last_printed = printed + 1, entry.id
                if group and entries:
                    source.ack(*(e.id for e in entries))  # printed, or skipped as not asked for
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                print(f"Redis unreachable ({exc}); retrying in {delay:.1f}s", file=err, flush=True)
                time.sleep(delay)
                delay, connected = min(delay * 2, 10), False
                continue
            except redis.ResponseError as exc:
                print(f"aiops watch: Redis {where(source.client)} refused reading {STREAM}: {exc}", file=err)
                return 1
            if state and last_printed:
                state = _keep(state, last_printed, err)
            if count and printed >= count:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        source.close()


def _keep(state: Path, entry_id: str, err: TextIO) -> Path | None:
    """Saves the position; when that fails, says so and returns None: the watch goes on without a file."""
    try:
        save_position(state, entry_id)
    except OSError as exc:
        print(f"aiops watch: cannot keep the position in {state} ({exc.strerror}), so a restarted watch will not "
              "resume: pass --state FILE somewhere writable, or --no-resume", file=err, flush=True)  # fmt: skip
        return None
    return state


def _announce(source: Reader | GroupConsumer, origin: str, resumed: str | None, err: TextIO) -> None:
    """Says where the watch reads from (once connected), and whether events it should print were trimmed."""
    position = source.begin()
    print(f"watching {STREAM} on {where(source.client)} {origin}, after {position}", file=err, flush=True)
    if resumed and (oldest := trimmed_after(source.client, resumed)):
        print(f"the oldest event kept is {oldest}: any after {resumed} and before it were trimmed "
              "(AIOPS_EVENTS_STREAM_MAXLEN) before this watch read them", file=err, flush=True)  # fmt: skip


def _show(entry: Entry, types: list[str] | None, raw: bool, out: TextIO, err: TextIO) -> bool:
    """Prints the entry when it is an event of the types asked for; True when it did."""
    if entry.event is None:
        print(f"not an event at {entry.id}: {entry.problem}", file=err, flush=True)
        return False
    if types and entry.type not in types:
        return False
    try:
        line = json.dumps(entry.event) if raw else format_line(entry.event)
    except (ValueError, TypeError, AttributeError) as exc:
        print(f"not an event at {entry.id}: {exc}", file=err, flush=True)
        return False
    print(line, file=out, flush=True)
    return True
