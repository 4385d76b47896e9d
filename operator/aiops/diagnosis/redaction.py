"""Redaction of secrets and personal data before any text reaches a model.

`Redactor.redact` swaps each sensitive value for a stable placeholder such as `<EMAIL_1>`: the same
value gets the same placeholder for the life of the Redactor, so the model can still see that two log
lines talk about the same host or user. `restore` maps placeholders back, for showing the engineer the
diagnosis with the real values; the mapping itself never leaves the instance.

Kinds, applied in this order (most specific first, so a value is counted once under its most precise
kind: a JWT after `Bearer` is a JWT, a GitHub token in a URL is an API key):

- PRIVATE_KEY  PEM private key blocks, including JSON-escaped ones and blocks cut off before their END line
- JWT          `eyJ<header>.eyJ<payload>[.<signature>]` anywhere
- API_KEY      AWS access key ids (AKIA/ASIA) and secret keys (40 chars after an `aws_secret_access_key`-like
               key), GitHub, GitLab, Slack, OpenAI-style `sk-`, Google `AIza`, Stripe `sk_`/`rk_` keys
- TOKEN        credentials in `Authorization:` headers (Bearer, Basic, token) and other `Bearer <token>`s
- DSN_PASSWORD the password of a database/broker connection string: URL userinfo or `password=` query of
               postgres/mysql/mongodb/redis/amqp/... URLs, libpq `host=... password=...` strings and
               `;Password=...;` (ADO.NET, JDBC SQL Server) strings
- PASSWORD     the password of any other URL (`scheme://user:<PASSWORD_1>@host`); scheme, user and host stay
- SECRET       values of keys ending in password/passwd/passphrase/_pwd/secret/secret_key/api_key/access_key/
               token/dockerconfigjson/key_data (`key=v`, `key: v`, JSON `"key": "v"`, kubeconfig
               `client-key-data`), `--password v` flags, `curl -u user:v` and `mysql -pv`
- EMAIL        e-mail addresses (a domain with a dot and a letter TLD, so `nginx@sha256:...` is not one)
- IPV6         full and compressed forms with a decimal digit somewhere (so `Face::Bad`, a C++ scope, is not
               one), zone ids (`fe80::1%eth0`) and IPv4-mapped/embedded forms
- IPV4         dotted quads whose four octets are 0-255

Rules for the ambiguous cases:

- A dotted quad with valid octets is an IP even when it is really a 4-part version (`1.2.3.4`): the text
  cannot tell them apart and leaking an address is worse than hiding a version. A `v` (or any word
  character) in front, or a fifth part (`1.2.3.4.5`, OIDs), marks a version; invalid octets
  (`999.1.1.1`) are never an IP.
- Documentation and private ranges (192.0.2.0/24, 2001:db8::/32, 10/8, 127.0.0.1, ::1) are redacted
  like any other address: they are indistinguishable from real ones.
- The bare unspecified address `::` is left alone (it reveals nothing and `[::]:8080` is noise), as are
  hostnames, ports, MAC addresses, timestamps (`14:07:00`), UUIDs, digests and git SHAs. A Python slice
  such as `[::2]` is the address `::2` to us.
- Values that stand for a secret are not secrets: env references (`${X}`, `$(X)`, `$X`), templates
  (`{{ .Values.x }}`), masks (`***`, `<redacted>`, `[REDACTED]`), booleans/null, `kubectl describe`'s
  `16 bytes`, and placeholders, ours or another Redactor's.
- Unquoted values end at whitespace, quotes, `,;&<>` or a backslash, and leave out a last `)]}`; a
  password containing those is redacted up to that character only. Quoted values run to the closing quote.

Redaction is idempotent: no value starts with `<`, so placeholders are never redacted again, and redact()
repeats its passes until one changes nothing. restore(redact(text)) == text for any text: placeholder-shaped
strings already in the input are never minted by this instance.

Every pattern is compiled once, anchored on its left context so it starts at most once per run of
similar characters, and uses bounded or possessive repetition: redaction stays linear on hostile input
(1-2 s per MB of log on one core).
"""

from __future__ import annotations

import re
from collections import Counter

