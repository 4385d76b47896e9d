"""Incident history in PostgreSQL: incidents, diagnoses, SOP actions, feedback and an append-only audit log.

Configured by AIOPS_POSTGRES_DSN (or AIOPS_POSTGRES_DSN_FILE, a file holding it, e.g. a mounted Secret).
Without it the operator works on Kubernetes state alone and `status()` says history is off.

    start(settings)          registers the sink on the event bus (called once by `aiops run`)
    status() -> (bool, str)  whether history is being recorded, in words, for a condition or a log line
    similar(text, limit)     past incidents like `text`, with their diagnosis and outcome (full-text search)
    corrections(text, limit) past incidents like `text` whose diagnosis an engineer corrected (labelled examples)
    call(fn, *args)          `await fn(conn, *args)` on the sink's pool from any thread (HistoryOff when off)
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiops.stores.history import examples, store
from aiops.stores.history.examples import Example
from aiops.stores.history.sink import HistorySink, describe
from aiops.stores.history.store import PastIncident

log = logging.getLogger(__name__)

__all__ = [
    "Example",
    "HistoryOff",
    "HistorySink",
    "PastIncident",
    "call",
    "corrections",
    "resolve_dsn",
    "similar",
    "start",
    "status",
]

_sink: HistorySink | None = None
_off_reason = "history is off: AIOPS_POSTGRES_DSN is not set"


def resolve_dsn(dsn: str | None, dsn_file: str | None) -> tuple[str | None, str | None]:
    """The DSN to use and, when there is none, why: (dsn, None) or (None, reason)."""
    if not dsn and dsn_file:
        try:
            dsn = Path(dsn_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            return None, f"history is off: cannot read AIOPS_POSTGRES_DSN_FILE {dsn_file}: {exc.strerror or exc}"
        if not dsn:
            return None, f"history is off: AIOPS_POSTGRES_DSN_FILE {dsn_file} is empty"
    if not dsn:
        return None, "history is off: AIOPS_POSTGRES_DSN is not set"
    if not dsn.startswith(("postgres://", "postgresql://")):
        return None, "history is off: AIOPS_POSTGRES_DSN is not a postgresql:// URL"
    return dsn, None


def start(settings, bus=None) -> HistorySink | None:
    """Starts the sink and registers it on the bus; logs whether history is on. Never raises."""
    global _sink, _off_reason
    from aiops.core.events import BUS

    dsn, reason = resolve_dsn(settings.postgres_dsn, settings.postgres_dsn_file)
    if dsn is None:
        _off_reason = reason
        log.warning("%s: incidents, diagnoses and audit entries are kept in Kubernetes status only", reason)
        return None
    try:
        sink = HistorySink(dsn, retention_days=settings.history_retention_days).start()
    except Exception as exc:  # noqa: BLE001  (history is optional: the operator runs without it)
        _off_reason = f"history is off: cannot start: {type(exc).__name__}: {exc}"
        log.error("%s", _off_reason)
        return None
    (bus or BUS).register(sink)
    _sink = sink
    log.info(
        "history is on: PostgreSQL %s, retention %d days", describe(dsn), settings.history_retention_days
    )  # fmt: skip
    return sink


def status() -> tuple[bool, str]:
    """(True, how it goes) while history is recorded; (False, why not) when it is off or failing."""
    sink = _sink
    if sink is None:
        return False, _off_reason
    c = sink.counters
    where = describe(sink.dsn)
    if sink.last_error:
        return False, f"history is failing: PostgreSQL {where}: {sink.last_error}; {c.failed} event(s) not recorded"
    lost = f", {c.failed + c.dropped} not recorded" if c.failed or c.dropped else ""
    return True, f"history is on: PostgreSQL {where}, {c.written} event(s) recorded{lost}"


def similar(text: str, limit: int = 5, exclude_uid: str | None = None) -> list[PastIncident]:
    """Past incidents like `text` (title, description, root cause, suspects), best match first.

    Empty when history is off or PostgreSQL cannot answer: context for the model, never a reason to fail.
    `exclude_uid` leaves out the incident being diagnosed.
    """
    return _context("similar incidents", store.similar, text, limit, exclude_uid)


class HistoryOff(RuntimeError):
    """History is off (no DSN, or the sink did not start): the message says why."""


def call(fn, *args):
    """`await fn(conn, *args)` on a pooled connection of the running sink, from any thread; its result.

    Raises HistoryOff when history is off, and what fn or PostgreSQL raise."""
    sink = _sink
    if sink is None:
        raise HistoryOff(_off_reason)
    return sink.call(fn, *args)


def corrections(text: str, limit: int = 3, exclude_uid: str | None = None) -> list[Example]:
    """Past incidents like `text` whose diagnosis an engineer corrected (feedback with a rootCause), closest first.

    Empty when history is off or PostgreSQL cannot answer, as `similar`."""
    return _context("past corrections", examples.corrections, text, limit, exclude_uid)


def _context(what: str, fn, *args) -> list:
    sink = _sink
    if sink is None:
        return []
    try:
        return sink.call(fn, *args)
    except Exception as exc:  # noqa: BLE001
        log.warning("history: %s unavailable: %s: %s", what, type(exc).__name__, exc)
        return []
