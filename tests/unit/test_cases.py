"""The failure scenarios' folders (dev/aiops_dev/eval/scenarios/) are well-formed without a cluster: times
relative, references to objects written before, an Incident about an object the scenario writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from aiops_dev.eval.cases import CASES, resolve_times

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
ABSOLUTE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_relative_times_resolve_against_one_instant():
    doc = {"a": "now", "b": ["now-90s", {"c": "now-3m41s"}], "d": "now-4h", "e": "now-1d", "f": "nowhere"}
    assert resolve_times(doc, NOW) == {
        "a": "2026-03-01T12:00:00Z",
        "b": ["2026-03-01T11:58:30Z", {"c": "2026-03-01T11:56:19Z"}],
        "d": "2026-03-01T08:00:00Z",
        "e": "2026-02-28T12:00:00Z",
        "f": "nowhere",
    }


def test_the_scenarios_are_there():
    assert len(CASES) >= 16
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_scenario_is_well_formed(case):
    assert case.incident["metadata"]["name"] == case.name
    assert "namespace" not in case.incident["metadata"]
    assert case.description
    written: set[tuple[str, str]] = set()
    for doc in case.documents:
        assert not [s for s in strings(doc) if ABSOLUTE.search(s)], f"{case.name}: a time not relative to now"
        refs = [(r["kind"], r["name"]) for r in doc.get("metadata", {}).get("ownerReferences") or []]
        if doc["kind"] == "Event":
            refs.append((doc["involvedObject"]["kind"], doc["involvedObject"]["name"]))
        assert set(refs) <= written, f"{case.name}: {doc['kind']} refers to {refs} before they are written"
        if "name" in doc.get("metadata", {}):
            written.add((doc["kind"], doc["metadata"]["name"]))
    target = case.target
    assert (target["kind"], target["name"]) in written, f"{case.name}: the Incident's target is not written"
