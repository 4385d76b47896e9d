"""Grouping accuracy of `aiops.diagnosis.logtemplates` on the loghub 2k samples, beside Drain's published figures.

    python -m aiops_dev.eval.loghub ../shared/eval/loghub

Each system folder holds `<System>_2k.log` and `<System>_2k.log_structured.csv` (the ground
truth: one EventId per line). Raw lines are split into header fields and Content with the
system's loghub log format, exactly as the loghub benchmark does, and our miner runs over
Content. Grouping accuracy is the benchmark's: a line is parsed correctly iff the lines of its
predicted cluster are exactly the lines sharing its ground-truth EventId.

Beside ours, in the same run, drain3 (logpai/Drain3, a dev dependency) with its default
configuration (sim_th 0.4, depth 4, numeric tokens parametrized, no masking instructions): a
baseline that, like ours, has no per-system settings. The published Drain figures had a regex list,
sim_th and depth chosen per system.

Generalisation: the 8 systems here are the dev set; the other 8 loghub systems are held out, are
measured elsewhere, and must not be read to tune (neither their logs nor their templates). One
configuration for every system; nothing in the miner names a system or carries a rule for one
format (a unit test checks the names). What was tuned on these 8, by mean and minimum grouping
accuracy, and what each choice is worth (switch it and re-run; the full table is in the change's
report):
- the method: Brain's longest-common-pattern grouping (see `aiops.diagnosis.logtemplates`) replaced
  drain3's Drain with sim_th 0.7 and depth 5, which had been picked on these 8 and scored 0.70 on
  the held-out 8 against Drain's published 0.84;
- DISTINCT_VALUES, Brain's threshold (its authors chose 2-6 per system): 2 -> 0.915, 3 -> 0.966,
  4 -> 0.991, 5 -> 0.976, 6 -> 0.976, 8 -> 0.928. 4 is kept, but only Linux tells 4 from 5-6
  (0.987 against 0.867: its `session opened/closed for user <*>` lines name exactly 4 users); the
  other seven are equal at 4 and 6 but Zookeeper (0.991, 0.995). Chosen leaving each system out in turn,
  the threshold is 4 for seven of them and 6 for Linux: 0.976 mean over the left-out systems;
- rules added after reading the errors on these 8, each general, each switched off to see its worth:
  a position that holds a masked value on some lines and something else on others is a variable
  (off: OpenSSH 0.752, mean 0.957); merging a template into a more general one (off: OpenSSH
  0.887); a template keeps more words than variables (off: HealthApp 0.869; `variables > words`
  0.989, `2 * variables >= words` 0.992); splitting tokens after `=` (off: Linux 0.867);
- tried and dropped: a position is a variable when every line of a small root group has its own
  value (mean 0.962); splitting also after `,` and `:` (no change); a dotted host name holding a
  number is one value (no change once the masked-value rule was in); leaving masked values and
  counts of 1 out of the longest common pattern (no change with the words-over-variables rule).
  The token classes are general shapes; taking out all but the digit runs costs Linux (0.532:
  timestamps inside its messages) and BGL (0.882); masking also digits after letters (`v1`) gives
  0.992, kept off for readable templates (`/api/v1/...`).
The words-over-variables rule came from the operator's own use rather than from loghub: rca.logs
mines 8-token keys behind a shared `INFO TraceID: SpanID:` prefix, and without the rule the miner
put the 193 distinct keys of three minutes of Nezha's Train Ticket logs into 8 templates (81 with
it; Drain had 103).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from aiops.diagnosis.logtemplates import cluster_ids

# Drain's grouping accuracy on the loghub 2k samples: J. Zhu, S. He, J. Liu, P. He, Q. Xie,
# Z. Zheng, M. R. Lyu, "Tools and Benchmarks for Automated Log Parsing", ICSE-SEIP 2019, Table III.
# Mean over all 16 systems: 0.865.
DRAIN_PUBLISHED: dict[str, float] = {
    "HDFS": 0.998,
    "Hadoop": 0.948,
    "Spark": 0.920,
    "Zookeeper": 0.967,
    "OpenStack": 0.733,
    "BGL": 0.963,
    "HPC": 0.887,
    "Thunderbird": 0.955,
    "Windows": 0.997,
    "Linux": 0.690,
    "Mac": 0.787,
    "Android": 0.911,
    "HealthApp": 0.780,
    "Apache": 1.000,
    "OpenSSH": 0.788,
    "Proxifier": 0.527,
}

# The log formats of the loghub benchmark (logpai/logparser, benchmark/*_benchmark.py), for the
# same 16 systems: literal text is a regex, `<Field>` a field, and Content is what the parser sees.
LOG_FORMATS: dict[str, str] = {
    "HDFS": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "Hadoop": r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    "Spark": "<Date> <Time> <Level> <Component>: <Content>",
    "Zookeeper": r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    "OpenStack": r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    "BGL": "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "HPC": "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    "Thunderbird": (
        r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>"
    ),
    "Windows": "<Date> <Time>, <Level>                  <Component>    <Content>",
    "Linux": r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    "Mac": r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
    "Android": "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
    "Apache": r"\[<Time>\] \[<Level>\] <Content>",
    "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    "Proxifier": r"\[<Time>\] <Program> - <Content>",
}


def _format_regex(log_format: str) -> re.Pattern[str]:
    # As logparser's generate_logformat_regex: runs of spaces match any whitespace, fields match lazily.
    parts = re.split(r"(<[^<>]+>)", log_format)
    regex = "".join(
        f"(?P<{part[1:-1]}>.*?)" if index % 2 else re.sub(" +", r"\\s+", part) for index, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


def grouping_accuracy(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Share of lines whose predicted cluster holds exactly the lines of their true group (loghub's metric)."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted")
    if not truth:
        raise ValueError("no lines")
    true_sizes: dict[Hashable, int] = {}
    for label in truth:
        true_sizes[label] = true_sizes.get(label, 0) + 1
    clusters: dict[Hashable, list[Hashable]] = {}
    for label, cluster in zip(truth, predicted, strict=True):
        clusters.setdefault(cluster, []).append(label)
    correct = sum(
        len(labels) for labels in clusters.values() if len(set(labels)) == 1 and true_sizes[labels[0]] == len(labels)
    )
    return correct / len(truth)


@dataclass(frozen=True)
class SystemResult:
    system: str
    lines: int
    content_mismatches: tuple[int, ...]  # line numbers (from 1) where our Content differs from the CSV's
    true_templates: int
    our_templates: int
    accuracy: float
    mining_seconds: float
    drain3_accuracy: float  # drain3's default configuration on the same Content
    drain3_seconds: float


def drain3_cluster_ids(contents: Sequence[str]) -> list[int]:
    """drain3's cluster of each message, with its default configuration (not a drain3.ini from the cwd)."""
    miner = TemplateMiner(config=TemplateMinerConfig())
    return [miner.add_log_message(content)["cluster_id"] for content in contents]