KINDS = (
    "PRIVATE_KEY",
    "JWT",
    "API_KEY",
    "TOKEN",
    "DSN_PASSWORD",
    "PASSWORD",
    "SECRET",
    "EMAIL",
    "IPV6",
    "IPV4",
)

# What redact() puts in place of a value; group 1 is the kind.
PLACEHOLDER = re.compile(rf"<({'|'.join(KINDS)})_[0-9]+>")

# Lookahead placed right before a value: fails on things that stand for a secret without being one.
_VALUE_END = r"(?![^\s\"',;&)\]}])"
_NOT_A_VALUE = (
    rf"(?!<|\[|\{{|\$[{{(A-Za-z_]|\*+{_VALUE_END}"
    rf"|(?i:true|false|null|none|nil|redacted|masked|filtered|bearer|basic){_VALUE_END}"
    r"|[0-9]+ bytes\b)"
)
# key = value separators: `=`, `:`, `=>`, `:=`, with optional quotes (also JSON-escaped ones) around the key.
_SEP = r"\\?[\"']?[ \t]*(?:=>|:=|[:=])[ \t]*"
# A closing bracket ends the value too (`{Token:abc}`, `map[password:abc]`): a password's last `)]}` is no leak.
_UNQUOTED = r"[^\s\"'`,;&<>\\]*[^\s\"'`,;&<>\\)\]}]"
_QUOTED = r"(?P<q>[\"'])" + _NOT_A_VALUE + r"(?P<secret>(?:(?!(?P=q))[^\\\n]|\\.)+)(?P=q)"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_DSN_SCHEME = (
    r"(?<![A-Za-z0-9+.-])(?:jdbc:)?"
    r"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|cockroachdb)"
    r"(?:\+[A-Za-z0-9]+)?://"
)
# Key names whose value is a secret: the keyword must end the key (`DB_PASSWORD`, not `password_reset_page`),
# whatever precedes it (`DB_`, `client_`, `spring.datasource.`) is part of the key, and a `/` right before it
# makes it a path (`/etc/passwd: denied`). Matching the keyword alone, not the whole key, halves the cost.
_SECRET_KEY = (
    r"(?<!/)(?:[Pp](?i:assword|asswd|assphrase)|[_.-](?i:pwd)|[Ss](?i:ecret(?:[_-]?key)?)"
    r"|[Aa](?i:pi[_-]?key|ccess[_-]?key)|[Tt](?i:oken)|[Dd](?i:ockerconfigjson)|[Kk](?i:ey[_-]data))"
)
# libpq strings have a handful of whitespace-separated pairs; the bound keeps a hostile run of pairs linear.
_LIBPQ_START = r"(?<![^\s'\"])"
_LIBPQ_PAIRS = r"(?:[ \t]+[A-Za-z_]+=[^\s'\"]*+){0,8}?[ \t]+"
# Authority parts are bounded so that a run of `scheme://` starts cannot make a scan quadratic.
_USERINFO = r"[^\s:@/?#<>\"']{0,256}+:"
_ARGS = r"(?:[ \t]++\S++){0,32}?[ \t]++"
_B64TOKEN = r"[A-Za-z0-9._~+/-]"


def _rule(kind: str, pattern: str) -> tuple[str, re.Pattern[str]]:
    # ASCII: `\w`, `\d` and `\s` must not widen to other scripts' letters and digits.
    return kind, re.compile(pattern, re.ASCII)


