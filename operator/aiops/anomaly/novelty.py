"""Contextual novelty: how rarely the series has been in its current state before (the raw score).

Why: z-scores on noisy series flag every wide excursion of the noise, and noisy series are where a
detector loses most (every false positive costs). What NAB's best detectors share (CAD OSE's contexts,
ARTime's adaptive-resonance categories, DASRS) is novelty of a quantised state instead: a value is
anomalous when the series has rarely been in that state, whatever its distance from a mean. A series
whose noise keeps visiting the same few levels stops scoring once it has visited them; a new level, or
a transition the series has not made before, scores at once.

The state of point i is its value's bin and the pair (bin of the previous point, bin of point i),
counted on grids of LEVELS bins over the learning period's range (DASRS's 7 levels). The
raw score is, averaged over GRIDS (3) grids shifted by a third of a bin each (averaged shifted histograms:
a value that only crosses one grid's bin edge is not a novelty on the other two),
    raw = LEVEL_WEIGHT / c_level + (1 - LEVEL_WEIGHT) / c_transition,    LEVEL_WEIGHT 0.5,
with c the number of times the state has occurred, this one included: 1 for a state never seen, 0.5 at
its second occurrence, towards 0 for the familiar ones. The level and the transition weigh the same:
a new level is the plainest anomaly, a new transition (a jump between familiar levels, a broken
rhythm) the one a level test misses.

The grid is causal and adaptive, with no look-ahead: the bin width starts at the learning period's range
/ LEVELS and doubles whenever the range seen so far exceeds GROW (2) x LEVELS bins, so that the series
always spans LEVELS to 2 x LEVELS bins (NAB hands CAD OSE and DASRS the whole file's minimum and maximum
up front; a stream only knows the past). Doubling keeps the counts: each bin's count moves to the coarse
bin that holds its centre. Bins therefore never run out of a fixed table (TABLE bins per grid), and a
point costs O(1), vectorised over a chunk of points. The price: the grid never narrows again, so after
one huge excursion smaller changes are seen at the coarser scale (as with DASRS's whole-file range).
"""

from __future__ import annotations

import numpy as np

LEVELS = 7
GRIDS = 3
GROW = 2.0
LEVEL_WEIGHT = 0.5  # the level's share of the raw score, the transition's is the rest
EPS_RELATIVE = 1e-9  # the bin width of a flat learning period: any later move is a new level
TABLE = 64  # bins per grid; indices stay within +- (GROW x LEVELS + 1) of the origin
_HALF = TABLE // 2
_MAX_DOUBLINGS = 1000  # 2 ** 1000 still fits a float: a finite series cannot need more


