"""Runbooks as markdown: parse them into an SOPSpec, lint them, render an SOPSpec back.

A runbook is YAML front matter (name, owner, version, match, escalation) and a markdown body:
a `# Title`, prose that becomes the description, and one `## type: id — Title` section per step.
A step's fields are the bullet list right under its heading (`- promql:`, `- action:`,
`- on failure:` ...); the rest of the section is its instructions. sop-library/README.md is the
reference, with an example.

Errors carry the file's line numbers, including the SOPSpec model's own (unknown action type,
a branch to a missing step, a cycle), so an SRE can fix a runbook without reading pydantic.
Nothing is returned as a spec while any error remains. `lint` adds warnings about runbooks that are
valid but risky or incomplete; it works on any SOPSpec, with line numbers when it has them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aiops import API_VERSION
from aiops.api import SOP
from aiops.api.common import DNS_LABEL, field_path
from aiops.api.sop import Automation, SOPSpec, SOPStep, StepType, next_steps

FRONT_MATTER_KEYS = ("name", "title", "owner", "version", "match", "escalation")
# Bullet names as written (case, spaces, `-` and `_` do not matter) -> SOPStep alias.
STEP_FIELDS = {
    "promql": "promql",
    "command": "command",
    "action": "action",
    "automation": "automation",
    "approval": "approvalRequired",
    "on success": "onSuccess",
    "on failure": "onFailure",
    "timeout": "timeoutSeconds",
    "delivery": "delivery",
}
APPROVAL = {"required": True, "not required": False}
DELIVERY = {"live": "live", "pullrequest": "pullRequest", "auto": "auto"}  # written as `pull request`, ...
MAX_NAME = 63  # the object name becomes a label value on what the operator creates for it

# The blank runs before a title or value are matched possessively (`\s++`) and a value ends at its last
# non-blank (`.*\S`): with backtracking there, a long blank run made a match quadratic (seconds for a line).
HEADING = re.compile(r"^##\s+(?P<type>[^\s:]+)\s*:\s*(?P<id>\S+)\s+(?:—|–|--|-)\s++(?P<title>.*\S)\s*$")
STEP_HEADING = re.compile(r"^##(?:\s|$)")
TITLE_HEADING = re.compile(r"^#\s++(?P<title>.*\S)\s*$")
ITEM = re.compile(r"^[-*]\s+(?P<key>[A-Za-z][A-Za-z_-]*(?:\s[A-Za-z][A-Za-z_-]*)?)\s*:(?:\s++(?P<value>.*\S))?\s*$")
PARAM = re.compile(r"^\s+[-*]\s+(?P<key>[^\s:]+)\s*:(?:\s++(?P<value>.*\S))?\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class IssueSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class LintIssue:
    path: str | None
    line: int | None
    field: str | None  # e.g. steps[2].onSuccess, match.alertNames[0]
    message: str
    severity: IssueSeverity = IssueSeverity.ERROR
    rule: str | None = None  # warnings: the lint rule, as documented in sop-library/README.md

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.path or "<spec>", self.line) if p is not None)
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {self.severity}: {what}" + (f" [{self.rule}]" if self.rule else "")


class SOPFileError(ValueError):
    """A runbook with errors; `issues` lists every one found."""

    def __init__(self, issues: list[LintIssue]):
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues


@dataclass(frozen=True)
class Runbook:
    name: str
    spec: SOPSpec
    # field path (as in LintIssue.field) -> line, for warnings about a parsed file
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


def parse(text: str, path: str | Path | None = None) -> Runbook:
    """The runbook in `text`; the name defaults to the file stem. Raises SOPFileError."""
    return _Reader(text, path).read()


def check(text: str, path: str | Path | None = None) -> tuple[Runbook | None, list[LintIssue]]:
    """Errors, or the runbook and its lint warnings."""
    try:
        runbook = parse(text, path)
    except SOPFileError as err:
        return None, err.issues
    return runbook, lint(runbook.spec, path, runbook.lines)


def runbook_files(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders contribute their *.md files except README.md."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.glob("*.md") if f.name.lower() != "readme.md")
        else:
            out.append(p)
    return out


def check_files(paths: list[str | Path]) -> tuple[list[tuple[Path, Runbook]], list[LintIssue]]:
    """Every runbook under `paths` that parses, and the issues of all of them; two files may not
    give the same object name, since one would overwrite the other."""
    runbooks: list[tuple[Path, Runbook]] = []
    issues: list[LintIssue] = []
    owners: dict[str, Path] = {}
    for path in runbook_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(LintIssue(str(path), None, None, f"cannot read the file: {exc}"))
            continue
        runbook, found = check(text, path)
        issues += found
        if runbook is None:
            continue
        if runbook.name in owners:
            line = runbook.lines.get("name", 1)
            issues.append(
                LintIssue(str(path), line, "name", f"{runbook.name!r} is also the name of {owners[runbook.name]}")
            )
            continue
        owners[runbook.name] = path
        runbooks.append((path, runbook))
    return runbooks, issues


def manifest(runbook: Runbook, namespace: str | None = None) -> dict[str, Any]:
    """The SOP object, with the markdown it came from in spec.source."""
    metadata = {"name": runbook.name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": API_VERSION, "kind": SOP.kind, "metadata": metadata, "spec": runbook.spec.wire()}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the markdown source, long queries) as `|` blocks, readable in a manifest."""


_BlockDumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)


def manifest_yaml(runbook: Runbook, namespace: str | None = None) -> str:
    return yaml.dump(manifest(runbook, namespace), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120)


def from_manifest(text: str, path: str | Path | None = None) -> Runbook:
    """An SOP YAML manifest as a Runbook (for rendering it as markdown). Raises SOPFileError."""
    where = str(path) if path is not None else None
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nested deeper than PyYAML's composer goes
        mark = getattr(exc, "problem_mark", None)
        raise SOPFileError(
            [LintIssue(where, mark.line + 1 if mark else None, None, f"not valid YAML: {exc}")]
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != SOP.kind:
        raise SOPFileError([LintIssue(where, None, "kind", f"not an {SOP.kind} manifest")])
    metadata = doc.get("metadata")
    name = (metadata.get("name") if isinstance(metadata, dict) else None) or ""
    try:
        spec = SOPSpec.model_validate(doc.get("spec") or {})
    except ValidationError as exc:
        described = map(_describe, exc.errors())
        raise SOPFileError([LintIssue(where, None, f"spec.{f}" if f else "spec", m) for f, m in described]) from None
    return Runbook(name, spec)


# --- parsing ------------------------------------------------------------------------------------


def _key(text: str) -> str:
    """`On success`, `on-success` and `onSuccess` name the same field."""
    return re.sub(r"[\s_-]+", "", text.lower())


FIELD_BY_KEY = {_key(k): v for k, v in STEP_FIELDS.items()}


def _closes(row: str, fence: str) -> bool:
    m = FENCE.match(row)
    return bool(m) and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) and not m["info"].strip()


def _unquote(value: str) -> str:
    """Inline code is how markdown keeps `a{b="c"} > 1` readable; the backticks are not the value."""
    for tick in ("``", "`"):
        if len(value) > 2 * len(tick) and value.startswith(tick) and value.endswith(tick):
            return value[len(tick) : -len(tick)].strip()
    return value


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    keyed = {_key(c): c for c in choices}
    close = difflib.get_close_matches(_key(word), keyed, n=1)
    return f"; did you mean {keyed[close[0]]!r}?" if close else f"; expected one of: {', '.join(choices)}"


def parse_duration(text: str) -> int | None:
    """`90s`, `10m`, `1h30m` or plain seconds; None when it is none of those."""
    if text.isdigit():
        return int(text)
    m = DURATION.match(text)
    if not text or not m:
        return None
    return int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60 + int(m["s"] or 0)


