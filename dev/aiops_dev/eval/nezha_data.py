"""Nezha's recorded data as the operator would read it: faults, per-pod metrics, and spans and log lines
served through the same TraceSource / LogSource interface as the Tempo, Jaeger and Loki clients.

Layout per day (`<system folder>/<YYYY-MM-DD>/`): `fault_list.json` (per hour: inject_time in UTC,
inject_pod, inject_type), `metric/<pod>_metric.csv` (one-minute rows, `Time` column), `trace/HH_MM_trace.csv.gz`
(TraceID, SpanID, ParentID (`root` for none), PodName, OperationName, start/end ns, Duration in µs) and
`log/HH_MM_log.csv.gz` (TimeUnixNano, PodName, TraceID, SpanID, Log: the container's JSON log line).
`inject_timestamp` in the fault lists is on another clock (hours off): only `inject_time` is read.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiops.clusters.telemetry import MAX_LOG_LINES, MAX_SPANS, Fetched, LogLine, Span
from aiops.diagnosis.rca.metrics import workload_of as service_of  # a pod counts for its workload


@dataclass(frozen=True)
class System:
    """One recorded system: its folder under the data root, namespace and the service its users call."""

    name: str
    folder: str
    entry: str


SYSTEMS = {
    s.name: s
    for s in (
        System("online-boutique", "nezha-online-boutique", "frontend"),
        System("train-ticket", "nezha-train-ticket", "ts-ui-dashboard"),
    )
}


@dataclass(frozen=True)
class Fault:
    day: str
    at: int  # unix seconds (inject_time, UTC)
    pod: str
    kind: str

    @property
    def service(self) -> str:
        return service_of(self.pod)


@dataclass
class PodSeries:
    pod: str
    times: list[int] = field(default_factory=list)  # unix seconds, whole minutes, ascending
    columns: dict[str, list[float]] = field(default_factory=dict)


def system_root(data: Path, system: System) -> Path:
    for candidate in (data / system.folder, data):
        if any(candidate.glob("*/fault_list.json")):
            return candidate
    raise SystemExit(f"{data}: no {system.folder}/*/fault_list.json (nor */fault_list.json)")


def unix_of(time_column: str) -> int:
    """`2022-08-22 03:51:19.607158889 +0000 UTC m=+0.11`: the wall-clock part, UTC, floored to the minute
    so that pods sampled a few milliseconds apart share a row."""
    t = datetime.strptime(time_column[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(t.timestamp()) // 60 * 60


def days(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/fault_list.json"))


def faults(root: Path) -> list[Fault]:
    out = []
    for day in days(root):
        for entries in json.loads((day / "fault_list.json").read_text()).values():
            for f in entries:
                at = datetime.strptime(f["inject_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                out.append(Fault(day.name, int(at.timestamp()), f["inject_pod"], f["inject_type"]))
    return sorted(out, key=lambda f: f.at)


def pod_series(root: Path) -> list[PodSeries]:
    """Every pod's metric rows (files not named after a pod, such as a front-end summary, are skipped)."""
    pods = []
    for day in days(root):
        for path in sorted((day / "metric").glob("*_metric.csv")):
            series = PodSeries(path.name.removesuffix("_metric.csv"))
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    t = unix_of(row["Time"])
                    if series.times and t <= series.times[-1]:
                        continue  # a repeated minute
                    series.times.append(t)
                    for name, value in row.items():
                        if name not in ("Time", "TimeStamp", "PodName"):
                            series.columns.setdefault(name, []).append(float(value or 0))
            pods.append(series)
    return pods


def _rows(path: Path):
    with gzip.open(path, "rt", newline="") as f:
        yield from csv.DictReader(f)


def _spans(path: Path) -> list[Span]:
    spans = []
    for row in _rows(path):
        parent = row["ParentID"]
        spans.append(
            Span(
                trace_id=row["TraceID"],
                span_id=row["SpanID"],
                parent_id=None if parent in ("", "root") else parent,
                service=service_of(row["PodName"]),
                operation=row["OperationName"],
                start=int(row["StartTimeUnixNano"]) / 1e9,
                duration=float(row["Duration"]) / 1e6,
            )
        )
    return spans