TIMING_RUNS = 3


def _timed(mine: Callable[[list[str]], list[int]], contents: list[str]) -> tuple[list[int], float]:
    """The clusters, and the fastest of TIMING_RUNS runs in seconds: other work on the machine only slows a run."""
    seconds = []
    for _ in range(TIMING_RUNS):
        started = time.perf_counter()
        clusters = mine(contents)
        seconds.append(time.perf_counter() - started)
    return clusters, min(seconds)


def evaluate_system(folder: Path) -> SystemResult:
    system = folder.name
    pattern = _format_regex(LOG_FORMATS[system])
    with open(folder / f"{system}_2k.log", encoding="utf-8", errors="replace") as log:
        raw = [line.strip() for line in log]
    with open(folder / f"{system}_2k.log_structured.csv", encoding="utf-8", newline="") as structured:
        rows = list(csv.DictReader(structured))
    if len(raw) != len(rows):
        raise ValueError(f"{system}: {len(raw)} log lines but {len(rows)} ground-truth rows")
    # A line the format does not fit is mined whole (and counted as a Content mismatch).
    contents = [match["Content"] if (match := pattern.match(line)) else line for line in raw]
    predicted, seconds = _timed(cluster_ids, contents)
    baseline, baseline_seconds = _timed(drain3_cluster_ids, contents)
    truth = [row["EventId"] for row in rows]
    return SystemResult(
        system=system,
        lines=len(raw),
        content_mismatches=tuple(
            number
            for number, (ours, row) in enumerate(zip(contents, rows, strict=True), start=1)
            if ours != row["Content"]
        ),
        true_templates=len(set(truth)),
        our_templates=len(set(predicted)),
        accuracy=grouping_accuracy(truth, predicted),
        mining_seconds=seconds,
        drain3_accuracy=grouping_accuracy(truth, baseline),
        drain3_seconds=baseline_seconds,
    )


