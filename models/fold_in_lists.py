"""Exact top-n for fold-in visitors without scoring the catalogue.

A folded-in visitor's factor is x = G^-1 Yv'w (`models.fold_in`; Yv: their items'
rows), so their score for item j is sum_i w_i s(i, j) over their items i, with
s(i, j) = y_i'G^-1 y_j: the
model's own item-to-item score. Training keeps, for every item, its K best items by
s with their scores (its list), and the highest and lowest s(i, .) of the items left
off it (ceiling and floor). Then, without reading any item factor (Fagin's threshold
and no-random-access arguments):

- an item in none of the visitor's lists scores at most the sum of w_i * ceiling_i
  (w_i > 0) or w_i * floor_i (w_i < 0): the outside bound;
- an item in some of them scores at most the outside bound plus, for each list it is
  on, w_i * s(i, j) minus that list's term: its upper bound.

Only candidates whose upper bound reaches the best scores found are scored exactly
(about 20 of some 300 on the load-test model), and when the n-th best beats the
outside bound the result is the catalogue's exact top n, up to float32 rounding (a
margin scaled by |G^-1 y_i| keeps rounding from deciding); when it does not (none of
400 five-click visitors there at K = 64, 1 of 400 eight-item histories), the caller
ranks another way. A visitor costs a few list rows and a few dozen factor rows, where
an HNSW search visits thousands of nodes scattered over a graph larger than the CPU
cache.

ALS only: a BPR score adds an item bias the lists do not bound.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from models.artifacts import ArtifactError

LISTS_FILE = "fold_in_lists.npy"
SCORES_FILE = "fold_in_scores.npy"
BOUNDS_FILE = "fold_in_bounds.npy"
LIST_LENGTH = 64  # all 400 five-click visitors vouched for on the load-test model
CHUNK_CELLS = 1 << 24  # scores computed per block while building: 64 MB of float32
# of the scores' scale: float32 rounding (at most about k * 6e-8 of it for k factors, in
# the lists and in serving's scores) must not prune or certify wrongly; ample to k ~ 1,000
SLACK = 1e-4
FIRST_BATCH = 32  # candidates scored exactly before the rest are pruned (at least 4n)


class Candidates(NamedTuple):
    """A visitor's candidates and what bounds their scores: candidate i scores at most
    `base + gains[i]`, an item outside them at most `outside`; `margin` covers the
    rounding of scores computed two ways."""

    rows: np.ndarray
    gains: np.ndarray
    base: float
    outside: float
    margin: float

    @property
    def upper(self) -> np.ndarray:
        bound: np.ndarray = self.gains + self.base
        return bound

    def subset(self, keep: np.ndarray) -> Candidates:
        return self._replace(rows=self.rows[keep], gains=self.gains[keep])


@dataclass(frozen=True, slots=True)
class FoldInLists:
    """Each item's best items by s(i, .) with their scores, and bounds on the rest."""

    rows: np.ndarray  # (items, K) int32, best first (ties by lower row)
    scores: np.ndarray  # (items, K) float32: s(i, rows[i])
    # (items, 3) float32, one row read per request: the ceiling (the highest s(i, j) of
    # an unlisted j), the floor (the lowest; -inf/+inf when all are listed) and the scale
    # |G^-1 y_i| max_j |y_j|, which bounds every |s(i, j)| and, times k and the float32
    # unit roundoff, the rounding of any score computed from it (however ill-conditioned)
    bounds: np.ndarray

    @property
    def ceiling(self) -> np.ndarray:
        column: np.ndarray = self.bounds[:, 0]
        return column

    @property
    def floor(self) -> np.ndarray:
        column: np.ndarray = self.bounds[:, 1]
        return column

    @property
    def scale(self) -> np.ndarray:
        column: np.ndarray = self.bounds[:, 2]
        return column

    @property
    def complete(self) -> bool:
        return bool(self.rows.shape[1] >= self.rows.shape[0])

    def candidates(self, rows: np.ndarray, coefficients: np.ndarray) -> Candidates:
        """The union of the lists of `rows`, with bounds for the visitor whose factor
        is G^-1 Y[rows]'w, w = `coefficients`. A visitor has a handful of items: their
        terms are summed in Python, where a numpy call would cost more than its work."""
        weights = coefficients.tolist()
        table = self.bounds[rows].tolist()
        if self.complete:  # every item is on every list: its bound is its score
            references, outside = [0.0] * len(weights), -math.inf
        else:  # w_i times the ceiling (w_i > 0) or the floor (w_i < 0) of list i
            references = [b[0] if w > 0 else b[1] for w, b in zip(weights, table, strict=True)]
            outside = math.fsum(w * r for w, r in zip(weights, references, strict=True))
        margin = SLACK * math.fsum(abs(w) * b[2] for w, b in zip(weights, table, strict=True))
        listed = self.rows[rows]
        gains = (self.scores[rows] - np.array(references)[:, None]) * coefficients[:, None]
        order = np.argsort(listed, axis=None, kind="stable")
        flat = np.take(listed, order)
        starts = run_starts(flat)
        summed = np.add.reduceat(np.take(gains, order), starts) if starts.size else np.zeros(0)
        base = 0.0 if self.complete else outside
        return Candidates(flat[starts], summed, base, outside, margin)


def run_starts(flat: np.ndarray) -> np.ndarray:
    """Where each run of equal values in sorted `flat` starts (np.diff with `prepend`,
    or np.r_, cost three times this on a few hundred values)."""
    if flat.size == 0:
        return np.zeros(0, dtype=np.intp)
    moved = (flat[1:] != flat[:-1]).nonzero()[0]
    starts = np.empty(moved.size + 1, dtype=np.intp)
    starts[0] = 0
    np.add(moved, 1, out=starts[1:])
    return starts


