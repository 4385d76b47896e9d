"""Pod logs as a few dozen templates: thousands of lines become `<*>` patterns with counts.

A leading timestamp/level prefix is cut off first, so that lines group by what they say; the rest
is tokenized with values of a recognisable shape masked (`logtokens`). Lines are then grouped the
way Brain does it (Yu et al., "Brain: Log Parsing with Bidirectional Parallel Tree", TSC 2023),
because its decisions rest on counts within the input rather than on a similarity threshold that
has to suit the log format (Drain's, tuned here before, carried over badly to systems it was not
tuned on):

1. lines are grouped by token count, and each (position, token) pair is counted within the group;
2. a line's longest common pattern is its largest set of tokens sharing one count (ties: the
   higher count): the words the line shares with the lines of its own statement. The line's
   tokens counted at least that often form its root; lines with the same root form a root group;
3. a position outside the root is a variable when the root group's lines hold DISTINCT_VALUES or
   more different tokens there, or at least two of which one holds a masked value; otherwise its
   token is part of the template, which splits the root group by it. A template must keep more
   words (masked values aside) than variables, as Drain's similarity threshold asks of a match:
   when it would not, the root was words that many statements share (a logger's name, a level),
   and the group is split by its variable with the fewest values and looked at again;
4. a template joins a more general one that covers it (equal but where the other has variables):
   lines whose variable happens to take a frequent value (`Invalid user user`), which put that
   value in their root, join the template of their statement.

Grouping is per call and offline: `cluster_ids` and `summarize` see all their lines at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiops.diagnosis.logtokens import ISO, MONTHS, VARIABLE, render, tokens

OTHER = "<other>"
"""Template text of the bucket that holds the lines of the templates beyond `max_templates`."""

DISTINCT_VALUES = 4
"""Different tokens at a position of a root group that make it a variable (Brain's threshold: its
authors set 2-6 per system; one value for all here, see `aiops_dev.eval.loghub`)."""


@dataclass(frozen=True)
class LogTemplate:
    """Lines sharing a template; indices point into the input, `example` is its first such line."""

    template: str
    count: int
    first_index: int
    last_index: int
    first_seen: datetime | None
    last_seen: datetime | None
    example: str


# A template is a tuple of tokens, with _VAR where the miner found a variable (a masked value in the
# input is the token `<*>`, which step 4 treats as a token to be generalised like any other).
_VAR = None
Template = tuple[str | None, ...]


def _root_count(counts: list[int]) -> int:
    """The count shared by the most tokens of a line (ties: the higher count)."""
    return max(Counter(counts).items(), key=lambda item: (item[1], item[0]), default=(0, 0))[0]


def _mine_group(lines: list[tuple[str, ...]]) -> list[Template]:
    """Templates of lines that have the same number of tokens (steps 2 and 3)."""
    counts = Counter(pair for words in lines for pair in enumerate(words))
    roots: dict[Template, list[int]] = {}
    for index, words in enumerate(lines):
        line_counts = [counts[pair] for pair in enumerate(words)]
        least = _root_count(line_counts)
        root = tuple(word if count >= least else _VAR for word, count in zip(words, line_counts, strict=True))
        roots.setdefault(root, []).append(index)
    templates: list[Template] = [()] * len(lines)
    for root, members in roots.items():
        open_positions = [position for position, word in enumerate(root) if word is _VAR]
        _settle(lines, members, open_positions, templates)
    return templates


def _settle(
    lines: list[tuple[str, ...]], members: list[int], open_positions: list[int], templates: list[Template]
) -> None:
    """Step 3 on a root group, whose `open_positions` are those outside its root; writes `templates`."""
    values = {position: {lines[i][position] for i in members} for position in open_positions}
    variable = {
        position
        for position, seen in values.items()
        if len(seen) >= DISTINCT_VALUES or (len(seen) > 1 and any(VARIABLE in value for value in seen))
    }
    words = sum(p not in variable and word != VARIABLE for p, word in enumerate(lines[members[0]]))
    if variable and len(variable) >= words:
        # No more words than variables: the root was words that many statements share (a logger's
        # name, a level), not a statement. Split by the variable with the fewest values, look again.
        position = min(variable, key=lambda p: (len(values[p]), p))
        rest = [p for p in open_positions if p != position]
        parts: dict[str, list[int]] = {}
        for i in members:
            parts.setdefault(lines[i][position], []).append(i)
        for part in parts.values():
            _settle(lines, part, rest, templates)
        return
    for i in members:
        templates[i] = tuple(_VAR if p in variable else word for p, word in enumerate(lines[i]))


def _merge(templates: Iterable[Template]) -> dict[Template, Template]:
    """Each template mapped to the template it joins (step 4): B joins the most specific A that covers
    it (A equals B except at positions where A has a variable; ties: the first), and then what A joins."""
    distinct = list(dict.fromkeys(templates))
    # Templates with a variable, each filed under the (position, word) pair of its that the fewest
    # templates share: B can only be covered by an A filed under one of B's own pairs, and the rarest
    # pair keeps the candidates few when many templates start alike.
    shared = Counter(pair for template in distinct for pair in enumerate(template))
    general: dict[tuple[int, str | None], list[tuple[Template, list[tuple[int, str | None]]]]] = {}
    for template in distinct:
        words = [(p, word) for p, word in enumerate(template) if word is not _VAR]
        if words and len(words) < len(template):
            general.setdefault(min(words, key=shared.__getitem__), []).append((template, words))
    parent: dict[Template, Template] = {}
    for template in distinct:
        covering = [
            candidate
            for pair in enumerate(template)
            for candidate, words in general.get(pair, ())
            if candidate != template and all(template[p] == word for p, word in words)
        ]
        if covering:
            parent[template] = min(covering, key=lambda candidate: candidate.count(_VAR))
    # A covering template has more variables than the one it covers, so following parents ends.
    joined = {}
    for template in distinct:
        top = template
        while top in parent:
            top = parent[top]
        joined[template] = top
    return joined


def _mine(contents: Iterable[str]) -> tuple[list[Template], list[int]]:
    """Each line's template (merged) and the glue of its tokens (see `logtokens.tokens`)."""
    split = [tokens(content) for content in contents]
    by_length: dict[int, list[int]] = {}
    for index, (words, _) in enumerate(split):
        by_length.setdefault(len(words), []).append(index)
    templates: list[Template] = [()] * len(split)
    for members in by_length.values():
        mined = _mine_group([split[i][0] for i in members])
        merged = _merge(mined)
        for i, template in zip(members, mined, strict=True):
            templates[i] = merged[template]
    return templates, [glued for _, glued in split]


