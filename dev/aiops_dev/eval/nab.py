"""NAB (Numenta Anomaly Benchmark) score of `aiops.anomaly`, beside NAB's published scoreboard.

    python -m aiops_dev.eval.nab ../shared/eval        (or ../shared/eval/nab)

The scoring follows NAB v1.1 (numenta/NAB nab/sweeper.py, optimizer.py, runner.py) step for step:
- Each point of a file gets a sweep score. Inside an anomaly window [l, r] (width w = r - l + 1) point i
  gets A_TP x S(-(r - i + 1) / w) / S(-1) (so a detection at the window's first point earns exactly
  A_TP), with S(x) = 2 / (1 + exp(5x)) - 1, the scaled sigmoid (S(x) = -1 for x >= 3). Outside windows
  a point gets A_FP x S(|i - r'| / (w' - 1)) after the preceding window [l', r'], and -A_FP before any.
- The probationary period, the first min(floor(0.15 n), 750) points of a file, is ignored.
- At a threshold, a point is a detection when its anomaly score >= the threshold. A file's score is
  the sum over its windows of the best (earliest) detection's sweep score, or -A_FN for a window with
  none, plus the sweep scores of every detection outside windows.
- The threshold is swept over every distinct anomaly score of every file together, per detector and
  profile, and the one giving the highest corpus total is kept (ties: the highest threshold).
- Normalised score = 100 x (raw - null) / (perfect - null), where null is the null detector's raw score
  (nothing detected: -A_FN per window) and perfect = A_TP x the number of windows.
Per category, the same corpus-wide threshold is used and the category's own null and perfect scores.

Validation baselines scored in the same run: the null detector (constant 0.5: must score 0), an oracle
that flags the first point of every window (must score 100) and NAB's Windowed Gaussian, re-implemented
(window 6400 points, stats refreshed every 100, score = 1 - the normal tail probability of the value).

Our detector is `aiops.anomaly.combined` (contextual novelty, anomaly likelihood, rest period; see
`aiops.anomaly.pipeline`) with its defaults and, as NAB's runner gives every detector, the file's
probationary period as its learning period; nothing here knows a file's name, category or labels beyond
scoring. Its few constants were chosen on these files (the tuning is listed in the pipeline's modules);
the data here are 5 of NAB's 7 categories (realKnownCause and realTweets are held out), so the figures
are indicative: the published ones are over the whole corpus.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aiops.anomaly import combined

# NAB's scoreboard (README of numenta/NAB v1.1), standard profile, whole corpus.
PUBLISHED_STANDARD: dict[str, float] = {
    "ARTime": 74.9,
    "Numenta HTM": 70.5,
    "CAD OSE": 69.9,
    "KNN CAD": 58.0,
    "Relative Entropy": 54.6,
    "Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "Windowed Gaussian": 39.6,
    "Random": 11.0,
}
PROBATION_PERCENT = 0.15
PROBATION_CAP = 750  # NAB: min(floor(0.15 n), 0.15 x 5000)
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


@dataclass(frozen=True)
class DataFile:
    name: str  # e.g. realTraffic/speed_6005.csv
    times: np.ndarray  # datetime64[s]
    values: np.ndarray
    windows: tuple[tuple[int, int], ...]  # (first index, last index) per window

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class Profile:
    tp: float
    fp: float
    fn: float


def scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.where(x >= 3.0, -1.0, 2.0 / (1.0 + np.exp(np.clip(5.0 * x, -700, 700))) - 1.0)


def probation_length(n: int) -> int:
    return int(min(math.floor(PROBATION_PERCENT * n), PROBATION_PERCENT * 5000))


def sweep_scores(n: int, windows: tuple[tuple[int, int], ...], profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """(sweep score, window number or -1 outside windows, -2 in probation) per point, as NAB's calcSweepScore."""
    weight = np.empty(n)
    window_of = np.full(n, -1)
    index = np.arange(n)
    max_tp = float(scaled_sigmoid(-1.0))
    previous_end, previous_width = None, None
    cursor = 0
    for number, (left, right) in enumerate(sorted(windows)):
        gap = slice(cursor, left)
        weight[gap] = _outside(index[gap], previous_end, previous_width) * profile.fp
        width = right - left + 1
        inside = index[left : right + 1]
        weight[left : right + 1] = scaled_sigmoid(-(right - inside + 1) / width) * profile.tp / max_tp
        window_of[left : right + 1] = number
        previous_end, previous_width, cursor = right, width, right + 1
    weight[cursor:] = _outside(index[cursor:], previous_end, previous_width) * profile.fp
    window_of[: probation_length(n)] = -2
    return weight, window_of


