"""Backtest of `aiops.forecast` on real series, beside the seasonal naive baseline, in one run.

    python -m aiops_dev.eval.forecast ../shared/eval [--max-series N]     (aiops-dev eval forecast DATA)

Series: NAB's realTraffic and realAWSCloudwatch files (nab.load) and, from Nezha's recorded pods
(nezha_data.pod_series), each pod's CPU (millicores) and memory (MiB) per recorded day. Each is put on its
regular grid (aiops.forecast.series) and backtested with a rolling origin:
- horizon H: one day of points when the series spans 4 days or more, else a tenth of its points;
- ORIGINS origins at n - H, n - 2H, ...: at each the method sees only the points before it and forecasts H;
- MASE = the forecast's MAE over the H points / the in-sample MAE of the seasonal naive one-step forecast
  (lag m, m = a day of points when the history covers two days, else 1), averaged over origins;
- the baseline, seasonal naive with the same m, scored with the same scale; coverage = the share of the
  outcomes inside the 80% interval, per series and pooled over all points.
A series whose history is constant (scale 0) has no MASE and is listed as skipped. "equal" counts series where
the method and the baseline score the same (a flat stretch both forecast exactly): they count as not beaten.
Nothing here names a file or a series to the method; the figures are printed, the exit is 0 once it ran.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aiops.forecast import Forecast, TooShort, forecast, seasonal_naive
from aiops.forecast.model import DAY_S
from aiops.forecast.series import regular
from aiops_dev.eval import nab, nezha_data

ORIGINS = 5
LEVEL = 0.8
NAB_CATEGORIES = ("realTraffic", "realAWSCloudwatch")
NEZHA_COLUMNS = {"CpuUsage(m)": "cpu", "MemoryUsage(Mi)": "memory"}
TARGET_BEATEN = 0.8
TARGET_COVERAGE = (0.75, 0.85)


@dataclass(frozen=True)
class Series:
    source: str  # nab/realTraffic, nezha/train-ticket, ...
    name: str
    times: np.ndarray  # unix seconds
    values: np.ndarray


@dataclass
class Score:
    series: Series
    points: int
    horizon: int
    mase: float
    baseline: float
    covered: int
    outcomes: int
    method: str
    seconds: float

    @property
    def coverage(self) -> float:
        return self.covered / self.outcomes


def load(data: Path) -> Iterator[Series]:
    for f in nab.load(data):
        if f.category in NAB_CATEGORIES:
            yield Series(f"nab/{f.category}", f.name.split("/", 1)[1], f.times.astype("int64").astype(float), f.values)
    for system in nezha_data.SYSTEMS.values():
        try:
            root = nezha_data.system_root(data, system)
        except SystemExit as exc:
            print(f"{exc}: skipped", file=sys.stderr)
            continue
        for pod in nezha_data.pod_series(root):
            day = time.strftime("%Y-%m-%d", time.gmtime(pod.times[0])) if pod.times else "?"
            for column, short in NEZHA_COLUMNS.items():
                if column in pod.columns:
                    values = np.array(pod.columns[column])
                    yield Series(f"nezha/{system.name}", f"{day}/{pod.pod}/{short}", np.array(pod.times, float), values)


Method = Callable[[np.ndarray, np.ndarray, float], Forecast | TooShort]


def backtest(s: Series, method: Method = forecast) -> Score | str:
    """The series' Score, or why it has none."""
    grid = regular(s.times, s.values)
    y, n = grid.values, len(grid.values)
    day = grid.points_per(DAY_S)
    horizon = day if n * grid.step >= 4 * DAY_S else n // 10
    errors, baseline_errors, covered, outcomes, methods = [], [], 0, 0, []
    began = time.monotonic()
    for k in range(ORIGINS, 0, -1):
        cut = n - k * horizon
        train, actual = y[:cut], y[cut : cut + horizon]
        m = day if cut >= 2 * day else 1
        scale = float(np.mean(np.abs(train[m:] - train[:-m]))) if cut > m else 0.0
        if scale == 0.0:
            return f"history before origin {ORIGINS - k + 1} is constant: no MASE"
        f = method(grid.start + grid.step * np.arange(cut), train, horizon * grid.step)
        if isinstance(f, TooShort):
            return f.message
        mean, lower, upper = f.mean[:horizon], f.lower[:horizon], f.upper[:horizon]
        errors.append(float(np.mean(np.abs(actual - mean))) / scale)
        baseline_errors.append(float(np.mean(np.abs(actual - seasonal_naive(train, m, horizon)))) / scale)
        covered += int(np.sum((actual >= lower) & (actual <= upper)))
        outcomes += horizon
        methods.append(f.season or "none")
    chosen = max(set(methods), key=methods.count)
    return Score(
        s, n, horizon, statistics.mean(errors), statistics.mean(baseline_errors), covered, outcomes, chosen,
        time.monotonic() - began,
    )  # fmt: skip