_RULES = (
    _rule(
        "PRIVATE_KEY",
        r"-----BEGIN (?P<label>(?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----"
        # Whitespace only inside the block: a key cut off before its END line keeps the line break after it.
        r"(?:[A-Za-z0-9+/=:,]|\\[nrt]|-(?!----)|\s+(?=[A-Za-z0-9+/=\\-]))*+"
        r"(?:-----END (?P=label)PRIVATE KEY(?: BLOCK)?-----)?",
    ),
    _rule("JWT", r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}+\.eyJ[A-Za-z0-9_-]*+(?:\.[A-Za-z0-9_-]++){0,3}"),
    _rule("API_KEY", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    _rule(
        "API_KEY",
        r"(?i:aws_?secret_?access_?key|secret_?access_?key)" + _SEP + r"\\?[\"']?"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
    ),
    _rule("API_KEY", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}+|github_pat_[A-Za-z0-9_]{22,}+)"),
    _rule("API_KEY", r"\bglpat-[A-Za-z0-9_-]{20,}+"),
    _rule("API_KEY", r"\bxox[abposr]-[A-Za-z0-9-]{10,}+"),
    # Plain `sk-` keys are mixed case with digits; Kubernetes names starting with `sk-` are lowercase.
    _rule(
        "API_KEY",
        r"(?<![\w-])sk-(?:(?:proj|svcacct|admin|ant)-[A-Za-z0-9_-]{20,}+"
        r"|(?=[a-z0-9]*+[A-Z])(?=[A-Za-z]*+[0-9])[A-Za-z0-9]{20,}+(?![\w-]))",
    ),
    _rule("API_KEY", r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
    _rule("API_KEY", r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}+"),
    _rule(
        "TOKEN",
        # `\r\n` escapes of a printed bytes object may stand right before the header name.
        r"(?:(?<![\w-])|(?<=\\[rn]))(?i:(?:proxy-)?authorization)" + _SEP + r"\\?[\"']?"
        r"(?:(?i:bearer|basic|token)[ \t]+|(?!(?i:bearer|basic|token|digest|negotiate)\b))"
        rf"(?P<secret>{_B64TOKEN}{{6,}}+=*+)",
    ),
    # Outside an Authorization header "Bearer" is also prose: the token must contain a digit.
    _rule("TOKEN", rf"(?<![\w-])(?i:bearer)[ \t]+(?P<secret>(?=[A-Za-z._~+/-]*+[0-9]){_B64TOKEN}{{8,}}+=*+)"),
    # Userinfo may contain a raw `@`: the greedy password backtracks to the last `@` of the authority.
    _rule("DSN_PASSWORD", _DSN_SCHEME + _USERINFO + _NOT_A_VALUE + r"(?P<secret>[^\s/?<>\"']{1,256})@"),
    _rule(
        "DSN_PASSWORD",
        _DSN_SCHEME
        + r"[^\s?#<>\"']{0,512}+\?(?:[^\s#<>\"']{0,512}?[&;])?(?i:password|pwd)="
        + _NOT_A_VALUE
        + r"(?P<secret>[^\s&;#<>\"']+)",
    ),
    _rule(
        "DSN_PASSWORD",
        _LIBPQ_START
        + r"(?i:host|hostaddr|dbname)=[^\s'\"]*+"
        + _LIBPQ_PAIRS
        + r"(?i:password)="
        + _NOT_A_VALUE
        + r"(?P<secret>[^\s'\"]++)",
    ),
    _rule(
        "DSN_PASSWORD",
        _LIBPQ_START
        + r"(?i:password)="
        + _NOT_A_VALUE
        + rf"(?P<secret>[^\s'\"]++)(?={_LIBPQ_PAIRS}(?i:host|hostaddr|dbname)=)",
    ),
    _rule("DSN_PASSWORD", r"(?<=;)[ \t]*(?i:password|pwd)[ \t]*=[ \t]*" + _NOT_A_VALUE + r"(?P<secret>[^;\s'\"]+)"),
    _rule(
        "PASSWORD",
        r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://"
        + _USERINFO
        + _NOT_A_VALUE
        + r"(?P<secret>[^\s/?<>\"']{1,256})@",
    ),
    _rule("SECRET", _SECRET_KEY + _SEP + _QUOTED),
    _rule("SECRET", _SECRET_KEY + _SEP + r"\\?[\"']?" + _NOT_A_VALUE + rf"(?P<secret>{_UNQUOTED})"),
    _rule(
        "SECRET",
        r"(?<!\S)--[A-Za-z0-9-]*?(?i:password|passwd|token|secret|api-key|apikey)[ \t]+(?!-)"
        + _NOT_A_VALUE
        + rf"(?P<secret>{_UNQUOTED})",
    ),
    # `-u user:pass` and `-ppass` are secrets only in a curl or mysql command line (`docker run -u 1000:1000`,
    # `-p 8080:80` are not); the command must come within 32 words before the flag.
    _rule(
        "SECRET",
        rf"\bcurl\b{_ARGS}(?:-u[ \t]*+|--user[ \t=]++)[\"']?[^\s:\"']++:" + _NOT_A_VALUE + r"(?P<secret>[^\s\"']++)",
    ),
    _rule("SECRET", r"\bmysql(?:dump|admin)?\b" + _ARGS + r"-p" + _NOT_A_VALUE + r"(?P<secret>[^\s\"']++)"),
    _rule(
        "EMAIL",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*+@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)*\.[A-Za-z]{2,}"
        r"(?![A-Za-z0-9-])",
    ),
    _rule(
        "IPV6",
        # A real address has a decimal digit somewhere; `Face::Bad` (a C++ scope) has none.
        r"(?<![\w:.])(?=[0-9A-Fa-f:]*[0-9])(?:"
        # Forms ending in an IPv4 address first, or the hex forms would stop at its first octet.
        rf"(?:{_H}:){{6}}{_IPV4}"
        rf"|(?:{_H}:){{1,5}}:{_IPV4}"
        rf"|::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_IPV4}"
        rf"|(?:{_H}:){{7}}{_H}"
        rf"|(?:{_H}:){{1,6}}:{_H}"
        rf"|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
        rf"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}"
        rf"|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}"
        rf"|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
        rf"|{_H}:(?::{_H}){{1,6}}"
        rf"|:(?::{_H}){{1,7}}"
        rf"|(?:{_H}:){{1,7}}:"
        r")(?:%[0-9A-Za-z_.~-]+)?(?![\w:]|\.[0-9])",
    ),
    _rule("IPV4", rf"(?<![\w.]){_IPV4}(?![\w]|\.[0-9])"),
)


