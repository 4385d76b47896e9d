"""The fault-injection suite's table: each case records one row (work items, lost, duplicated, seconds), prints it
at once (`-s`), and the rows are printed again together at the end of the run."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

ROWS = pytest.StashKey[list]()
HEADER = f"{'case':<50} {'items':>6} {'lost':>5} {'dup':>5} {'seconds':>8}  notes"


@dataclass(frozen=True)
class Row:
    case: str
    items: int
    lost: int
    duplicated: int
    seconds: float
    notes: str = ""

    def line(self) -> str:
        return f"{self.case:<50} {self.items:>6} {self.lost:>5} {self.duplicated:>5} {self.seconds:>8.1f}  {self.notes}"


@pytest.fixture
def tally(request):
    """`tally(items, lost, duplicated, notes)` records this case's row (seconds since the test began) and prints
    it; the test asserts on its figures after, so that a failing case still shows its row."""
    started = time.monotonic()
    case = request.node.name.removeprefix("test_")

    def record(items: int, lost: int, duplicated: int, notes: str = "") -> Row:
        row = Row(case, items, lost, duplicated, time.monotonic() - started, notes)
        request.config.stash.setdefault(ROWS, []).append(row)
        print(f"\n{HEADER}\n{row.line()}")
        return row

    return record


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(ROWS, [])
    if rows:
        terminalreporter.section("chaos: lost and duplicated work")
        terminalreporter.write_line(HEADER)
        for row in rows:
            terminalreporter.write_line(row.line())