def system_folders(data_dir: Path) -> list[Path]:
    """Folders holding a `<name>_2k.log` sample, except those of systems with no known log format (reported)."""
    folders = []
    for folder in sorted(p for p in data_dir.iterdir() if (p / f"{p.name}_2k.log").is_file()):
        if folder.name in LOG_FORMATS:
            folders.append(folder)
        else:
            print(f"{folder.name}: no loghub log format known, skipped", file=sys.stderr)
    return folders


def _table(results: list[SystemResult]) -> str:
    header = (
        f"{'system':<10} {'lines':>6} {'content=csv':>11} {'true tpl':>8} {'our tpl':>7} "
        f"{'accuracy':>8} {'drain3':>7} {'Drain pub.':>10} {'diff':>7}"
    )
    rule = "-" * len(header)
    rows = [header, rule]
    for r in results:
        published, matched = DRAIN_PUBLISHED[r.system], r.lines - len(r.content_mismatches)
        rows.append(
            f"{r.system:<10} {r.lines:>6} {matched:>11} {r.true_templates:>8} {r.our_templates:>7} "
            f"{r.accuracy:>8.3f} {r.drain3_accuracy:>7.3f} {published:>10.3f} {r.accuracy - published:>+7.3f}"
        )
    ours = sum(r.accuracy for r in results) / len(results)
    drain3 = sum(r.drain3_accuracy for r in results) / len(results)
    published = sum(DRAIN_PUBLISHED[r.system] for r in results) / len(results)
    mean = f"mean ({len(results)} systems)"
    rows += [
        rule,
        f"{mean:<46} {ours:>8.3f} {drain3:>7.3f} {published:>10.3f} {ours - published:>+7.3f}",
        "drain3: its default configuration; Drain pub.: Zhu et al. 2019, settings chosen per system; diff: ours - pub.",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_dev.eval.loghub", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder of loghub system folders, e.g. ../shared/eval/loghub")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir():
        parser.error(f"{args.data_dir} is not a folder")
    results = []
    for folder in system_folders(args.data_dir):
        print(f"{folder.name}: mining...", file=sys.stderr)
        result = evaluate_system(folder)
        if result.content_mismatches:
            shown = ", ".join(map(str, result.content_mismatches[:10]))
            print(f"{folder.name}: Content differs from the CSV on lines {shown}", file=sys.stderr)
        results.append(result)
    if not results:
        print(f"no loghub system folders in {args.data_dir}", file=sys.stderr)
        return 1
    print(_table(results))
    lines = sum(r.lines for r in results)
    seconds = sum(r.mining_seconds for r in results)
    baseline = sum(r.drain3_seconds for r in results)
    print(
        f"\nminer throughput: {lines / seconds:,.0f} lines/s ({lines} lines in {seconds:.2f} s, masking included; "
        f"per system the fastest of {TIMING_RUNS} runs)"
    )
    print(f"drain3 throughput: {lines / baseline:,.0f} lines/s ({lines} lines in {baseline:.2f} s, the same way)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