def exact_top(
    found: Candidates, item_factors: np.ndarray, vector: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The top `n` of the catalogue among `found` (best first, ties by lower row),
    scoring exactly only candidates whose upper bound reaches the n-th best score;
    None when fewer than n are left or an item outside them might score as much."""
    size = found.rows.size
    if n <= 0 or size < n:
        return None
    order = np.argsort(-found.gains)  # by upper bound, best first
    first = max(FIRST_BATCH, 4 * n)
    rows, scores = _top(found.rows, order[:first], item_factors, vector, n)
    if size > first:
        # the candidates whose bound reaches the n-th best found: a prefix of `order`
        floor = float(scores[n - 1]) - found.margin - found.base
        reach = int(np.count_nonzero(found.gains >= floor))
        if reach > first:
            rows, scores = _top(found.rows, order[:reach], item_factors, vector, n)
    if scores[n - 1] <= found.outside + found.margin:
        return None
    return rows, scores


def _top(
    rows: np.ndarray, picked: np.ndarray, item_factors: np.ndarray, vector: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best n of `rows[picked]` by exact score, best first, ties by lower row (rows
    ascending, so positions in ascending order are rows in ascending order)."""
    chosen = rows[np.sort(picked)]
    scores = item_factors[chosen] @ vector
    best = np.argsort(-scores, kind="stable")[:n]
    return chosen[best], np.asarray(scores[best], dtype=np.float32)


def build_lists(
    latent: np.ndarray,
    gram_inverse: np.ndarray,
    length: int = LIST_LENGTH,
    *,
    show_progress: bool = False,
) -> FoldInLists:
    """Every item's `length` best items by y_i'G^-1 y_j, with the bounds: one matrix
    product and one partition per block of items (items^2 * factors work: about a
    minute for 100,000 items on two cores)."""
    y = np.ascontiguousarray(latent, dtype=np.float32)
    n = y.shape[0]
    length = min(length, n)
    exact_left = np.asarray(latent, np.float64) @ gram_inverse
    left = np.ascontiguousarray(exact_left, dtype=np.float32)
    longest = float(np.linalg.norm(y, axis=1).max(initial=0.0))
    scale = (np.linalg.norm(exact_left, axis=1) * longest).astype(np.float32)
    rows = np.empty((n, length), dtype=np.int32)
    listed_scores = np.empty((n, length), dtype=np.float32)
    bounds = np.empty((n, 3), dtype=np.float32)
    ceiling, floor = bounds[:, 0], bounds[:, 1]  # views: filled block by block below
    ceiling[:] = -np.inf
    floor[:] = np.inf
    bounds[:, 2] = scale
    chunk = max(1, CHUNK_CELLS // max(n, 1))
    blocks = range(0, n, chunk)
    for start in tqdm(blocks, desc="fold-in lists", unit="block", disable=not show_progress):
        stop = min(start + chunk, n)
        scores = left[start:stop] @ y.T
        if length < n:
            # a partition of the values (argpartition is twenty times slower here):
            # the last `length` are the best, the one before them the ceiling
            parted = np.partition(scores, n - length - 1, axis=1)
            ceiling[start:stop] = parted[:, n - length - 1]
            floor[start:stop] = parted[:, : n - length].min(axis=1)
            cut = parted[:, n - length :].min(axis=1)
        else:
            cut = scores.min(axis=1)
        best = _best(scores, cut, length)
        rows[start:stop] = best
        listed_scores[start:stop] = np.take_along_axis(scores, best, axis=1)
    return FoldInLists(rows, listed_scores, bounds)


def _best(scores: np.ndarray, cut: np.ndarray, length: int) -> np.ndarray:
    """Each row's `length` best columns, best first, ties by lower column: those at or
    above the row's cut (at least `length`, more on ties), sorted together."""
    row, column = np.nonzero(scores >= cut[:, None])
    order = np.lexsort((column, -scores[row, column], row))
    starts = np.searchsorted(row, np.arange(scores.shape[0]))
    picked = starts[:, None] + np.arange(length)[None, :]
    best: np.ndarray = column[order][picked]
    return best


def save_lists(folder: Path, lists: FoldInLists) -> None:
    # the lists last: a worker loading a folder that had none finds all three or none
    # (`omotenashi models lists` refuses a version that has lists already)
    files = ((SCORES_FILE, lists.scores), (BOUNDS_FILE, lists.bounds), (LISTS_FILE, lists.rows))
    for name, array in files:
        staging = folder / f".{name}.tmp"
        with staging.open("wb") as out:
            np.save(out, array, allow_pickle=False)
        os.replace(staging, folder / name)


def load_lists(folder: Path, n_items: int) -> FoldInLists | None:
    """The folder's lists, memory-mapped; None if it has none."""
    if not (folder / LISTS_FILE).is_file():
        return None
    try:
        rows, scores, bounds = (
            np.asarray(np.load(folder / name, mmap_mode="r", allow_pickle=False))
            for name in (LISTS_FILE, SCORES_FILE, BOUNDS_FILE)
        )
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder}: fold-in lists: {exc}") from exc
    if (
        rows.ndim != 2
        or rows.shape[0] != n_items
        or rows.dtype != np.int32
        or scores.shape != rows.shape
        or scores.dtype != np.float32
        or bounds.shape != (n_items, 3)
        or bounds.dtype != np.float32
        or (rows.size and (int(rows.min()) < 0 or int(rows.max()) >= n_items))
    ):
        raise ArtifactError(
            f"{folder}: fold-in lists of shape {rows.shape}, scores {scores.shape} and "
            f"bounds {bounds.shape} do not match {n_items} items (or list others)"
        )
    return FoldInLists(rows, scores, bounds)
