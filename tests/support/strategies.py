"""Hypothesis strategies for the fuzz tests (tests/unit/test_fuzz_*.py), in one place so that every target
is attacked with the same kinds of trouble: text that stresses parsers (control and non-ASCII characters,
very long runs, nesting deeper than a recursive parser goes), JSON of any shape, documents generated from a
schema, and valid documents with a few fields dropped, replaced or added.

The profiles that set how many examples run are registered in tests/conftest.py. The factories are cached:
hypothesis works out things about a strategy (can it be empty?) once per object, and a fresh object per
example made that most of the cost.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import example
from hypothesis import strategies as st

from aiops.api.common import DNS_LABEL

# Values that have broken parsers before: empty, blank, NUL, a line separator that str.splitlines() splits on
# but `$` does not, a trailing newline that `re.match(...$)` lets through, a number where text is expected.
EDGE_TEXT = ("", " ", "\t", "\n", "\r\n", "\x00", "\u2028", "\x85", "a\n", "null", "0", "-", "—", "😀", "${x}")


def huge(pieces: st.SearchStrategy[str], at_most: int = 70_000) -> st.SearchStrategy[str]:
    """A short piece repeated up to `at_most` times: long inputs without paying hypothesis to draw them."""
    return st.builds(lambda piece, n: piece * n, pieces, st.integers(1, at_most))


@functools.cache
def nested(depth_at_most: int = 100_000) -> st.SearchStrategy[str]:
    """JSON (and YAML flow) text nested deeper than a recursive decoder's stack: `[[[...` or `{"a":{...`."""
    return st.builds(
        lambda open_, n, close: open_ * n + (close * n if close else ""),
        st.sampled_from(["[", '{"a":', "[{"]),
        st.integers(1, depth_at_most),
        st.sampled_from(["", "]", "}"]),
    )


@functools.cache
def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text: random unicode, the edge values above, or a long run of something."""
    return st.one_of(
        st.text(max_size=max_size),
        st.sampled_from(EDGE_TEXT),
        huge(st.sampled_from([" ", "a", "é", "\n", "- ", "`", "\\"]), at_most=20_000),
    )


@functools.cache
def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value, big integers and floats included (what json.loads can hand a model)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**30),
        st.floats(allow_nan=False),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(12), inner, max_size=4),
        max_leaves=max_leaves,
    )


@functools.cache
def json_text() -> st.SearchStrategy[str]:
    """Text a JSON decoder may be given: any JSON document, deep nesting, a huge number, or plain text."""
    return st.one_of(
        json_values().map(json.dumps),
        nested(),
        huge(st.sampled_from(["1", "9"]), at_most=10_000),
        texts(),
    )


def _slots(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON document a mutation can touch, as paths from the root."""
    out = [path] if path else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _slots(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _slots(value, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any, max_changes: int = 3) -> Any:
    """`doc` with up to `max_changes` changes: a field dropped, a value of another type or size, an extra field."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(0, max_changes))):
        slots = _slots(doc)
        if not slots:  # everything dropped: an empty document stays one, of its type
            break
        depth = draw(st.integers(1, max(map(len, slots))))  # the depth first: top-level fields are few but matter
        *parent_path, key = draw(st.sampled_from([s for s in slots if len(s) == depth] or slots))
        parent = doc
        for part in parent_path:
            parent = parent[part]
        change = draw(st.sampled_from(["drop", "replace", "extra"]))
        if change == "drop":
            del parent[key]
        elif change == "replace":
            parent[key] = draw(json_values())
        elif isinstance(parent, dict):
            parent[draw(texts(12))] = draw(json_values())
        else:
            parent.append(draw(json_values()))
    return doc


def regressions(argument: str, values: tuple) -> Callable:
    """Decorates a property to run first on inputs that once broke the code under test (@example each)."""

    def apply(test: Callable) -> Callable:
        for value in values:
            test = example(**{argument: value})(test)
        return test

    return apply


# --- documents from a JSON schema ---------------------------------------------------------------------------


def from_schema(schema: dict, patterns: dict[str, st.SearchStrategy[str]] | None = None) -> st.SearchStrategy[Any]:
    """Documents that (mostly) validate against a pydantic model's JSON schema, bounds included.

    `patterns` replaces the generator of strings with that pattern: ids drawn from a handful let generated
    steps point at each other, which random DNS labels never do.
    """
    return _from_schema(schema, schema.get("$defs", {}), patterns or {})


def _from_schema(schema: dict, defs: dict, patterns: dict) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: _from_schema(defs[name], defs, patterns))
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return st.one_of([_from_schema(s, defs, patterns) for s in schema[union]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if not props and isinstance(schema.get("additionalProperties"), dict):
            value = _from_schema(schema["additionalProperties"], defs, patterns)
            return st.dictionaries(texts(12), value, max_size=3)
        return st.fixed_dictionaries(
            {k: _from_schema(v, defs, patterns) for k, v in props.items() if k in required},
            optional={k: _from_schema(v, defs, patterns) for k, v in props.items() if k not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        items = _from_schema(schema.get("items", {}), defs, patterns)
        return st.lists(items, min_size=low, max_size=min(schema.get("maxItems", 4), low + 4))
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 60)
        if "pattern" in schema:
            pattern = schema["pattern"]
            chosen = patterns[pattern] if pattern in patterns else st.from_regex(pattern, fullmatch=True)
            return chosen.filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=min(high, 60)) | st.just("x" * high)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values()


# --- names and times ------------------------------------------------------------------------------------------

STEP_IDS = st.sampled_from(["check-a", "act-b", "esc-c", "d"])


def dns_labels() -> st.SearchStrategy[str]:
    """Mostly valid Kubernetes names, sometimes just not: too long, upper case, a trailing newline."""
    valid = st.from_regex(DNS_LABEL, fullmatch=True).filter(lambda s: len(s) <= 63)
    return st.one_of(valid, valid.map(lambda s: s + "\n"), st.just("x" * 64), st.just("Shop"), texts(12))


def timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 as Alertmanager writes it (UTC, nanoseconds), with odd offsets, without one, or not a time."""
    offsets = st.one_of(
        st.just(UTC),
        st.none(),
        st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)).map(
            timezone
        ),
    )
    written = st.builds(lambda when, tz: when.replace(tzinfo=tz).isoformat(), st.datetimes(), offsets)
    fixed = st.sampled_from(
        ["0001-01-01T00:00:00Z", "2026-01-02T03:04:05.123456789Z", "9999-12-31T23:59:59Z", "2026-13-01T00:00:00Z"]
    )
    return st.one_of(written, written.map(lambda s: s.replace("+00:00", "Z")), fixed, st.integers(), texts(30))