def cluster_ids(contents: Iterable[str]) -> list[int]:
    """The template of each message (messages without timestamp/level prefix) as a number, in input
    order: equal numbers, same template; numbered in order of first appearance."""
    numbers: dict[Template, int] = {}
    return [numbers.setdefault(template, len(numbers)) for template in _mine(contents)[0]]


# klog header: severity, MMDD, time, thread id, file:line]
_KLOG = re.compile(r"[IWEF](?P<month>\d{2})(?P<day>\d{2}) (?P<time>\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+\d+ [^\s\]]+\]")
_SYSLOG = re.compile(rf"(?P<month>{'|'.join(MONTHS)}) +(?P<day>\d{{1,2}}) (?P<time>\d{{2}}:\d{{2}}:\d{{2}})")
# Upper case or bracketed only: a message may well begin with the word "error".
_LEVEL = re.compile(
    r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|PANIC|"
    r"\[(?i:trace|debug|info|notice|warn|warning|error|critical|fatal|panic)\]):?(?=\s|$)"
)
_SEPARATORS = re.compile(r"[\s|:-]*")


def _yearless(month: int, day: int, time: str, reference: datetime) -> datetime | None:
    # klog and syslog omit the year: take the latest year that does not put the line more than
    # a day after the reference moment (the usual syslog rule, right across New Year).
    try:
        stamp = datetime.fromisoformat(f"{reference.year}-{month:02d}-{day:02d}T{time}").replace(tzinfo=UTC)
    except ValueError:  # 29 February outside a leap year, or a malformed date
        return None
    return stamp.replace(year=stamp.year - 1) if stamp > reference + timedelta(days=1) else stamp


def _split_prefix(line: str, reference: datetime) -> tuple[datetime | None, str]:
    """The line's leading timestamp (UTC when it names no zone) and the message after the
    timestamp(s) and level. `kubectl logs --timestamps` puts an RFC 3339 stamp before the
    application's own, so a second stamp is stripped too; the first one found is kept."""
    seen: datetime | None = None
    rest = line
    for _ in range(2):
        rest = rest.lstrip()
        if match := ISO.match(rest):
            try:
                stamp = datetime.fromisoformat(match.group())
            except ValueError:
                break
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        elif match := _KLOG.match(rest) or _SYSLOG.match(rest):
            month = match["month"]
            stamp = _yearless(MONTHS.get(month) or int(month), int(match["day"]), match["time"], reference)
        else:
            break
        seen = seen or stamp
        rest = rest[match.end() :]
    if seen is not None:
        rest = rest[_SEPARATORS.match(rest).end() :]
    if level := _LEVEL.match(rest):
        rest = rest[level.end() :]
    return seen, rest.strip()


def _text(template: Template, glued: int) -> str:
    return render(tuple(VARIABLE if word is _VAR else word for word in template), glued)


def summarize(lines: list[str], max_templates: int = 40, *, reference: datetime | None = None) -> list[LogTemplate]:
    """Group log lines into templates, most frequent first (ties: first to appear).

    At most `max_templates` entries: when there are more templates, the last entry is `OTHER`,
    pooling the lines of all templates that did not make the cut, so that counts always add up
    to `len(lines)`. `first_seen`/`last_seen` are the earliest and latest leading timestamps of
    a template's lines (None when none has one). `reference` (timezone-aware) is when the logs were read
    (default: now); it supplies the year to klog and syslog timestamps, which have none.
    """
    if max_templates < 1:
        raise ValueError(f"max_templates must be at least 1, not {max_templates}")
    reference = reference or datetime.now(UTC)
    split = [_split_prefix(line, reference) for line in lines]
    stamps = [stamp for stamp, _ in split]
    templates, glue = _mine(message for _, message in split)

    members: dict[Template, list[int]] = {}
    for index, template in enumerate(templates):
        members.setdefault(template, []).append(index)
    # dicts keep insertion order, so a stable sort on count leaves ties in order of first appearance
    groups = sorted(members.items(), key=lambda item: -len(item[1]))

    def entry(template: str, indices: list[int]) -> LogTemplate:
        seen = [stamps[i] for i in indices if stamps[i] is not None]
        return LogTemplate(
            template=template,
            count=len(indices),
            first_index=indices[0],
            last_index=indices[-1],
            first_seen=min(seen, default=None),
            last_seen=max(seen, default=None),
            example=lines[indices[0]],
        )

    kept = groups if len(groups) <= max_templates else groups[: max_templates - 1]
    result = [entry(_text(template, glue[ix[0]]), ix) for template, ix in kept]
    if rest := groups[len(kept) :]:
        result.append(entry(OTHER, sorted(i for _, ix in rest for i in ix)))
    return result
