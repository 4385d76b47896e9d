"""Where events go beyond Kubernetes: PostgreSQL history and the Redis event stream, both optional."""

from __future__ import annotations

from aiops.stores import eventstream, history


def start_sinks(settings) -> None:
    """History (PostgreSQL) and the event stream (Redis) on the event bus, each only when configured."""
    history.start(settings)
    eventstream.start(settings)
