"""Benchmark: the default anomaly detector's throughput and memory on one core.

    python tests/bench/bench_anomaly.py [--nab ../shared/eval/nab] [--points 1000000] [--big 10000000]

Prints points/s of `aiops.anomaly.combined` over the NAB files (each with its probationary period as
the learning period, as the evaluation runs it), over a synthetic series of --points points (noise, a
daily cycle, spikes, level shifts and missing values), and of a `StreamScorer` pushed one point at a
time; then the peak memory (tracemalloc: what numpy and Python allocate) of scoring --big points, beside
the input's own size. The process is pinned to one CPU; each timing is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from aiops.anomaly import StreamScorer, combined
from aiops_dev.eval.nab import load, probation_length

DEFAULT_NAB = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "nab"


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.arange(n, dtype=float) * 60.0
    values = 100 + 20 * np.sin(2 * np.pi * times / 86400) + rng.normal(0, 2, n)
    values[rng.integers(0, n, max(1, n // 10_000))] += 40  # spikes
    for at in rng.integers(0, n, max(1, n // 100_000)):  # level shifts
        values[at:] += rng.normal(0, 15)
    values[rng.integers(0, n, max(1, n // 1_000))] = np.nan
    return times, values


def best_seconds(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="NAB folder (combined_windows.json, data/)")
    parser.add_argument("--points", type=int, default=1_000_000, help="synthetic series length")
    parser.add_argument("--big", type=int, default=10_000_000, help="series length for peak memory (0: skip)")
    parser.add_argument("--stream", type=int, default=20_000, help="points pushed one at a time")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    if (args.nab / "combined_windows.json").is_file():
        files = load(args.nab)
        points = sum(len(f.values) for f in files)
        inputs = [(f.times.astype(np.int64).astype(float), f.values, probation_length(len(f.values))) for f in files]
        seconds = best_seconds(lambda: [combined((t, v), learning=p) for t, v, p in inputs], args.repeat)
        print(f"NAB: {len(files)} files, {points:,} points: {points / seconds:,.0f} points/s")
    else:
        print(f"NAB: no data under {args.nab}, skipped", file=sys.stderr)

    times, values = synthetic(args.points)
    seconds = best_seconds(lambda: combined((times, values)), args.repeat)
    print(f"synthetic: {args.points:,} points: {args.points / seconds:,.0f} points/s")

    def stream() -> None:
        scorer = StreamScorer()
        for t, v in zip(times[: args.stream].tolist(), values[: args.stream].tolist(), strict=True):
            scorer.push(t, v)

    seconds = best_seconds(stream, 1)
    print(f"StreamScorer: {args.stream:,} pushes: {args.stream / seconds:,.0f} points/s")

    if args.big:
        times, values = synthetic(args.big, seed=1)
        tracemalloc.start()
        started = time.perf_counter()
        result = combined((times, values))
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        flagged = int(np.count_nonzero(result.score >= 0.5))
        given = (times.nbytes + values.nbytes) / 2**20
        output = sum(a.nbytes for a in (result.score, result.novelty, result.likelihood)) / 2**20
        print(
            f"big: {args.big:,} points in {seconds:.1f} s ({args.big / seconds:,.0f} points/s), {flagged} flagged;"
            f" peak memory while scoring {peak / 2**20:,.0f} MiB (the input is {given:,.0f} MiB,"
            f" the result's arrays {output:,.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