def _equal(s: Score) -> bool:
    return math.isclose(s.mase, s.baseline, rel_tol=1e-6, abs_tol=1e-9)


def summary(scores: list[Score]) -> dict[str, float]:
    beaten = sum(s.mase < s.baseline for s in scores)
    return {
        "series": len(scores),
        "beaten": beaten,
        "equal": sum(_equal(s) for s in scores),
        "share": beaten / len(scores) if scores else 0.0,
        "mase": statistics.median(s.mase for s in scores) if scores else 0.0,
        "baseline": statistics.median(s.baseline for s in scores) if scores else 0.0,
        "coverage": sum(s.covered for s in scores) / max(1, sum(s.outcomes for s in scores)),
    }


def table(scores: list[Score], skipped: list[tuple[Series, str]]) -> str:
    lines = [f"{'series':64} {'points':>6} {'H':>4} {'season':>7} {'MASE':>7} {'snaive':>7} {'cover80':>7}"]
    for s in scores:
        mark = (
            ""
            if s.mase < s.baseline
            else "  (equal)"
            if math.isclose(s.mase, s.baseline, rel_tol=1e-6, abs_tol=1e-9)
            else "  (baseline better)"
        )
        lines.append(
            f"{(s.series.source + '/' + s.series.name)[:64]:64} {s.points:6d} {s.horizon:4d} {s.method:>7} "
            f"{s.mase:7.3f} {s.baseline:7.3f} {s.coverage:7.1%}{mark}"
        )
    for series, why in skipped:
        lines.append(f"{(series.source + '/' + series.name)[:64]:64} skipped: {why}")
    lines.append("")
    lines.append(
        f"{'source':24} {'series':>6} {'beats snaive':>13} {'equal':>5} {'median MASE':>11} {'snaive':>7} "
        f"{'cover80':>7}"
    )
    groups = {s.series.source for s in scores}
    for source in sorted(groups) + ["all"]:
        part = [s for s in scores if source in ("all", s.series.source)]
        t = summary(part)
        lines.append(
            f"{source:24} {t['series']:6d} {t['beaten']:6d} ({t['share']:4.0%}) {t['equal']:5d} {t['mase']:11.3f} "
            f"{t['baseline']:7.3f} "
            f"{t['coverage']:7.1%}"
        )
    t = summary(scores)
    low, high = TARGET_COVERAGE
    beats = "met" if t["share"] >= TARGET_BEATEN else "not met"
    covers = "met" if low <= t["coverage"] <= high else "not met"
    lines.append(
        f"target: beats seasonal naive on >= {TARGET_BEATEN:.0%} of series ({beats}), "
        f"80% interval coverage in {low:.0%}..{high:.0%} ({covers})"
    )
    return "\n".join(lines)


def evaluate(series: list[Series], method: Method = forecast) -> tuple[list[Score], list[tuple[Series, str]]]:
    scores, skipped = [], []
    for i, s in enumerate(series, 1):
        out = backtest(s, method)
        if isinstance(out, Score):
            scores.append(out)
            print(f"[{i}/{len(series)}] {s.source}/{s.name}: MASE {out.mase:.3f} vs {out.baseline:.3f}, "
                  f"coverage {out.coverage:.0%} ({out.seconds:.1f}s)", file=sys.stderr)  # fmt: skip
        else:
            skipped.append((s, out))
            print(f"[{i}/{len(series)}] {s.source}/{s.name}: skipped: {out}", file=sys.stderr)
    return scores, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiops-dev eval forecast", description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="../shared/eval (holds nab/ and nezha-*/)")
    parser.add_argument("--max-series", type=int, default=0, help="only the first N series (0: all)")
    args = parser.parse_args(argv)
    series = list(load(args.data))
    if args.max_series:
        series = series[: args.max_series]
    began = time.monotonic()
    scores, skipped = evaluate(series)
    print(table(scores, skipped))
    print(f"{len(series)} series in {time.monotonic() - began:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