def format_duration(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _line(lines: dict[str, int], path: str | None) -> int | None:
    """The line of a field, or of the nearest enclosing one that has a line."""
    parts = re.split(r"(?=[.\[])", path or "")
    for end in range(len(parts), 0, -1):
        if (found := lines.get("".join(parts[:end]))) is not None:
            return found
    return None


def _describe(err: dict[str, Any]) -> tuple[str | None, str]:
    """(field path, message) of a pydantic error on an SOPSpec."""
    path = field_path(err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "string_type" and isinstance(err.get("input"), int | float):
        message += " (YAML read a number: quote it)"
    head, sep, rest = message.partition(": ")
    if not path and sep and " " not in head:  # model-level checks name the field themselves
        path, message = head, rest
    return path or None, message


class _Reader:
    def __init__(self, text: str, path: str | Path | None):
        self.text = text
        self.path = str(path) if path is not None else None
        self.stem = Path(path).stem if path is not None else None
        self.rows = text.splitlines()
        self.issues: list[LintIssue] = []
        self.lines: dict[str, int] = {}

    def error(self, line: int | None, field_: str | None, message: str) -> None:
        self.issues.append(LintIssue(self.path, line, field_, message))

    def read(self) -> Runbook:
        front, body_start = self.front_matter()
        name = self.name(front)
        spec: dict[str, Any] = {k: front[k] for k in ("owner", "version", "match", "escalation") if k in front}
        spec |= self.body(body_start, front)
        if self.issues:
            raise SOPFileError(self.issues)
        try:
            model = SOPSpec.model_validate(spec | {"source": self.text})
        except ValidationError as exc:
            for err in exc.errors():
                self.schema_error(err, spec["steps"])
            raise SOPFileError(self.issues) from None
        return Runbook(name, model, self.lines)

    def front_matter(self) -> tuple[dict[str, Any], int]:
        """The header as a dict, the index of the body's first row; records each key's line."""
        if not self.rows or self.rows[0].strip() != "---":
            return {}, 0
        end = next((i for i in range(1, len(self.rows)) if self.rows[i].strip() in ("---", "...")), None)
        if end is None:
            self.error(1, None, "the front matter opened here is never closed with a `---` line")
            return {}, len(self.rows)
        source = "\n".join(self.rows[1:end])
        try:
            # An alias can refer to its own anchor or nest others ten to a level: the value would be endless
            # or millions of nodes from a few lines. A runbook's header has no need for them.
            alias = next(
                (e for e in yaml.parse(source, Loader=yaml.SafeLoader) if isinstance(e, yaml.AliasEvent)), None
            )
            if alias is not None:
                self.error(
                    alias.start_mark.line + 2,
                    None,
                    "front matter may not use YAML aliases (*name): write the value out",
                )
                return {}, end + 1
            node = yaml.compose(source, Loader=yaml.SafeLoader)
            data = yaml.safe_load(source)
        except (yaml.YAMLError, RecursionError) as exc:  # RecursionError: nested deeper than PyYAML's composer goes
            mark, where = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
            context = f"{exc.context} on line {where.line + 2}: " if getattr(exc, "context", None) and where else ""
            problem = getattr(exc, "problem", None) or str(exc)
            self.error(mark.line + 2 if mark else 1, None, f"front matter is not valid YAML: {context}{problem}")
            return {}, end + 1
        if data is None:
            return {}, end + 1
        if not isinstance(data, dict):
            self.error(2, None, "front matter must be a mapping of keys (name, owner, match, ...)")
            return {}, end + 1
        self.key_lines(node, "", offset=2)
        for key in data:
            if key not in FRONT_MATTER_KEYS:
                self.error(
                    self.lines.get(str(key)),
                    str(key),
                    "unknown front-matter key" + _suggest(str(key), FRONT_MATTER_KEYS),
                )
        return data, end + 1

    def key_lines(self, node: yaml.Node, path: str, offset: int) -> None:
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value in node.value:
                key = str(key_node.value)
                sub = f"{path}.{key}" if path else key
                if key in seen:
                    self.error(key_node.start_mark.line + offset, sub, "given more than once")
                seen.add(key)
                self.lines[sub] = key_node.start_mark.line + offset
                self.key_lines(value, sub, offset)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[f"{path}[{i}]"] = item.start_mark.line + offset
                self.key_lines(item, f"{path}[{i}]", offset)

    def name(self, front: dict[str, Any]) -> str:
        name = front.get("name", self.stem)
        line = self.lines.get("name", 1)
        if not name:
            self.error(1, "name", "no name: give `name:` in the front matter")
        elif not isinstance(name, str) or len(name) > MAX_NAME or not re.fullmatch(DNS_LABEL, name):
            where = "" if "name" in front else " (taken from the file name; set `name:` in the front matter)"
            self.error(
                line,
                "name",
                f"{name!r} is not a valid object name: lowercase letters, digits and '-', at most {MAX_NAME}{where}",
            )
        return str(name or "")

    def body(self, start: int, front: dict[str, Any]) -> dict[str, Any]:
        rows = self.rows
        fenced = self.fenced_rows(start)
        heads = [i for i in range(start, len(rows)) if i not in fenced and STEP_HEADING.match(rows[i])]
        first_step = heads[0] if heads else len(rows)
        out: dict[str, Any] = {}

        # The title: a `# Title` as the body's first line, or `title:` in the front matter.
        desc_start = start
        first = next((i for i in range(start, first_step) if rows[i].strip()), None)
        h1 = TITLE_HEADING.match(rows[first]) if first is not None else None
        if h1:
            desc_start = first + 1
            self.lines["title"] = first + 1
            if "title" in front and front["title"] != h1["title"]:
                self.error(first + 1, "title", f"the `# {h1['title']}` heading and `title: {front['title']}` differ")
        title = h1["title"] if h1 else front.get("title")
        if title is None:
            self.error(start + 1, "title", "no title: start the body with a `# Title` heading")
        else:
            out["title"] = title

        description = self.prose(desc_start, first_step, "description")
        if description:
            out["description"] = description
        self.lines["steps"] = first_step + 1
        if not heads:
            self.error(
                min(start + 1, max(len(rows), 1)), "steps", "no steps: each step is a `## type: id — Title` section"
            )
        bounds = zip(heads, [*heads[1:], len(rows)] if heads else [], strict=True)
        out["steps"] = [self.step(n, head, end, fenced) for n, (head, end) in enumerate(bounds)]
        return out

    def fenced_rows(self, start: int) -> set[int]:
        """Rows inside fenced code blocks, where `## ` is a comment rather than a step."""
        inside: set[int] = set()
        opener: tuple[int, str] | None = None
        for i in range(start, len(self.rows)):
            if opener is None:
                if m := FENCE.match(self.rows[i]):
                    opener = (i, m["fence"])
            else:
                inside.add(i)
                if _closes(self.rows[i], opener[1]):
                    opener = None
        if opener is not None:
            self.error(opener[0] + 1, None, "this code block is never closed")
        return inside

    def prose(self, start: int, end: int, key: str) -> str | None:
        rows = self.rows[start:end]
        lead = next((i for i, r in enumerate(rows) if r.strip()), None)
        if lead is None:
            return None
        self.lines[key] = start + lead + 1
        return "\n".join(rows).strip("\n").rstrip()

    def step(self, n: int, head: int, end: int, fenced: set[int]) -> dict[str, Any]:
        base = f"steps[{n}]"
        for key in (base, f"{base}.id", f"{base}.type", f"{base}.title"):
            self.lines[key] = head + 1
        m = HEADING.match(self.rows[head])
        if not m:
            self.error(
                head + 1,
                base,
                "a step heading reads `## type: id — Title`, e.g. `## check: confirm-oom — Confirm the OOM kill`",
            )
            return {}
        step: dict[str, Any] = {"id": m["id"], "type": m["type"].lower(), "title": m["title"]}
        i = head + 1
        while i < end and not self.rows[i].strip():
            i += 1
        while i < end and (item := ITEM.match(self.rows[i])):
            i = self.field(step, base, i, item)
        for j in range(i, end):
            stray = ITEM.match(self.rows[j])
            if j not in fenced and stray and _key(stray["key"]) in FIELD_BY_KEY:
                self.error(
                    j + 1,
                    base,
                    f"`- {stray['key']}:` is below the instructions: fields go right under the step heading",
                )
        if instructions := self.prose(i, end, f"{base}.instructions"):
            step["instructions"] = instructions
        return step

    def field(self, step: dict[str, Any], base: str, i: int, item: re.Match) -> int:
        """Reads one `- key: value` item (with its fenced block or parameters); the index after it."""
        written, value, line = item["key"], _unquote(item["value"] or ""), i + 1
        alias = FIELD_BY_KEY.get(_key(written))
        i += 1
        if alias is None:
            self.error(line, base, f"unknown field `{written}`" + _suggest(written, list(STEP_FIELDS)))
            return i
        where = f"{base}.{alias}"
        if alias in step:
            self.error(line, where, f"`{written}` is given twice (first on line {self.lines[where]})")
            return i
        self.lines[where] = line
        if alias == "action":
            params: dict[str, str] = {}
            while i < len(self.rows) and (param := PARAM.match(self.rows[i])):
                key = f"{where}.params.{param['key']}"
                if param["key"] in params:
                    self.error(i + 1, key, "parameter given twice")
                params[param["key"]] = _unquote(param["value"] or "")
                self.lines[key] = i + 1
                i += 1
            step[alias] = {"type": value} | ({"params": params} if params else {})
            return i
        if i < len(self.rows) and PARAM.match(self.rows[i]):
            self.error(i + 1, where, "only `- action:` takes nested parameters")
        if not value and alias in ("promql", "command"):
            value, i = self.fenced_value(i)
        if not value:
            self.error(line, where, f"`{written}` has no value (multi-line: a fenced code block on the next line)")
            return i
        if alias == "approvalRequired":
            choice = " ".join(value.lower().split())
            if choice not in APPROVAL:
                self.error(line, where, f"approval is `required` or `not required`, not {value!r}")
            step[alias] = APPROVAL.get(choice)
        elif alias == "timeoutSeconds":
            step[alias] = parse_duration(value)
            if step[alias] is None:
                self.error(line, where, f"{value!r} is not a duration such as 90s, 10m or 1h30m")
        elif alias == "delivery":
            step[alias] = DELIVERY.get(re.sub(r"[\s_-]", "", value.lower()), value)
        else:
            step[alias] = value.lower() if alias == "automation" else value
        return i

    def fenced_value(self, i: int) -> tuple[str, int]:
        """A multi-line query or command: the fenced block right after its empty `- promql:` item."""
        opener = FENCE.match(self.rows[i]) if i < len(self.rows) else None
        if opener is None:
            return "", i
        indent, fence = len(opener["indent"]), opener["fence"]
        for j in range(i + 1, len(self.rows)):
            if _closes(self.rows[j], fence):
                body = [r[indent:] if r[:indent].isspace() else r.lstrip() for r in self.rows[i + 1 : j]]
                return "\n".join(body).strip(), j + 1
        return "", len(self.rows)  # fenced_rows reports the unclosed block

    def schema_error(self, err: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        """A pydantic error, placed on the line of the field (or step) it is about."""
        path, message = _describe(err)
        if path == "steps" and (cycle := re.search(r"\(([^()]*)\)\s*$", message)):
            path = self.closing_edge(cycle[1].split(" -> "), steps)
        if path == "source":
            path, message = None, f"the file is too long for one SOP object: {message}"
        self.error(_line(self.lines, path) or 1, path, message)

    def closing_edge(self, cycle: list[str], steps: list[dict[str, Any]]) -> str:
        """The branch that closes a cycle: the field to fix."""
        src, dst = cycle[-2], cycle[-1]
        n = next(i for i, s in enumerate(steps) if s.get("id") == src)
        branch = next((a for a in ("onSuccess", "onFailure") if steps[n].get(a) == dst), None)
        return f"steps[{n}].{branch}" if branch else f"steps[{n}]"


# --- lint ---------------------------------------------------------------------------------------


def _reachable(start: str | None, succ: dict[str, tuple[str | None, str | None]]) -> set[str]:
    seen: set[str] = set()
    todo = [start] if start else []
    while todo:
        node = todo.pop()
        if node not in seen and node in succ:
            seen.add(node)
            todo += [t for t in succ[node] if t]
    return seen


def has_comparison(promql: str) -> bool:
    """Whether a query compares (a threshold) outside its strings and label matchers."""
    q = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', promql)
    q = re.sub(r"#.*", "", q)
    q = re.sub(r"\{[^{}]*\}", "", q)
    return re.search(r"==|!=|>=|<=|>|<", q) is not None


def lint(spec: SOPSpec, path: str | Path | None = None, lines: dict[str, int] | None = None) -> list[LintIssue]:
    """Warnings about a valid SOP: deterministic rules, each documented in sop-library/README.md."""
    lines = lines or {}
    path = str(path) if path is not None else None
    out: list[LintIssue] = []

    def warn(rule: str, where: str | None, message: str) -> None:
        out.append(LintIssue(path, _line(lines, where), where, message, IssueSeverity.WARNING, rule))

    steps = spec.steps
    succ = {s.id: next_steps(steps, i) for i, s in enumerate(steps)}
    kinds = {s.id: s.type for s in steps}
    reachable = _reachable(steps[0].id, succ)
    for i, s in enumerate(steps):
        base = f"steps[{i}]"
        if s.id not in reachable:
            warn("unreachable-step", base, f"no path from the first step leads to {s.id!r}")
        if s.type == StepType.ACTION:
            after = _reachable(succ[s.id][0], succ)
            if not any(kinds[t] == StepType.CHECK for t in after):
                warn("unverified-action", base, "no check follows this action's success to verify that it worked")
            if s.automation == Automation.AUTO and s.approval_required is not True:
                warn("auto-without-approval", f"{base}.automation", "runs automatically without `approval: required`")
        if s.type == StepType.CHECK and not (s.promql or s.command):
            warn("check-without-query", base, "a check needs a `promql:` or a `command:` to run")
        if s.type == StepType.DECISION and not (s.on_success and s.on_failure):
            warn(
                "decision-without-branches",
                base,
                "a decision names where both answers lead (`on success`, `on failure`)",
            )
        if s.promql and not has_comparison(s.promql):
            warn(
                "promql-without-threshold",
                f"{base}.promql",
                "the query has no comparison (> 0.9, == 0): it passes whenever the series exist",
            )
    if not any(s.type == StepType.ESCALATE for s in steps):
        warn("no-escalation-step", "steps", "no escalate step: the runbook never hands over to a human")
    if spec.escalation is None:
        warn("no-escalation-policy", "escalation", "no escalation policy (afterMinutes, contacts)")
    return out


# --- rendering ----------------------------------------------------------------------------------


def _tidy(spec: SOPSpec) -> SOPSpec:
    """The spec as markdown can hold it: no source, text without surrounding blank space."""

    def text(value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    steps = [
        s.model_copy(update={k: text(getattr(s, k)) for k in ("instructions", "promql", "command")}) for s in spec.steps
    ]
    return spec.model_copy(update={"source": None, "description": text(spec.description), "steps": steps})


def _code(value: str, info: str) -> list[str]:
    if "\n" not in value and "`" not in value:
        return [f" `{value}`"]
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", value)), default=0))
    return ["", f"  {fence}{info}", *(f"  {r}" if r else "" for r in value.split("\n")), f"  {fence}"]


def _fields(s: SOPStep) -> list[str]:
    out = []
    for alias, key, info in (("promql", "promql", "promql"), ("command", "command", "sh")):
        if value := getattr(s, alias):
            first, *rest = _code(value, info)
            out += [f"- {key}:{first}", *rest]
    if s.action is not None:
        out.append(f"- action: {s.action.type}")
        out += [f"  - {k}: {v}" for k, v in s.action.params.items()]
    if s.automation is not None:
        out.append(f"- automation: {s.automation}")
    if s.approval_required is not None:
        out.append(f"- approval: {'required' if s.approval_required else 'not required'}")
    if s.timeout_seconds is not None:
        out.append(f"- timeout: {format_duration(s.timeout_seconds)}")
    if s.delivery is not None:
        out.append(f"- delivery: {s.delivery}")
    for value, key in ((s.on_success, "on success"), (s.on_failure, "on failure")):
        if value is not None:
            out.append(f"- {key}: {value}")
    return out


def render(name: str, spec: SOPSpec) -> str:
    """The runbook as markdown, such that parse(render(name, spec)) gives the spec back (less its
    source). Raises ValueError for a spec that markdown cannot carry exactly, e.g. instructions
    holding a `## ` line."""
    spec = _tidy(spec)
    front: dict[str, Any] = {"name": name}
    for key in ("owner", "version"):
        if (value := getattr(spec, key)) is not None:
            front[key] = value
    for key in ("match", "escalation"):
        if (value := getattr(spec, key)) is not None:
            front[key] = {k: v for k, v in value.wire().items() if v not in ([], {})}
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=120, default_flow_style=None)
    out = ["---", header.rstrip("\n"), "---", "", f"# {spec.title}", ""]
    if spec.description:
        out += [spec.description, ""]
    for s in spec.steps:
        out += [f"## {s.type}: {s.id} — {s.title}", ""]
        if fields := _fields(s):
            out += [*fields, ""]
        if s.instructions:
            out += [s.instructions, ""]
    text = "\n".join(out)
    try:
        back = parse(text, f"{name}.md").spec
    except SOPFileError as err:
        raise ValueError(f"{name}: markdown cannot carry this SOP exactly: {err.issues[0]}") from None
    if _tidy(back) != spec:
        raise ValueError(f"{name}: markdown cannot carry this SOP exactly (its text holds markdown structure)")
    return text
