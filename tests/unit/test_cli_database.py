"""The history commands name the database error and exit 1, and close what they opened."""

from __future__ import annotations

import socket

import pytest

from aiops.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["history", "migrate"], "history"),
        (["notifications"], "notifications"),
        (["notifications", "--pending"], "notifications"),
    ],
)
def test_an_unreachable_database_is_named_and_exits_1(argv, command, capsys):
    dsn = f"postgresql://aiops@127.0.0.1:{_closed_port()}/aiops"
    assert main([*argv, "--dsn", dsn]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"aiops {command}: ") and "refused" in err.lower(), err