def _outside(index: np.ndarray, previous_end: int | None, previous_width: int | None) -> np.ndarray:
    if previous_end is None:
        return np.full(len(index), -1.0)
    if previous_width <= 1:  # NAB divides by zero here; a one-point window counts as immediately over
        return scaled_sigmoid(np.full(len(index), 3.0))
    return scaled_sigmoid(np.abs(previous_end - index) / (previous_width - 1))


@dataclass
class _Scorable:
    """The scorable points of a set of files, each file's windows numbered globally."""

    scores: np.ndarray
    weights: np.ndarray
    window: np.ndarray  # global window number, -1 outside
    file: np.ndarray  # file number per point
    n_windows: int  # windows with at least one scorable point


def _scorable(files: list[DataFile], scores: Mapping[str, np.ndarray], profile: Profile) -> _Scorable:
    parts, offset = [], 0
    for number, f in enumerate(files):
        weight, window_of = sweep_scores(len(f.values), f.windows, profile)
        keep = window_of != -2
        window = np.where(window_of[keep] >= 0, window_of[keep] + offset, -1)
        offset += len(f.windows)
        parts.append((np.asarray(scores[f.name], dtype=float)[keep], weight[keep], window, np.full(keep.sum(), number)))
    s, w, g, fi = (np.concatenate(p) for p in zip(*parts, strict=True))
    return _Scorable(s, w, g, fi, len(np.unique(g[g >= 0])))


def optimise_threshold(sc: _Scorable, profile: Profile) -> tuple[float, float]:
    """(threshold, raw total) maximising the total over all points together, as NAB's calcScoreByThreshold."""
    order = np.argsort(-sc.scores, kind="stable")
    s, w, g = sc.scores[order], sc.weights[order], sc.window[order]
    fp_part = np.cumsum(np.where(g < 0, w, 0.0))
    # Each window's best detection so far: a running maximum within the window, in sweep order.
    delta = np.zeros(len(s))
    inside = np.flatnonzero(g >= 0)
    if len(inside):
        by_window = inside[np.argsort(g[inside], kind="stable")]
        groups = g[by_window]
        span = 4.0 * (profile.tp + profile.fn) + 1.0
        running = np.maximum.accumulate(w[by_window] + groups * span) - groups * span
        first = np.r_[True, groups[1:] != groups[:-1]]
        before = np.where(first, -profile.fn, np.r_[-profile.fn, running[:-1]])
        delta[by_window] = np.maximum(running, -profile.fn) - np.maximum(before, -profile.fn)
    totals = -profile.fn * sc.n_windows + fp_part + np.cumsum(delta)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    candidates = np.r_[-profile.fn * sc.n_windows, totals[last_of_tie]]
    thresholds = np.r_[np.inf, s[last_of_tie]]
    best = int(np.argmax(candidates))
    return float(thresholds[best]), float(candidates[best])


def raw_score(sc: _Scorable, threshold: float, profile: Profile) -> float:
    """The total at one threshold (detections: score >= threshold)."""
    hit = sc.scores >= threshold
    total = float(np.sum(sc.weights[hit & (sc.window < 0)]))
    windows = np.unique(sc.window[sc.window >= 0])
    best = np.full(len(windows), -profile.fn)
    inside = hit & (sc.window >= 0)
    if inside.any():
        np.maximum.at(best, np.searchsorted(windows, sc.window[inside]), sc.weights[inside])
    return total + float(best.sum())


