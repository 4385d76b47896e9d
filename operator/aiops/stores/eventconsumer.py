"""Reading the event stream (aiops.stores.eventstream appends to it) without losing events.

Two ways to read, for two kinds of consumer:

- `Reader`: XREAD after an id that the consumer keeps itself (`aiops watch` keeps it in a file). Every
  reader sees every entry; nothing is acknowledged. For tools that show or copy the stream.
- `GroupConsumer`: XREADGROUP as a named member of a consumer group, for consumers that act on events
  and must not lose one. Each entry goes to one member of the group and stays pending until that member
  acknowledges it (`ack`, XACK). A member restarted under the same name first gets its own pending
  entries again; the entries of a member that died are claimed (XAUTOCLAIM) by another member once they
  have been idle longer than `claim_idle_s`. Delivery is at least once: a consumer that must not act twice
  skips an `event["id"]` it has already handled.

Both return `Entry`s in stream order. An entry that is not an operator event (something else wrote to the
stream, or it was trimmed while pending) has `event` None and `problem` saying why: skip it, and in a
group acknowledge it too, or it stays pending. docs/operations.md ("Event stream") has an example.

Redis being away raises redis.ConnectionError / redis.TimeoutError from `read`: the caller decides how
long to wait (`aiops watch` retries with backoff). Needs Redis 6.2 or later (XAUTOCLAIM).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import redis

from aiops.stores.eventstream import STREAM, connect, where

log = logging.getLogger(__name__)

STREAM_ID = re.compile(r"^\d+(-\d+)?$")
SLACK_S = 5.0  # a reply may take this much longer than the BLOCK it answers


@dataclass(frozen=True)
class Entry:
    id: str  # the stream id, milliseconds-sequence, e.g. 1733472000000-0
    type: str | None
    event: dict[str, Any] | None  # Event.wire(): id, type, at, key, uid, generation, data
    problem: str | None = None  # why `event` is None


def decode(entry_id: str, fields: dict[str, Any] | None) -> Entry:
    """An Entry from XREAD's (id, fields); never raises: a foreign entry says what is wrong with it."""
    fields = {_text(k): _text(v) for k, v in (fields or {}).items()}
    if not fields:
        return Entry(entry_id, None, None, "no fields: deleted or trimmed before it was read")
    try:
        event = json.loads(fields["event"])
        if not isinstance(event, dict):
            raise ValueError("not a JSON object")
    except (KeyError, ValueError) as exc:
        return Entry(entry_id, fields.get("type"), None, f"not an operator event ({exc}): {fields!r:.200}")
    return Entry(entry_id, fields.get("type") or event.get("type"), event)


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def latest_id(client: redis.Redis, stream: str = STREAM) -> str:
    """The id of the stream's last entry ("0-0" when it has none): where "from now" starts.

    XREAD with "$" each time would miss what is appended between two reads; this id, kept, does not."""
    last = client.xrevrange(stream, count=1)
    return _text(last[0][0]) if last else "0-0"


def trimmed_after(client: redis.Redis, after: str, stream: str = STREAM) -> str | None:
    """The oldest id the stream keeps when it is newer than `after`, else None. Then the entry at `after`
    is gone, and so are those appended after it and before the oldest kept, if there were any: trimmed
    (MAXLEN) before this consumer read them. (Redis does not count what trimming removed.)"""
    first = client.xrange(stream, count=1)
    oldest = _text(first[0][0]) if first else None
    return oldest if oldest and _order(oldest) > _order(after) else None


def _entries(reply: Any) -> list[Entry]:
    """XREAD / XREADGROUP's reply (RESP2: [[stream, [(id, fields), ...]]]) as Entries."""
    return [decode(_text(i), fields) for _, items in reply or [] for i, fields in items]


def _client(url: str, block_s: float) -> redis.Redis:
    if block_s < 0:
        raise ValueError(f"block_s={block_s}: expected seconds >= 0")
    return connect(url, timeout_s=block_s + SLACK_S)