def _message(raw: str) -> str:
    """The application's message: the container runtime's JSON wrapper (`log`) and, when the
    application logs JSON itself, its `message` field."""
    try:
        text = json.loads(raw).get("log", raw)
    except (ValueError, AttributeError):
        text = raw
    text = text.rstrip("\n")
    if text.startswith("{"):
        try:
            inner = json.loads(text)
            if isinstance(inner, dict) and isinstance(inner.get("message"), str):
                level = inner.get("severity") or inner.get("level") or ""
                return f"{level} {inner['message']}".strip()
        except ValueError:
            pass
    return text


def _logs(path: Path) -> list[LogLine]:
    return [
        LogLine(
            time=int(row["TimeUnixNano"]) / 1e9,
            service=service_of(row["PodName"]),
            message=_message(row["Log"]),
            trace_id=row.get("TraceID") or None,
            span_id=row.get("SpanID") or None,
            pod=row["PodName"],
        )
        for row in _rows(path)
    ]


class _Minutes:
    """The day folders' `HH_MM_<kind>.csv.gz` files, each read once, when a window first needs it (`ingest`,
    or a query). A file holds about the minute before its name and neighbours overlap, so an item another file
    already gave is dropped as the file is read; each file's items are kept in time order, and a query takes
    their slices of the window (a bisection each)."""

    SLACK_S = 120

    def __init__(self, root: Path, kind: str, read, key, time):
        self.files: list[tuple[int, Path]] = []
        for day in days(root):
            for path in (day / kind).glob(f"*_{kind}.csv.gz"):
                hh, mm = path.name.split("_")[:2]
                at = datetime.strptime(f"{day.name} {hh}:{mm}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
                self.files.append((int(at.timestamp()), path))
        self.files.sort()
        self.read, self.key, self.time = read, key, time
        self._read: dict[Path, tuple[list[float], list]] = {}  # file -> its items' times, its items
        self._seen: set = set()

    def _near(self, lo: float, hi: float) -> list[Path]:
        return [path for at, path in self.files if lo - self.SLACK_S <= at <= hi + self.SLACK_S]

    def ingest(self, start: datetime, end: datetime) -> None:
        for path in self._near(start.timestamp(), end.timestamp()):
            if path in self._read:
                continue
            kept = []
            for item in self.read(path):
                if (key := self.key(item)) not in self._seen:
                    self._seen.add(key)
                    kept.append(item)
            kept.sort(key=self.time)
            self._read[path] = ([self.time(item) for item in kept], kept)

    def between(self, start: datetime, end: datetime) -> list:
        self.ingest(start, end)
        lo, hi = start.timestamp(), end.timestamp()
        found = []
        for path in self._near(lo, hi):
            times, items = self._read[path]
            found += items[bisect.bisect_left(times, lo) : bisect.bisect_right(times, hi)]
        return sorted(found, key=self.time)


class FileTraceSource:
    """Recorded spans behind the TraceSource interface; one namespace holds them all."""

    name = "recorded-traces"

    def __init__(self, root: Path):
        self._minutes = _Minutes(root, "trace", _spans, lambda s: s.span_id, lambda s: s.start)
        self.ingest = self._minutes.ingest  # read the files of a window ahead of its queries, as Tempo would hold them

    def spans(self, namespace: str, start: datetime, end: datetime, limit: int = MAX_SPANS) -> Fetched[Span]:
        found = self._minutes.between(start, end)
        if len(found) > limit:
            return Fetched(found[-limit:], f"{self.name}: {len(found)} spans in the window, read the last {limit}")
        return Fetched(found)


class FileLogSource:
    """Recorded log lines behind the LogSource interface."""

    name = "recorded-logs"

    def __init__(self, root: Path):
        self._minutes = _Minutes(
            root, "log", _logs, lambda line: (line.time, line.pod, line.message), lambda line: line.time
        )
        self.ingest = self._minutes.ingest  # read the files of a window ahead of its queries, as Loki would hold them

    def lines(
        self, namespace: str, services: list[str] | None, start: datetime, end: datetime, limit: int = MAX_LOG_LINES
    ) -> Fetched[LogLine]:
        found = self._minutes.between(start, end)
        if services is not None:
            wanted = set(services)
            found = [line for line in found if line.service in wanted]
        if len(found) > limit:
            return Fetched(found[-limit:], f"{self.name}: {len(found)} lines in the window, read the last {limit}")
        return Fetched(found)
