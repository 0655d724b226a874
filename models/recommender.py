"""The recommender both training and serving use: factor artifacts, weighting, fold-in,
top-n with exclusions.

A model is two factor matrices (implicit's ALS or BPR), the id maps, popularity counts
and the training interactions, stored as `.npy` files that every worker memory-maps
(one copy in the page cache however many workers). Confidence weighting (BM25,
TF-IDF) is computed here, not by implicit, so that fold-in applies to a live history
exactly what training applied to the matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import scipy.sparse as sp

from models.artifacts import ArtifactError, folder_manifest
from models.fold_in import FoldIn, gram_matrices, solve
from models.fold_in_lists import FoldInLists, build_lists, load_lists, save_lists

Algorithm = Literal["als", "bpr"]
ALGORITHMS: tuple[str, ...] = get_args(Algorithm)
Weighting = Literal["none", "bm25", "tfidf"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
FORMAT = 1  # the file layout below; bumped when it changes
ARRAYS = (
    "item_ids",
    "item_factors",
    "user_pids",
    "user_factors",
    "popularity",
    "seen_indptr",
    "seen_indices",
    "item_length_norm",
)


@dataclass(frozen=True, slots=True)
class WeightingParams:
    """How raw interaction weights become confidences (implicit's bm25/tfidf on the
    item x user matrix: BM25 damps popular items' rows, and both damp heavy users)."""

    kind: Weighting = "none"
    k1: float = 100.0
    b: float = 0.8


def weight_matrix(
    user_items: sp.csr_matrix, params: WeightingParams
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Confidences for training, and each item's BM25 length norm (what fold-in needs).

    Same numbers as `implicit.nearest_neighbours.bm25_weight(user_items.T).T` (and
    `tfidf_weight`), written out so serving can apply them to one user at a time.
    """
    n_users, n_items = user_items.shape
    coo = user_items.tocoo()
    item_length = np.bincount(coo.col, weights=coo.data, minlength=n_items)
    average = item_length.mean() if n_items else 1.0
    length_norm = ((1.0 - params.b) + params.b * item_length / (average or 1.0)).astype(np.float32)
    if params.kind == "none":
        return user_items.astype(np.float32).tocsr(), length_norm
    user_degree = np.bincount(coo.row, minlength=n_users)
    idf = math.log(n_items) - np.log1p(user_degree)
    data = _confidence(coo.data, length_norm[coo.col], idf[coo.row], params)
    weighted = sp.csr_matrix(
        (data.astype(np.float32), (coo.row, coo.col)), shape=(n_users, n_items)
    )
    return weighted, length_norm


def _confidence(
    data: np.ndarray,
    length_norm: np.ndarray | float,
    idf: np.ndarray | float,
    params: WeightingParams,
) -> np.ndarray:
    if params.kind == "bm25":
        out: np.ndarray = data * (params.k1 + 1.0) / (params.k1 * length_norm + data) * idf
        return out
    if params.kind == "tfidf":
        root: np.ndarray = np.sqrt(data) * idf
        return root
    return data


@dataclass(slots=True)
class RecsModel:
    """A loaded recommender version. Rows index `item_ids`; users are sorted pids."""

    version: str
    manifest: dict[str, Any]
    item_ids: np.ndarray
    item_factors: np.ndarray
    user_pids: np.ndarray
    user_factors: np.ndarray
    popularity: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    item_length_norm: np.ndarray
    item_index: dict[str, int] = field(default_factory=dict)
    gram: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float64))
    gram_inverse: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float64))
    item_norms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    user_top: np.ndarray | None = None  # (users, K) rows by score, seen left out, -1 pads
    fold_in_lists: FoldInLists | None = None  # ALS: exact candidates for fold-in visitors
    ann: Any = None  # a models.ann index when loaded with one

    def __post_init__(self) -> None:
        self.item_index = {str(item): row for row, item in enumerate(self.item_ids.tolist())}
        # YtY + lambda*I, the part of every fold-in's system that does not depend on
        # the visitor: computed once per model, not per request
        regularization = float(self.manifest["params"]["regularization"])
        self.gram, self.gram_inverse = gram_matrices(
            self._latent(self.item_factors), regularization
        )
        norms = np.linalg.norm(self.item_factors, axis=1).astype(np.float32)
        self.item_norms = np.where(norms > 0, norms, 1.0).astype(np.float32)

    # -- what the manifest says -------------------------------------------------
    @property
    def algorithm(self) -> Algorithm:
        algorithm: Algorithm = self.manifest["algorithm"]
        return algorithm

    @property
    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.manifest["params"]
        return params

    @property
    def weighting(self) -> WeightingParams:
        w = self.manifest.get("weighting", {})
        return WeightingParams(w.get("kind", "none"), w.get("k1", 100.0), w.get("b", 0.8))

    @property
    def event_weights(self) -> dict[str, float]:
        weights: dict[str, float] = self.manifest["event_weights"]
        return weights

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    # -- users ------------------------------------------------------------------
    def user_row(self, pid: str) -> int | None:
        """The training row of this pseudonym, None for a visitor unknown at training."""
        key, pids = pid.encode(), self.user_pids
        row = int(pids.searchsorted(key))  # the method: np.searchsorted's dispatch doubles it
        if row < len(pids) and pids[row] == key:
            return row
        return None

    def seen_rows(self, user_row: int) -> np.ndarray:
        """Items this user interacted with in training."""
        return np.asarray(
            self.seen_indices[self.seen_indptr[user_row] : self.seen_indptr[user_row + 1]]
        )

    def rows_of(self, item_ids: Sequence[str]) -> np.ndarray:
        """Rows of the ids the model knows (others are left out)."""
        index = self.item_index
        return np.fromiter((index[i] for i in item_ids if i in index), dtype=np.int64, count=-1)

    def fold_in(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A user factor from interactions, without retraining (`fold_in_terms`)."""
        return self.fold_in_terms(rows, weights).vector

    def fold_in_terms(self, rows: np.ndarray, weights: np.ndarray) -> FoldIn:
        """The ALS least-squares step for one user (`models.fold_in`), with the training
        weighting and alpha applied first: the same factor as implicit's
        `recalculate_user`. BPR models reuse it on their latent columns (an
        approximation: BPR has no closed form) and keep the item-bias column."""
        latent_factors = self._latent(self.item_factors)
        k = latent_factors.shape[1]
        if rows.size == 0:
            empty = np.zeros(0, np.float64)
            return FoldIn(self._with_bias(np.zeros(k, np.float32)), rows.astype(np.int64), empty)
        if len(set(rows.tolist())) == rows.size:  # the usual case: one weight per item
            unique, summed = rows, weights.astype(np.float64)
        else:
            unique, inverse = np.unique(rows, return_inverse=True)
            summed = np.bincount(inverse, weights=weights).astype(np.float64)
        idf = math.log(self.n_items) - math.log1p(unique.size)
        weighting = self.weighting
        norms = self.item_length_norm[unique] if weighting.kind == "bm25" else 1.0
        confidence = _confidence(summed, norms, idf, weighting)
        alpha = float(self.params.get("alpha", 1.0))
        if alpha != 1.0:
            confidence = confidence * alpha
        y = latent_factors[unique].astype(np.float64)
        x, coefficients = solve(self.gram, self.gram_inverse, y, confidence)
        return FoldIn(self._with_bias(np.asarray(x, dtype=np.float32)), unique, coefficients)

    # -- ranking ----------------------------------------------------------------
    def scores(self, user_vector: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.item_factors @ user_vector
        return out

    def similar_scores(self, row: int) -> np.ndarray:
        """Cosine similarity of every item to `row` (implicit's `similar_items`)."""
        query = self.item_factors[row]
        out: np.ndarray = (self.item_factors @ query) / (self.item_norms * self.item_norms[row])
        return out

    def _latent(self, factors: np.ndarray) -> np.ndarray:
        # implicit's BPR keeps the item bias as the last column (user side fixed to 1)
        out: np.ndarray = factors[:, :-1] if self.manifest["algorithm"] == "bpr" else factors
        return out

    def _with_bias(self, latent: np.ndarray) -> np.ndarray:
        if self.manifest["algorithm"] == "bpr":
            return np.append(latent, np.float32(1.0))
        return latent


SMALL = 256


def top_n(
    scores: np.ndarray, n: int, excluded: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The `n` best rows by score, best first (ties by lower row), skipping `excluded`
    rows and rows scored -inf. Modifies `scores` in place."""
    if excluded is not None and excluded.size:
        scores[excluded] = -np.inf
    if scores.size <= SMALL:  # a few rescored candidates: one stable sort is cheapest
        order = np.argsort(-scores, kind="stable")[:n]  # stable: ties by lower row
        best = order[scores[order] > -np.inf].astype(np.int64)
        return best, scores[best].astype(np.float32)
    candidates = int(np.count_nonzero(scores > -np.inf))
    k = min(n, candidates)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if k < scores.size:
        rows = np.argpartition(-scores, k - 1)[:k]
        cut = scores[rows].min()
        if np.count_nonzero(scores == cut) > 1:  # ties at the cut: the lowest rows, always
            better = np.flatnonzero(scores > cut)
            rows = np.concatenate([better, np.flatnonzero(scores == cut)[: k - better.size]])
    else:
        rows = np.arange(scores.size)
    order = np.lexsort((rows, -scores[rows]))
    best = rows[order].astype(np.int64)
    return best, scores[best].astype(np.float32)


def precompute_top(
    item_factors: np.ndarray,
    user_factors: np.ndarray,
    seen: sp.csr_matrix,
    k: int,
    chunk: int = 1024,
) -> np.ndarray:
    """Each user's `k` best rows by score, best first (ties by lower row), leaving out
    their training interactions; -1 where a user has fewer unseen items than `k`.

    Serving a known user is then a walk down this list (live exclusions and filters
    applied, scores recomputed exactly), not a pass over the catalogue: exact results
    for the cost of k rows. One matrix product and one argpartition per chunk of users.
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    k = min(k, n_items)
    top = np.full((n_users, k), -1, dtype=np.int32)
    seen = seen.tocsr()
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        scores = np.asarray(user_factors[start:stop] @ item_factors.T, dtype=np.float32)
        block = seen[start:stop].tocoo()
        scores[block.row, block.col] = -np.inf
        if k < n_items:
            rows = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            rows = np.broadcast_to(np.arange(n_items), scores.shape).copy()
        values = np.take_along_axis(scores, rows, axis=1)
        order = np.lexsort((rows, -values), axis=1)
        rows = np.take_along_axis(rows, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        top[start:stop] = np.where(np.isfinite(values), rows, -1)
    return top


def save_recs(
    folder: Path,
    *,
    item_ids: Sequence[str],
    item_factors: np.ndarray,
    user_pids: Sequence[str],
    user_factors: np.ndarray,
    seen: sp.csr_matrix,
    popularity: np.ndarray,
    item_length_norm: np.ndarray,
    top_k: int = 0,
    fold_in_lists: int = 0,
    regularization: float | None = None,
    show_progress: bool = False,
) -> None:
    """Write the arrays of a version folder; users are stored sorted by pid, with their
    factors and training interactions in the same order (lookup by binary search).
    With `top_k`, each user's best `top_k` unseen items too (`precompute_top`); with
    `fold_in_lists` (ALS only), each item's lists of that length for fold-in visitors
    (`models.fold_in_lists`, built from the Gram matrix of this `regularization`)."""
    pids = np.asarray(user_pids, dtype=np.bytes_)
    order = np.argsort(pids, kind="stable")
    if np.any(pids[order][1:] == pids[order][:-1]):
        raise ValueError("user pids must be unique")
    seen = seen.tocsr()[order]
    seen.sort_indices()
    arrays = {
        "item_ids": np.asarray(item_ids, dtype=np.str_),
        "item_factors": np.ascontiguousarray(item_factors, dtype=np.float32),
        "user_pids": pids[order],
        "user_factors": np.ascontiguousarray(user_factors[order], dtype=np.float32),
        "popularity": np.asarray(popularity, dtype=np.float32),
        "seen_indptr": seen.indptr.astype(np.int64),
        "seen_indices": seen.indices.astype(np.int32),
        "item_length_norm": np.asarray(item_length_norm, dtype=np.float32),
    }
    if arrays["item_factors"].shape[0] != len(arrays["item_ids"]):
        raise ValueError("one item factor row per item id")
    if top_k > 0:
        arrays["user_top"] = precompute_top(
            arrays["item_factors"], arrays["user_factors"], seen, top_k
        )
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    if fold_in_lists > 0:
        if regularization is None:
            raise ValueError("fold-in lists need the model's regularization")
        _, gram_inverse = gram_matrices(arrays["item_factors"], regularization)
        if gram_inverse.size:  # else (lambda 0, dependent factors) serving ranks without
            lists = build_lists(
                arrays["item_factors"], gram_inverse, fold_in_lists, show_progress=show_progress
            )
            save_lists(folder, lists)


def recs_manifest(
    *,
    algorithm: str,
    params: Mapping[str, Any],
    weighting: WeightingParams,
    event_weights: Mapping[str, float],
    data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    train_seconds: float,
) -> dict[str, Any]:
    """The manifest fields serving relies on (kind, version, created are added on write)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}")
    return {
        "format": FORMAT,
        "algorithm": algorithm,
        "params": dict(params),
        "weighting": {"kind": weighting.kind, "k1": weighting.k1, "b": weighting.b},
        "event_weights": dict(event_weights),
        "data": dict(data),
        "metrics": dict(metrics),
        "train_seconds": train_seconds,
    }


def load_recs(folder: Path, *, with_index: bool = False, index_ef: int = 0) -> RecsModel:
    """Memory-map a version folder, checking the manifest and the arrays' shapes; with
    `with_index`, its approximate index too when it has one (searched `index_ef` wide,
    or at the index's default)."""
    manifest = folder_manifest(folder, "recs", FORMAT)
    if manifest.get("algorithm") not in ALGORITHMS:
        raise ArtifactError(f"{folder}: unknown algorithm {manifest.get('algorithm')!r}")
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        try:
            mapped = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{folder}: {name}.npy: {exc}") from exc
        # a plain ndarray over the same mapping: numpy.memmap's indexing is slow per call
        arrays[name] = np.asarray(mapped)
    n_items, n_users = len(arrays["item_ids"]), len(arrays["user_pids"])
    user_top = None
    if (folder / "user_top.npy").is_file():
        user_top = np.asarray(np.load(folder / "user_top.npy", mmap_mode="r", allow_pickle=False))
        if user_top.ndim != 2 or user_top.shape[0] != n_users:
            raise ArtifactError(f"{folder}: user_top has shape {user_top.shape}")
    fold_in_lists = load_lists(folder, n_items)
    if fold_in_lists is not None and manifest["algorithm"] != "als":
        raise ArtifactError(f"{folder}: fold-in lists bound ALS scores only")
    expected = {
        "item_factors": (n_items,),
        "user_factors": (n_users,),
        "popularity": (n_items,),
        "item_length_norm": (n_items,),
        "seen_indptr": (n_users + 1,),
    }
    for name, leading in expected.items():
        if arrays[name].shape[: len(leading)] != leading:
            raise ArtifactError(f"{folder}: {name} has shape {arrays[name].shape}")
    if arrays["item_factors"].shape[1:] != arrays["user_factors"].shape[1:]:
        raise ArtifactError(f"{folder}: user and item factors differ in width")
    model = RecsModel(
        version=str(manifest["version"]),
        manifest=manifest,
        item_ids=arrays["item_ids"],
        item_factors=arrays["item_factors"],
        user_pids=arrays["user_pids"],
        user_factors=arrays["user_factors"],
        popularity=arrays["popularity"],
        seen_indptr=arrays["seen_indptr"],
        seen_indices=arrays["seen_indices"],
        item_length_norm=arrays["item_length_norm"],
        user_top=user_top,
        fold_in_lists=fold_in_lists,
    )
    if with_index:
        from models.ann import EXPANSION_SEARCH, open_index  # serving only

        try:
            model.ann = open_index(folder, index_ef or EXPANSION_SEARCH)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{folder}: approximate index: {exc}") from exc
        if model.ann is not None and (
            len(model.ann) != n_items or model.ann.ndim != model.item_factors.shape[1] + 1
        ):
            raise ArtifactError(f"{folder}: the approximate index does not match the factors")
    return model
