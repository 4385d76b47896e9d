"""Log messages as tokens, with values of a recognisable shape replaced by `<*>`.

Template mining compares tokens position by position, so a value that differs from line to line
(an address, an id, a count) must become one token before the comparison, or every line would be
its own template. The classes below are shapes that are values wherever they appear, in any
system: URLs' hosts, e-mail addresses, timestamps, UUIDs, Kubernetes pod names, IP and MAC
addresses, host:port, drive-letter paths, durations and sizes, hex and decimal numbers. Words are
left alone: whether `root` in `user=root` is a value or part of the message is for the miner to
decide from how many values the position takes (see `logtemplates`), not for a rule here. So are
quoted strings, which hold a statement's own words as often as values (`probeType="Readiness"`).

Bad input is bounded: a message is cut to MAX_CHARS before any regex runs, and only its first
MAX_TOKENS tokens are kept, so a 1 MB line costs no more than a long one. Any `str` is accepted,
also one decoded from binary (NULs, U+FFFD, lone surrogates): those are ordinary characters here.
"""

from __future__ import annotations

import re

VARIABLE = "<*>"
MAX_CHARS = 4096
"""Characters of a message that are looked at; the rest is neither masked nor mined."""
MAX_TOKENS = 64
"""Tokens of a message that are mined; a longer message is mined by its first MAX_TOKENS."""

MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
# The alphabet of generated Kubernetes name suffixes (apimachinery's rand.SafeEncodeString).
_K8S = "[bcdfghjklmnpqrstvwxz2456789]"
_DNS_LABEL = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
# Not \b: the kubelet writes `pod=<name>_<namespace>(<uid>)`, and `_` is a word character.
_NAME_START, _NAME_END = r"(?<![-a-z0-9])", r"(?![-a-z0-9])"
_UNIT = r"(?:ns|us|µs|ms|s|sec|secs|m|min|mins|h|hr|hrs|d|days?|[kKMGTP]i?B|B|bytes?)"
# Units also written after a space (`16.0 KB`, `35 ms`): the unambiguous ones, not `s` or `m`.
_SPACED_UNIT = r"(?:ns|us|µs|ms|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|[kKMGTP]i?B|B|bytes?)"
# Applied in order, so that the specific shapes come before the catch-all for digits. Each pattern
# comes with a substring that any match contains ("" for none) and whether a match holds a digit,
# so that the regexes that cannot match a message are not run on it (most of the masking time).
_CLASSES = [
    # URLs: the authority (host, port, credentials); the path stays, only its digits are masked below.
    ("://", False, r"(?<=://)[^\s/\"'<>]+"),
    ("@", False, r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),  # e-mail addresses, user@host
    # Timestamps: ISO 8601; ctime and syslog (`Sun Jul 17 12:34:56 2005`); a clock time; a slashed date.
    (":", True, ISO.pattern),
    (
        ":",
        True,
        rf"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?(?:{'|'.join(MONTHS)}) +\d{{1,2}} +{_CLOCK}(?: +\d{{4}})?\b",
    ),
    (":", True, rf"(?<![\w:.]){_CLOCK}(?![\w:])"),
    ("", True, r"\b\d{1,4}[/-]\d{1,2}[/-]\d{1,4}\b"),
    ("-", True, r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    # Pods of Deployments (<name>-<pod-template-hash>-<5 chars>), then ReplicaSets (<name>-<hash>)
    # and pods of DaemonSets and Jobs (<name>-<5 chars>), whose suffix must hold a digit so that
    # ordinary hyphenated words stay.
    ("-", False, rf"{_NAME_START}{_DNS_LABEL}-{_K8S}{{6,10}}-{_K8S}{{5}}{_NAME_END}"),
    ("-", True, rf"{_NAME_START}{_DNS_LABEL}-(?=[a-z]*\d)(?:{_K8S}{{8,10}}|{_K8S}{{5}}){_NAME_END}"),
    (".", True, r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"),  # IPv4, with a port
    # IPv6 and MAC addresses: four or more colon-separated hex groups (a clock time has three).
    (":", False, r"(?<![\w:])[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){3,}(?![\w:])"),
    (":", True, r"(?<![\w.-])(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*:\d{1,5}(?![\w.])"),  # host.name:port
    # Drive-letter paths (`C:\...`). Unix paths keep their words, which often say what happened; their
    # digits go below.
    (":\\", False, r"(?<![\w\\])[A-Za-z]:\\[^\s\"']*"),
    # Durations and sizes, also compound (`1m20s`) or with a space (`16.0 KB`); hex numbers; long runs
    # that mix hex letters and digits (container ids, digests, trace ids).
    ("", True, rf"(?<![\w.])-?\d+(?:\.\d+)?(?:{_UNIT}(?:\d+(?:\.\d+)?{_UNIT})*(?![\w.])| {_SPACED_UNIT}\b)"),
    ("", True, r"\b0[xX][0-9a-fA-F]+\b"),
    ("", True, r"\b(?=[0-9]*[a-fA-F])(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b"),
    # Every remaining digit run, also inside tokens (`blk_-123`, `attempt_1445_0020`), so that ids
    # built from numbers collapse to one shape; but one or two digits after a letter are names
    # (`v1`, `k8s`, `amd64`, `eth0`). A minus sign only where it cannot be a separator.
    ("", True, r"(?:(?<![A-Za-z0-9])-)?(?:(?<![A-Za-z0-9])\d+|(?<=[A-Za-z])\d{3,})(?:[.,]\d+)*"),
]
_MASKS = [(needle, digit, re.compile(pattern)) for needle, digit, pattern in _CLASSES]
_DIGIT = re.compile(r"\d")
# A run of values with only separators between them is one value (`<*>:<*>`, `<*>.<*>`).
_RUN = re.compile(r"<\*>(?:[.:,/_-]*<\*>)+")


def mask(message: str) -> str:
    """The message (its first MAX_CHARS characters) with every value of a known shape replaced by `<*>`."""
    message = message[:MAX_CHARS]
    digits = _DIGIT.search(message) is not None
    for needle, digit, pattern in _MASKS:
        if needle in message and (digits or not digit):
            message = pattern.sub(VARIABLE, message)
    return _RUN.sub(VARIABLE, message) if VARIABLE in message else message


# A token is split after `=`, so that the value of `key=value` is a position of its own and the
# miner can tell a key with many values from a message that differs in its keys.
_KEY = re.compile(r"[^=]*=|[^=]+")


def tokens(message: str) -> tuple[tuple[str, ...], int]:
    """The masked message's first MAX_TOKENS tokens (none for a blank message), and which of them
    follow the previous token without a space (bit i set for token i), to write a template back."""
    words: list[str] = []
    glued = 0
    for chunk in mask(message).split(maxsplit=MAX_TOKENS)[:MAX_TOKENS]:
        if "=" in chunk:
            parts = _KEY.findall(chunk)
            glued |= ((1 << (len(parts) - 1)) - 1) << (len(words) + 1)
            words += parts
        else:
            words.append(chunk)
    return tuple(words[:MAX_TOKENS]), glued & ((1 << MAX_TOKENS) - 1)


def render(words: tuple[str, ...], glued: int) -> str:
    """Tokens written back as text: a space between two tokens unless the second is glued (see `tokens`)."""
    return "".join(word if i == 0 or glued >> i & 1 else f" {word}" for i, word in enumerate(words))