class Redactor:
    """Replaces sensitive values by placeholders that are stable for the life of the instance."""

    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._minted: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        # Placeholder-shaped strings already present in inputs that we did not mint (text redacted
        # elsewhere): never minted here, so restore() cannot turn them into one of our values.
        self._foreign: set[str] = set()

    def redact(self, text: str) -> str:
        """`text` with every sensitive value replaced by its placeholder."""
        self._foreign.update(m.group() for m in PLACEHOLDER.finditer(text) if m.group() not in self._values)
        # Until nothing changes: a placeholder can expose a match that the value it replaced hid (`10.0.0.1::1`
        # becomes `<IPV4_1>::1`), and redacting the output must change nothing. Each pass replaces some text
        # that is not a placeholder yet (values never start with `<`), so this ends; usually after two passes.
        while True:
            before = text
            for kind, pattern in _RULES:
                text = pattern.sub(lambda m, kind=kind: self._replace(kind, m), text)
            if text == before:
                return text

    def restore(self, text: str) -> str:
        """`text` with this instance's placeholders replaced by the real values; others are left as they are."""
        # A value may hold a placeholder of an earlier rule (a JWT inside a quoted secret): restore it too.
        # It can only hold ones minted before it, so this ends.
        return PLACEHOLDER.sub(
            lambda m: self.restore(self._values[m.group()]) if m.group() in self._values else m.group(), text
        )

    def report(self) -> dict[str, int]:
        """Occurrences replaced so far, by kind, in KINDS order."""
        return {kind: self._counts[kind] for kind in KINDS if self._counts[kind]}

    def _replace(self, kind: str, match: re.Match[str]) -> str:
        group = "secret" if "secret" in match.re.groupindex else 0
        start, end = match.start(group) - match.start(), match.end(group) - match.start()
        whole = match.group()
        self._counts[kind] += 1
        return whole[:start] + self._placeholder(kind, match.group(group)) + whole[end:]

    def _placeholder(self, kind: str, value: str) -> str:
        placeholder = self._placeholders.get((kind, value))
        if placeholder is None:
            while placeholder is None or placeholder in self._foreign:
                self._minted[kind] += 1
                placeholder = f"<{kind}_{self._minted[kind]}>"
            self._placeholders[kind, value] = placeholder
            self._values[placeholder] = value
        return placeholder