def normalised(raw: float, n_windows_scorable: int, n_windows: int, profile: Profile) -> float:
    null = -profile.fn * n_windows_scorable
    perfect = profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else float("nan")


def load(data_dir: Path) -> list[DataFile]:
    root = data_dir / "nab" if (data_dir / "nab" / "combined_windows.json").is_file() else data_dir
    labels = json.loads((root / "combined_windows.json").read_text())
    files = []
    for name in sorted(labels):
        path = root / "data" / name
        if not path.is_file():
            print(f"{name}: labelled but absent, skipped", file=sys.stderr)
            continue
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        times = np.array([r[0] for r in rows], dtype="datetime64[s]")
        values = np.array([float(r[1]) for r in rows])
        windows = []
        for start, end in labels[name]:
            left, right = (int(np.searchsorted(times, np.datetime64(x, "s"))) for x in (start, end))
            if times[left] != np.datetime64(start, "s") or times[right] != np.datetime64(end, "s"):
                raise ValueError(f"{name}: window {start} .. {end} does not start and end on data timestamps")
            windows.append((left, right))
        files.append(DataFile(name, times, values, tuple(windows)))
    return files


def load_profiles(data_dir: Path) -> dict[str, Profile]:
    root = data_dir / "nab" if (data_dir / "nab" / "profiles.json").is_file() else data_dir
    raw = json.loads((root / "profiles.json").read_text())
    return {
        k: Profile(v["CostMatrix"]["tpWeight"], v["CostMatrix"]["fpWeight"], v["CostMatrix"]["fnWeight"])
        for k, v in raw.items()
    }


# --- detectors -------------------------------------------------------------------------------------------


def null_detector(f: DataFile) -> np.ndarray:
    return np.full(len(f.values), 0.5)


def oracle_detector(f: DataFile) -> np.ndarray:
    """Reads the labels: 1 at each window's first point. A scorer check, not a detector."""
    out = np.zeros(len(f.values))
    for left, _ in f.windows:
        out[left] = 1.0
    return out


