"""Recall and false positives of `aiops.diagnosis.redaction` on the hand-written redaction corpus.

    python -m aiops_dev.eval.redaction [tests/data/redaction_corpus.yaml]

Each corpus entry is redacted by a fresh Redactor. Per kind:

- expected:   `expect` items of that kind (one per occurrence)
- redacted:   of those, values gone from the output and restored by a placeholder of that kind
- leaked:     values still visible in the output (expected - redacted - leaked were hidden under another kind)
- unexpected: redactions of that kind beyond the expected ones, i.e. over-redaction no `keep` string named
- false_pos:  `keep` strings (near misses, context) altered, put on the kind whose redaction overlapped them
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

from aiops.diagnosis.redaction import KINDS, PLACEHOLDER, Redactor

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "tests" / "data" / "redaction_corpus.yaml"
_COLUMNS = ("expected", "redacted", "leaked", "unexpected", "false_positives")


def evaluate(corpus_path: Path | str) -> dict:
    """Figures per kind and in total; raises ValueError on an entry whose values or keeps are not in its text."""
    entries = yaml.safe_load(Path(corpus_path).read_text())
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for entry in entries:
        text = entry["text"]
        missing = [s for s in [i["value"] for i in entry["expect"]] + entry.get("keep", []) if s not in text]
        if missing:
            raise ValueError(f"corpus entry {entry['name']!r}: not in its text: {missing}")
        redactor = Redactor()
        out = redactor.redact(text)
        found = [(m.group(1), redactor.restore(m.group())) for m in PLACEHOLDER.finditer(out)]
        expected: Counter[str] = Counter()
        for item in entry["expect"]:
            kind, value = item["kind"], item["value"]
            row = counts.setdefault(kind, Counter())  # a kind the redactor does not know still gets a row
            expected[kind] += 1
            row["expected"] += 1
            if value in out:
                row["leaked"] += 1
            elif any(k == kind and value in v for k, v in found):
                row["redacted"] += 1
        for kind, n in redactor.report().items():
            counts[kind]["unexpected"] += max(0, n - expected[kind])
        for keep in entry.get("keep", []):
            if keep not in out:
                counts[_culprit(text, keep, found)]["false_positives"] += 1
    total = sum(counts.values(), Counter())
    near_misses = sum(1 for e in entries if not e["expect"])
    return {
        "kinds": {kind: _row(c) for kind, c in counts.items()},
        "total": _row(total),
        "entries": len(entries),
        "near_misses": near_misses,
        "keep_strings": sum(len(e.get("keep", [])) for e in entries),
    }


def _row(c: Counter[str]) -> dict:
    row = {column: c[column] for column in _COLUMNS}
    row["recall"] = c["redacted"] / c["expected"] if c["expected"] else None
    return row


def _culprit(text: str, keep: str, found: list[tuple[str, str]]) -> str:
    # An altered keep string overlaps, in the input, one of the values that were replaced.
    keeps = [(m.start(), m.end()) for m in re.finditer(re.escape(keep), text)]
    return next(
        kind
        for kind, value in found
        for m in re.finditer(re.escape(value), text)
        if any(m.start() < end and start < m.end() for start, end in keeps)
    )


def _table(result: dict) -> str:
    header = (
        f"{'kind':<13} {'expected':>8} {'redacted':>8} {'recall':>6} {'leaked':>6} {'unexpected':>10} {'false_pos':>9}"
    )
    rule = "-" * len(header)

    def line(name: str, row: dict) -> str:
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        return (
            f"{name:<13} {row['expected']:>8} {row['redacted']:>8} {recall:>6} {row['leaked']:>6} "
            f"{row['unexpected']:>10} {row['false_positives']:>9}"
        )

    rows = [header, rule, *(line(kind, row) for kind, row in result["kinds"].items()), rule]
    rows.append(line("total", result["total"]))
    with_secrets = result["entries"] - result["near_misses"]
    rows.append(
        f"\ncorpus: {result['entries']} entries ({with_secrets} with secrets, {result['near_misses']} near misses), "
        f"{result['keep_strings']} keep strings"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_dev.eval.redaction", description=__doc__.splitlines()[0])
    parser.add_argument(
        "corpus", nargs="?", type=Path, default=DEFAULT_CORPUS, help="corpus YAML (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        parser.error(f"{args.corpus} is not a file")
    print(_table(evaluate(args.corpus)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
