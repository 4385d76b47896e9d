"""`aiops models compare`: per model version, the measures of its trials in the history (docs/model-rollouts.md)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from aiops.cli import database
from aiops.stores.history import migrate, trials
from aiops.stores.history.trials import Figures

COLUMNS = (
    ("version", "<"),
    ("roles", "<"),
    ("diagnoses", ">"),
    ("agreement", ">"),
    ("accuracy", ">"),
    ("suite top-1", ">"),
    ("valid JSON", ">"),
    ("failed", ">"),
    ("p50 s", ">"),
    ("p95 s", ">"),
    ("p99 s", ">"),
    ("tokens/diag", ">"),
    ("cost/diag", ">"),
)


def _share(pair: tuple[int, int]) -> str:
    hits, of = pair
    return f"{hits / of:.0%} ({hits}/{of})" if of else "-"


def row(f: Figures) -> list[str]:
    latency = [f"{s:.2f}" for s in f.latency_s] if f.latency_s else ["-"] * 3
    return [
        f.version,
        "+".join(f.roles),
        str(f.diagnoses),
        _share(f.agreement),
        _share(f.accuracy),
        _share(f.suite),
        _share(f.valid_json),
        str(f.failed),
        *latency,
        f"{f.tokens:,.0f}" if f.tokens is not None else "-",
        f"{f.cost:.6f}" if f.cost is not None else "-",
    ]


def table(figures: list[Figures]) -> str:
    cells = [[name for name, _ in COLUMNS], *(row(f) for f in figures)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(f"{c:{align}{w}}" for c, (_, align), w in zip(r, COLUMNS, widths, strict=True)) for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def compare(dsn: str, days: float) -> int:
    """Prints the table of the trials of the last `days`; 1 when the history cannot be read."""

    try:
        found = migrate.read_migrated(dsn, "model_trials", trials.rows, datetime.now(UTC) - timedelta(days=days))
    except database.ERRORS as exc:
        print(f"aiops models compare: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if found is None:
        print("aiops models compare: the history has no model trials yet: run `aiops history migrate`", file=sys.stderr)
        return 1
    figures = trials.figures(found)
    if not figures:
        print(f"aiops models compare: no model trials in the last {days:g} day(s)", file=sys.stderr)
        return 0
    print(table(figures))
    print(
        "\nagreement: shadows whose top suspect matches the primary's; accuracy: diagnoses judged right by feedback "
        "(spec.feedback); suite top-1: `aiops-dev eval scenarios --record-dsn`; valid JSON: of the answers the model "
        "gave; failed: unreachable or broken; latency, tokens and cost: of the answers. The operator never promotes: "
        "a promotion is a catalogue change."
    )
    return 0