class Novelty:
    """The counts of levels and transitions seen so far, on GRIDS shifted grids.

    Built from the learning period's (finite) values, which it also counts; `update` scores and counts
    the next finite values. Scoring values in one call or split over several gives the same scores."""

    def __init__(self, learning: np.ndarray):
        learning = np.asarray(learning, dtype=float)
        if len(learning) == 0 or not np.all(np.isfinite(learning)):
            raise ValueError("the learning period needs at least one value, all finite")
        self.low, self.high = float(learning.min()), float(learning.max())
        self.origin = self.low
        self.step = max(self.high - self.low, EPS_RELATIVE * max(1.0, abs(self.low))) / LEVELS
        self.doublings = 0
        self.levels = np.zeros((GRIDS, TABLE))
        self.transitions = np.zeros((GRIDS, TABLE * TABLE))
        self.previous: float | None = None
        self.warmup = self.update(learning)  # the learning values' own scores (for the likelihood's history)

    def _bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index (table column) of each value on each grid: shape (GRIDS, len(values))."""
        shift = np.arange(GRIDS)[:, None] * (self.step / GRIDS)
        with np.errstate(over="ignore", invalid="ignore"):
            index = np.nan_to_num(np.floor((values[None, :] - self.origin + shift) / self.step))  # float extremes
        return np.clip(index, -_HALF, _HALF - 1).astype(np.int64) + _HALF

    def _double(self, times: int) -> None:
        """Widen the bins 2 ** times, moving each bin's counts to the wider bin that holds its centre."""
        old = self.step
        with np.errstate(over="ignore", invalid="ignore"):  # float extremes: a bin's centre may overflow
            self.step = float(min(np.float64(old) * 2.0**times, np.finfo(float).max))
            centres = [(np.arange(TABLE) - _HALF + 0.5 - g / GRIDS) * old + self.origin for g in range(GRIDS)]
        self.doublings += times
        for g, centre in enumerate(centres):
            to = self._bins(centre)[g]
            self.levels[g] = np.bincount(to, weights=self.levels[g], minlength=TABLE)
            pair_to = (to[:, None] * TABLE + to[None, :]).ravel()
            self.transitions[g] = np.bincount(pair_to, weights=self.transitions[g], minlength=TABLE * TABLE)

    def _doublings_needed(self, values: np.ndarray) -> np.ndarray:
        """Per value: the total doublings the grid needs once the value is seen (non-decreasing)."""
        low = np.minimum(self.low, np.minimum.accumulate(values))
        high = np.maximum(self.high, np.maximum.accumulate(values))
        with np.errstate(over="ignore", invalid="ignore"):
            ratio = (high - low) / (GROW * LEVELS * self.step)
        ratio = np.nan_to_num(ratio, nan=2.0**_MAX_DOUBLINGS, posinf=2.0**_MAX_DOUBLINGS)
        extra = np.zeros(len(values), dtype=np.int64)
        over = ratio > 1.0
        if over.any():
            k = np.ceil(np.log2(ratio[over])).astype(np.int64)
            k += ratio[over] > np.exp2(k)  # log2 rounding
            extra[over] = np.minimum(k, _MAX_DOUBLINGS)
        self.low, self.high = float(min(self.low, low[-1])), float(max(self.high, high[-1]))
        return self.doublings + extra

    def update(self, values: np.ndarray) -> np.ndarray:
        """Raw novelty in [0, 1] of each (finite) value, counting it; the very first value has no context (0)."""
        values = np.asarray(values, dtype=float)
        raw = np.zeros(len(values))
        if len(values) == 0:
            return raw
        needed = self._doublings_needed(values)
        bounds = np.concatenate(([0], np.flatnonzero(np.diff(needed)) + 1, [len(values)]))
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if needed[lo] > self.doublings:
                self._double(int(needed[lo] - self.doublings))
            raw[lo:hi] = self._score(values[lo:hi])
        return raw

    def _score(self, values: np.ndarray) -> np.ndarray:
        """Score and count values on the current grid (all grids at once: their keys are offset apart)."""
        first = self.previous is None
        bins = self._bins(values if first else np.concatenate(([self.previous], values)))
        self.previous = float(values[-1])
        grid = np.arange(GRIDS)[:, None]
        levels = (grid * TABLE + bins[:, 1:]).ravel()  # the points with a previous point: all but the very first
        pairs = (grid * TABLE * TABLE + bins[:, :-1] * TABLE + bins[:, 1:]).ravel()
        level_count = self.levels.ravel()[levels] + _rank(levels) + 1
        pair_count = self.transitions.ravel()[pairs] + _rank(pairs) + 1
        _count(self.levels, levels)
        _count(self.transitions, pairs)
        scored = bins.shape[1] - 1
        total = np.zeros(len(values))
        total[len(values) - scored :] = (
            (LEVEL_WEIGHT / level_count + (1 - LEVEL_WEIGHT) / pair_count).reshape(GRIDS, scored).mean(axis=0)
        )
        return total


def _count(table: np.ndarray, keys: np.ndarray) -> None:
    """table.flat[keys] += 1 per occurrence (bincount for a chunk, add.at for a few points)."""
    flat = table.reshape(-1)
    if len(keys) * 16 < flat.size:
        np.add.at(flat, keys, 1)
    else:
        flat += np.bincount(keys, minlength=flat.size)


def _rank(keys: np.ndarray) -> np.ndarray:
    """For each key, how many times the same key occurs before it in the array."""
    if len(keys) < 2:
        return np.zeros(len(keys))
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    index = np.arange(len(keys))
    starts = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], index, 0))
    rank = np.empty(len(keys))
    rank[order] = index - starts
    return rank
