"""Exact top-n for fold-in visitors without scoring the catalogue.

A folded-in visitor's factor is x = G^-1 Y'w (`models.fold_in`), so their score for
item j is sum_i w_i s(i, j) over their items i, with s(i, j) = y_i'G^-1 y_j: the
model's own item-to-item score. Training keeps, for every item, its K best items by
s (its list) and the highest and lowest s(i, .) of the items left off it. A visitor's
candidates are the union of their items' lists, and no item outside the union can
score more than sum_i w_i * (ceiling_i if w_i > 0 else floor_i) (Fagin's threshold
argument). When the n-th best candidate scores above that bound, the candidates' top n
is the catalogue's top n, exactly; when it does not (on the load-test model 0.1% of
five-click visitors at K = 64), the caller ranks another way. A visitor's candidates
are a few hundred rows, found with a handful of memory reads, where an HNSW search
visits thousands of nodes scattered over a graph larger than the CPU cache.

ALS only: a BPR score adds an item bias the lists do not bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.artifacts import ArtifactError

LISTS_FILE = "fold_in_lists.npy"
BOUNDS_FILE = "fold_in_bounds.npy"
LIST_LENGTH = 64  # 99.9% of five-click visitors certified on the load-test model (32: 85%)
CHUNK_CELLS = 1 << 24  # scores computed per block while building: 64 MB of float32
SLACK = 1e-4  # of the bound's terms: float32 rounding must not certify a wrong list


@dataclass(frozen=True, slots=True)
class FoldInLists:
    """Each item's best items by s(i, .), and bounds on the scores of the rest."""

    rows: np.ndarray  # (items, K) int32, best first (ties by lower row)
    ceiling: np.ndarray  # (items,) float32: the highest s(i, j) of an unlisted j
    floor: np.ndarray  # (items,) float32: the lowest (-inf/+inf when all are listed)

    @property
    def complete(self) -> bool:
        return bool(self.rows.shape[1] >= self.rows.shape[0])

    def candidates(self, rows: np.ndarray) -> np.ndarray:
        """The union of these items' lists, ascending, each row once."""
        listed = np.sort(self.rows[rows], axis=None)
        if listed.size == 0:
            return listed.astype(np.int64)
        first = np.empty(listed.size, dtype=bool)
        first[0] = True
        np.not_equal(listed[1:], listed[:-1], out=first[1:])
        union: np.ndarray = listed[first].astype(np.int64)
        return union

    def bound(self, rows: np.ndarray, coefficients: np.ndarray) -> float:
        """The most any item outside `candidates(rows)` can score for the visitor whose
        factor is G^-1 Y[rows]'w, w = `coefficients`, with a margin for rounding."""
        if self.complete:
            return -np.inf
        w = np.asarray(coefficients, dtype=np.float64)
        limit = np.where(w > 0, self.ceiling[rows], self.floor[rows]).astype(np.float64)
        terms = w * limit
        return float(terms.sum() + SLACK * np.abs(terms).sum())


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
    left = np.ascontiguousarray(np.asarray(latent, np.float64) @ gram_inverse, dtype=np.float32)
    rows = np.empty((n, length), dtype=np.int32)
    ceiling = np.full(n, -np.inf, dtype=np.float32)
    floor = np.full(n, np.inf, dtype=np.float32)
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
            rows[start:stop] = _best(scores, parted[:, n - length :].min(axis=1), length)
        else:
            rows[start:stop] = _best(scores, scores.min(axis=1), length)
    return FoldInLists(rows, ceiling, floor)


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
    bounds = np.stack([lists.ceiling, lists.floor], axis=1).astype(np.float32)
    for name, array in ((LISTS_FILE, lists.rows), (BOUNDS_FILE, bounds)):
        staging = folder / f".{name}.tmp"
        with staging.open("wb") as out:
            np.save(out, array, allow_pickle=False)
        os.replace(staging, folder / name)


def load_lists(folder: Path, n_items: int) -> FoldInLists | None:
    """The folder's lists, memory-mapped; None if it has none."""
    if not (folder / LISTS_FILE).is_file():
        return None
    try:
        rows = np.asarray(np.load(folder / LISTS_FILE, mmap_mode="r", allow_pickle=False))
        bounds = np.asarray(np.load(folder / BOUNDS_FILE, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder}: fold-in lists: {exc}") from exc
    if (
        rows.ndim != 2
        or rows.shape[0] != n_items
        or rows.dtype != np.int32
        or bounds.shape != (n_items, 2)
    ):
        raise ArtifactError(
            f"{folder}: fold-in lists of shape {rows.shape} and bounds {bounds.shape} "
            f"do not match {n_items} items"
        )
    return FoldInLists(rows, np.ascontiguousarray(bounds[:, 0]), np.ascontiguousarray(bounds[:, 1]))
