"""Log lines -> per-service scores: error lines, and error templates never seen before.

Messages are reduced to a template key (ids and numbers masked, a run of masked values one <*>, the
first MAX_TOKENS tokens),
then grouped by `logtemplates` (the same miner as the log evidence), each distinct key mined once. Per service,
baseline against incident:

- errors: the surprise of error lines per minute rising (stats.rise), a line being an error when it
  says so (ERROR, Exception, FATAL, ... as a word);
- novel:  the surprise of error lines whose template the service did not log in the baseline. Only error
  lines: a new info line mostly means a request the baseline did not happen to hold (the users' mix), and on
  the evaluation's dev data such lines from a rarely used service outranked the failing one.

Error lines that echo a callee's (`echoes`: joined to the trace by span id, a request below theirs logged an
error too) are left out by the caller (analyzers/services.py): the failure is the callee's.

The baseline is its typical stretch (stats.typical_counts) when it holds MIN_BLOCKS stretches as long as the
incident: the median count of error lines per stretch, and a template counts as logged when the median
stretch holds it. An earlier incident inside the baseline (in the evaluation's dev data, faults 4 to 9 minutes
apart, often on the same service) would otherwise pass for normal and hide the next one.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from aiops.clusters.telemetry import LogLine
from aiops.diagnosis import logtemplates
from aiops.diagnosis.rca import stats
from aiops.diagnosis.rca.spans import Finding, Scores

MAX_TOKENS = 8  # a statement's identity sits at its start; long variable tails would split it
MIN_BLOCKS = 3  # baseline stretches as long as the incident, needed for a typical one (a median)
ERROR = re.compile(r"\b(?:ERROR|Error|error|Exception|exception|FATAL|Fatal|fatal|SEVERE|Severe|PANIC|panic)\b")
# UUIDs, long hex ids, numbers; then a run of masked values (a list) is one.
_VALUE = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b|\b[0-9a-fA-F]{16,}\b|\d+(?:\.\d+)?"
)
_RUN = re.compile(r"<\*>(?:[\s,;:=|/\-]*<\*>)+")


def key(message: str, ids: tuple[str | None, ...] = ()) -> str:
    """The template key of a message: its own trace and span ids taken out (they say where it was logged,
    not what), values masked, the first MAX_TOKENS tokens."""
    for value in ids:
        if value:
            message = message.replace(value, "")
    words = message.split(maxsplit=4 * MAX_TOKENS)[: 4 * MAX_TOKENS]  # enough words for MAX_TOKENS after masking
    return " ".join(_RUN.sub("<*>", _VALUE.sub("<*>", " ".join(words))).split()[:MAX_TOKENS])


def templates(lines: Sequence[LogLine]) -> list[int]:
    """The template id of each line (equal ids: same template)."""
    keys = [key(line.message, (line.trace_id, line.span_id)) for line in lines]
    distinct = list(dict.fromkeys(keys))
    ids = dict(zip(distinct, logtemplates.cluster_ids(distinct), strict=True))
    return [ids[k] for k in keys]


@functools.lru_cache(maxsize=65536)
def _is_error(message: str) -> bool:
    return ERROR.search(message) is not None


def echoes(lines: Sequence[LogLine], request: Sequence[int | None], parent: dict[int, int | None]) -> set[int]:
    """The error lines (indices) that echo a callee's: their request (`request`, spans.joined) has, below it in
    the same trace (`parent`: request -> its caller's request), a request that logged an error too. A caller
    logs the failure its callee handed it; counted as the caller's own, the same failure would blame both. A
    line that names no span of the trace stays its service's."""
    failing = {r for line, r in zip(lines, request, strict=True) if r is not None and _is_error(line.message)}
    above: set[int] = set()
    for r in failing:
        p = parent.get(r)
        while p is not None and p not in above:
            above.add(p)
            p = parent.get(p)
    return {i for i, (line, r) in enumerate(zip(lines, request, strict=True)) if r in above and _is_error(line.message)}


def scores(
    lines: Sequence[LogLine],
    split: float,
    base_minutes: float,
    incident_minutes: float,
    ids: Sequence[int] | None = None,
) -> Scores:
    """Scores of the lines before `split` (unix s, the baseline) against those from it on; `ids`: their templates."""
    ids = templates(lines) if ids is None else ids
    errors: dict[str, Counter] = defaultdict(Counter)  # service -> {"base": n, "now": n}
    novel: Counter = Counter()
    example: dict[str, str] = {}
    error_example: dict[str, str] = {}
    block_s = max(incident_minutes, 1.0) * 60
    blocks = int((split - min((line.time for line in lines), default=split)) // block_s)
    if blocks >= MIN_BLOCKS:  # the baseline's typical stretch, not its sum: it may hold an earlier incident
        base = [(line, tid) for line, tid in zip(lines, ids, strict=True) if line.time < split]
        per_block = stats.typical_counts(((ln.service, ln.time) for ln, _ in base if _is_error(ln.message)),
                                         split, blocks, block_s)  # fmt: skip
        for service, m in per_block.items():
            errors[service]["base"] = round(m * blocks)
        typical = stats.typical_counts((((ln.service, tid), ln.time) for ln, tid in base), split, blocks, block_s)
        seen = {key for key, m in typical.items() if m > 0}
        base_minutes = blocks * block_s / 60
    else:
        seen = {(line.service, tid) for line, tid in zip(lines, ids, strict=True) if line.time < split}
        for line in lines:
            if line.time < split and _is_error(line.message):
                errors[line.service]["base"] += 1
    for line, tid in zip(lines, ids, strict=True):
        if line.time < split or not _is_error(line.message):
            continue
        errors[line.service]["now"] += 1
        error_example.setdefault(line.service, line.message)
        if (line.service, tid) not in seen:
            novel[line.service] += 1
            example.setdefault(line.service, line.message)
    result: Scores = {"errors": {}, "novel": {}}
    for service, counts in errors.items():
        surprise = stats.rise(counts["base"], counts["now"], base_minutes, incident_minutes)
        if surprise > 0:
            b, n = counts["base"] / max(base_minutes, 1e-9), counts["now"] / max(incident_minutes, 1e-9)
            words = f"error lines {b:.1f}/min -> {n:.1f}/min, e.g. {error_example.get(service, '')[:300]!r}"
            result["errors"][service] = Finding(surprise, words)
    for service, n in novel.items():
        rate = n / max(incident_minutes, 1e-9)
        words = f"{rate:.1f}/min error lines of templates not seen before, e.g. {example[service][:300]!r}"
        result["novel"][service] = Finding(stats.rise(0, n, base_minutes, incident_minutes), words)
    return result