def windowed_gaussian(values: np.ndarray, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowedGaussian_detector: 1 - Q(|x - mean| / std) against the window before the point; the
    window grows to `window` points, then slides by `step` points at a time (std 0 -> 1e-6)."""
    n = len(values)
    mean, std = np.zeros(n), np.ones(n)
    head = min(n, window + 1)
    if n > 1:
        shifted = values[: head - 1] - values[0]  # expanding stats of values[:i], for i = 1 .. head - 1
        count = np.arange(1, head)
        csum, csq = np.cumsum(shifted), np.cumsum(shifted**2)
        mean[1:head] = csum / count + values[0]
        std[1:head] = np.sqrt(np.maximum(csq / count - (csum / count) ** 2, 0.0))
    for i in range(head, n):
        last_update = window - 1 + step * ((i - window) // step)  # the last point after which stats were refreshed
        if i == head or last_update != window - 1 + step * ((i - 1 - window) // step):
            chunk = values[last_update + 1 - window : last_update + 1]
            m, sd = float(np.mean(chunk)), float(np.std(chunk))
        mean[i], std[i] = m, sd
    std = np.where(std == 0.0, 1e-6, std)
    z = np.abs(values - mean) / std
    score = 1.0 - 0.5 * np.vectorize(math.erfc)(z / math.sqrt(2))
    score[0] = 0.0
    return score


def ours(f: DataFile) -> np.ndarray:
    seconds = f.times.astype("datetime64[s]").astype(np.int64).astype(float)
    return combined((seconds, f.values), learning=max(1, probation_length(len(f.values)))).score


DETECTORS: dict[str, Callable[[DataFile], np.ndarray]] = {
    "aiops combined": ours,
    "Windowed Gaussian (ours)": lambda f: windowed_gaussian(f.values),
    "null": null_detector,
    "oracle": oracle_detector,
}


@dataclass(frozen=True)
class Result:
    detector: str
    profile: str
    threshold: float
    overall: float
    by_category: dict[str, float]
    points_per_second: float


def evaluate(files: list[DataFile], profiles: Mapping[str, Profile], detectors=DETECTORS) -> list[Result]:
    results = []
    categories = sorted({f.category for f in files})
    for name, fn in detectors.items():
        print(f"{name}: scoring {len(files)} files...", file=sys.stderr)
        started = time.perf_counter()
        scores = {}
        for f in files:
            scores[f.name] = fn(f)
        seconds = time.perf_counter() - started
        speed = sum(len(f.values) for f in files) / seconds if seconds > 0 else float("inf")
        for profile_name, profile in profiles.items():
            sc = _scorable(files, scores, profile)
            threshold, raw = optimise_threshold(sc, profile)
            overall = normalised(raw, sc.n_windows, sum(len(f.windows) for f in files), profile)
            by_category = {}
            for category in categories:
                subset = [f for f in files if f.category == category]
                sub = _scorable(subset, scores, profile)
                n_windows = sum(len(f.windows) for f in subset)
                if n_windows:
                    by_category[category] = normalised(
                        raw_score(sub, threshold, profile), sub.n_windows, n_windows, profile
                    )
                else:  # no windows: only false positives count; report the raw (<= 0) total
                    by_category[category] = raw_score(sub, threshold, profile)
            results.append(Result(name, profile_name, threshold, overall, by_category, speed))
    return results


def _table(results: list[Result], files: list[DataFile], profile: str) -> str:
    rows = [r for r in results if r.profile == profile]
    categories = sorted({f.category for f in files})
    short = {c: c.replace("artificial", "art").replace("real", "") for c in categories}
    header = (
        f"{'detector':<26} {'threshold':>9} "
        + " ".join(f"{short[c]:>15}" for c in categories)
        + f" {'overall':>8} {'points/s':>10}"
    )
    lines = [f"profile: {profile}", header, "-" * len(header)]
    for r in rows:
        cells = " ".join(f"{r.by_category[c]:>15.1f}" for c in categories)
        lines.append(f"{r.detector:<26} {r.threshold:>9.4f} {cells} {r.overall:>8.1f} {r.points_per_second:>10,.0f}")
    lines.append("(a category without windows shows its raw false-positive total, 0 at best, not a normalised score)")
    if profile == "standard":
        lines.append("\npublished, standard profile, whole NAB corpus (7 categories):")
        lines += [f"  {k:<24} {v:>5.1f}" for k, v in PUBLISHED_STANDARD.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops_dev.eval.nab", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="../shared/eval or its nab folder")
    parser.add_argument("--all-profiles", action="store_true", help="also reward_low_FP_rate and reward_low_FN_rate")
    args = parser.parse_args(argv)
    root = args.data_dir / "nab" if (args.data_dir / "nab").is_dir() else args.data_dir
    if not (root / "combined_windows.json").is_file():
        parser.error(f"no combined_windows.json in {args.data_dir} or {args.data_dir / 'nab'}")
    files = load(root)
    if not files:
        print(f"no NAB data files under {root / 'data'}", file=sys.stderr)
        return 1
    profiles = load_profiles(root)
    wanted = {k: v for k, v in profiles.items() if args.all_profiles or k == "standard"}
    results = evaluate(files, wanted)
    points = sum(len(f.values) for f in files)
    windows = sum(len(f.windows) for f in files)
    categories = ", ".join(sorted({f.category for f in files}))
    print(f"NAB: {len(files)} files, {points:,} points, {windows} windows; categories: {categories}\n")
    for profile in wanted:
        print(_table(results, files, profile) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
