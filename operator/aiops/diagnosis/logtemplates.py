"""Pod logs as a few dozen templates: thousands of lines become `<*>` patterns with counts.

Lines are mined with drain3's Drain (a fixed-depth prefix tree over token count and leading
tokens, then a token-similarity match). Before mining, a leading timestamp/level prefix is cut
off so that lines group by what they say, and variable values (IPs, UUIDs, hex ids, pod names,
durations, numbers) are masked so that lines differing only in them share a template. The
configuration was tuned on the loghub samples; see `aiops_dev.eval.loghub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

OTHER = "<other>"
"""Template text of the bucket that holds the lines of the templates beyond `max_templates`."""


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


# Masks are named during mining, so that two values of one kind count as the same token in
# Drain's similarity, and rendered as `<*>` in the output. The `<:...:>` brackets keep the
# rendering from touching text such as `<html>` in the logs themselves.
_MASK_PREFIX, _MASK_SUFFIX = "<:", ":>"
_MASK = re.compile(r"<:[A-Z*]+:>")

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_CLOCK = r"\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"
# The alphabet of generated Kubernetes name suffixes (apimachinery's rand.SafeEncodeString).
_K8S = "[bcdfghjklmnpqrstvwxz2456789]"
_DNS_LABEL = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
# Not \b: the kubelet writes `pod=<name>_<namespace>(<uid>)`, and `_` is a word character.
_NAME_START, _NAME_END = r"(?<![-a-z0-9])", r"(?![-a-z0-9])"
_DURATION_UNIT = r"(?:ns|us|µs|ms|s|m|h)"
# Applied in order, so the specific shapes come before the catch-all for digits.
_MASKS = [
    # Timestamps inside messages: ISO 8601, ctime (`Sun Jul 17 12:34:56 2005`), a bare clock time.
    ("TIME", _ISO.pattern),
    ("TIME", rf"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?(?:{'|'.join(_MONTHS)}) +\d{{1,2}} +{_CLOCK}(?: +\d{{4}})?\b"),
    ("TIME", rf"\b{_CLOCK}\b"),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # Deployment pods (<name>-<pod-template-hash>-<5 chars>), then ReplicaSets (<name>-<hash>) and
    # DaemonSet/Job pods (<name>-<5 chars>), whose suffix must hold a digit so that ordinary
    # hyphenated words stay.
    ("POD", rf"{_NAME_START}{_DNS_LABEL}-{_K8S}{{6,10}}-{_K8S}{{5}}{_NAME_END}"),
    ("POD", rf"{_NAME_START}{_DNS_LABEL}-(?=[a-z]*\d)(?:{_K8S}{{8,10}}|{_K8S}{{5}}){_NAME_END}"),
    ("IP", r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"),
    # IPv6 and MAC addresses: four or more colon-separated hex groups (a clock time has three).
    ("ADDR", r"(?<![\w:])[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){3,}(?![\w:])"),
    ("DURATION", rf"(?<![\w.])\d+(?:\.\d+)?{_DURATION_UNIT}(?:\d+(?:\.\d+)?{_DURATION_UNIT})*(?![\w.])"),
    # Hex values share NUM with decimals: a hex field's value may happen to hold no letter
    # (`iar 00106570 dear 0246dd1c`), and both shapes must then give one token.
    ("NUM", r"\b0[xX][0-9a-fA-F]+\b"),
    # Container ids, digests, trace ids: long runs that mix hex letters and digits.
    ("NUM", r"\b(?=[0-9]*[a-f])(?=[a-f]*[0-9])[0-9a-f]{8,}\b"),
    # Every remaining digit run, also inside tokens (`blk_-123`, `appattempt_1445_0020`), so that
    # ids built from numbers collapse to one shape; but one or two digits after a letter are
    # names (`v1`, `k8s`, `amd64`). A minus sign only where it cannot be a separator.
    ("NUM", r"(?:(?<![A-Za-z0-9])-)?(?:(?<![A-Za-z0-9])\d+|(?<=[A-Za-z])\d{3,})(?:\.\d+)?"),
]
# Chosen on the loghub samples (aiops_dev.eval.loghub): sim_th in the middle of the plateau of mean
# grouping accuracy (0.65-0.775); depth 5 was best or tied among 3-7 at every sim_th tried.
_SIM_TH = 0.7
_DEPTH = 5


def _miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.drain_sim_th = _SIM_TH
    config.drain_depth = _DEPTH
    config.parametrize_numeric_tokens = True
    config.mask_prefix, config.mask_suffix = _MASK_PREFIX, _MASK_SUFFIX
    config.masking_instructions = [MaskingInstruction(pattern, name) for name, pattern in _MASKS]
    return TemplateMiner(config=config)


def _mine(contents: Iterable[str]) -> tuple[TemplateMiner, list[int]]:
    miner = _miner()
    return miner, [miner.add_log_message(content)["cluster_id"] for content in contents]


def cluster_ids(contents: Iterable[str]) -> list[int]:
    """The Drain cluster of each message (messages without timestamp/level prefix), in input order."""
    return _mine(contents)[1]


# klog header: severity, MMDD, time, thread id, file:line]
_KLOG = re.compile(r"[IWEF](?P<month>\d{2})(?P<day>\d{2}) (?P<time>\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+\d+ [^\s\]]+\]")
_SYSLOG = re.compile(rf"(?P<month>{'|'.join(_MONTHS)}) +(?P<day>\d{{1,2}}) (?P<time>\d{{2}}:\d{{2}}:\d{{2}})")
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
        if match := _ISO.match(rest):
            try:
                stamp = datetime.fromisoformat(match.group())
            except ValueError:
                break
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        elif match := _KLOG.match(rest) or _SYSLOG.match(rest):
            month = match["month"]
            stamp = _yearless(_MONTHS.get(month) or int(month), int(match["day"]), match["time"], reference)
        else:
            break
        seen = seen or stamp
        rest = rest[match.end() :]
    if seen is not None:
        rest = rest[_SEPARATORS.match(rest).end() :]
    if level := _LEVEL.match(rest):
        rest = rest[level.end() :]
    return seen, rest.strip()


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
    miner, ids = _mine(message for _, message in split)

    members: dict[int, list[int]] = {}
    for index, cluster in enumerate(ids):
        members.setdefault(cluster, []).append(index)
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
    result = [entry(_MASK.sub("<*>", miner.drain.id_to_cluster[cluster].get_template()), ix) for cluster, ix in kept]
    if rest := groups[len(kept) :]:
        result.append(entry(OTHER, sorted(i for _, ix in rest for i in ix)))
    return result