class Reader:
    """Every entry after `after` ("$": after the last one when first read; "0-0": from the oldest kept)."""

    def __init__(self, url: str, after: str = "$", *, stream: str = STREAM, block_s: float = 5.0):
        if after != "$" and not STREAM_ID.match(after):
            raise ValueError(f"after={after!r}: expected a stream id such as 1733472000000-0, or $")
        self.client = _client(url, block_s)
        self.stream, self.after, self.block_ms = stream, after, int(block_s * 1000)

    def begin(self) -> str:
        """Fixes where reading starts ("$" becomes the last id now) and returns it; `read` does it when not
        done yet. Call it before telling anyone that reading has started: what they append next is read."""
        if self.after == "$":
            self.after = latest_id(self.client, self.stream)
        return self.after

    def read(self, count: int = 100) -> list[Entry]:
        """Up to `count` entries after the last one returned, waiting up to block_s for the first."""
        self.begin()
        entries = _entries(self.client.xread({self.stream: self.after}, count=count, block=self.block_ms))
        if entries:
            self.after = entries[-1].id
        return entries

    def close(self) -> None:
        self.client.close()


class GroupConsumer:
    """Member `consumer` of consumer group `group` on the stream. The group is created, at `start` ("$":
    only entries appended from then on; "0-0": every entry kept), when it does not exist yet; if it
    disappears (Redis restarted without persistence, or someone destroyed it) it is created again at "0-0",
    so that nothing appended since is missed."""

    def __init__(
        self,
        url: str,
        group: str,
        consumer: str,
        *,
        stream: str = STREAM,
        start: str = "$",
        claim_idle_s: float = 60.0,
        block_s: float = 5.0,
    ):
        if not group or not consumer:
            raise ValueError("a consumer group member needs a group name and a consumer name")
        if start != "$" and not STREAM_ID.match(start):
            raise ValueError(f"start={start!r}: expected a stream id such as 1733472000000-0, or $")
        self.client = _client(url, block_s)
        self.stream, self.group, self.consumer, self.start = stream, group, consumer, start
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.block_ms = int(block_s * 1000)
        self._joined = False
        self._pending_after: str | None = "0-0"  # own pending entries first; None once they are read
        self._claim_from = "0-0"  # XAUTOCLAIM's cursor over the group's pending entries
        self._next_claim = 0.0  # monotonic time of the next pass

    def begin(self) -> str:
        """Joins the group (`join`) unless done; returns where the group stood (its last delivered id).
        `read` does it when not done yet."""
        if not self._joined:
            self.join()
        groups = self.client.xinfo_groups(self.stream)
        return next((_text(g["last-delivered-id"]) for g in groups if _text(g["name"]) == self.group), "0-0")

    def join(self, start: str | None = None) -> bool:
        """Creates the group (and the stream) unless it exists; True when this call created it."""
        try:
            self.client.xgroup_create(self.stream, self.group, id=start or self.start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            created = False
        else:
            created = True
        self._joined = True
        return created

    def read(self, count: int = 100) -> list[Entry]:
        """Up to `count` entries for this member: its own pending ones (after a restart), then entries idle
        on other members longer than claim_idle_s, then new ones (waiting up to block_s)."""
        try:
            return self._read(count)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        log.warning("events: consumer group %s of %s on %s is gone; creating it again from the oldest entry",
                    self.group, self.stream, where(self.client))  # fmt: skip
        self.join("0-0")
        self._pending_after, self._claim_from = "0-0", "0-0"
        return self._read(count)

    def _read(self, count: int) -> list[Entry]:
        if not self._joined:
            self.join()
        if self._pending_after is not None:
            reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: self._pending_after}, count=count)
            if entries := _entries(reply):
                self._pending_after = entries[-1].id
                return entries
            self._pending_after = None
        if time.monotonic() >= self._next_claim and (claimed := self.claim(count)):
            return claimed
        return _entries(
            self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=self.block_ms)
        )

    def claim(self, count: int = 100) -> list[Entry]:
        """Takes over up to `count` entries pending on any member for longer than claim_idle_s (XAUTOCLAIM).
        The cursor walks the group's pending entries across calls; after a full pass the next one waits
        half of claim_idle_s."""
        cursor, claimed, *_ = self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=self._claim_from, count=count
        )
        self._claim_from = _text(cursor)
        if self._claim_from == "0-0":
            self._next_claim = time.monotonic() + max(self.claim_idle_ms / 2000, 0.5)
        return [decode(_text(i), fields) for i, fields in claimed if i is not None]

    def ack(self, *ids: str) -> int:
        """Acknowledges entries this member has handled: they leave the group's pending list."""
        return self.client.xack(self.stream, self.group, *ids) if ids else 0

    def close(self) -> None:
        self.client.close()
