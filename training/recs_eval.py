"""Offline evaluation of the recommender: leave-last-out, top-k ranking metrics, and the
most-popular baseline every model has to beat.

Leave-last-out (as in He et al., "Neural Collaborative Filtering", WWW 2017, but
ranking *all* items rather than a sample of 100, which overstates every model): each
user with at least two interactions loses their latest one to the test side; the
model is fitted on the rest and must rank the held-out item among every item the user
did not interact with in training (training items are masked, as serving filters what
a visitor has already seen). One relevant item per user makes the metrics simple:

- hit_rate@k: share of users whose held-out item is in their top k;
- ndcg@k: mean of 1 / log2(rank + 2) over users, rank counted from 0 (the ideal DCG
  of a single relevant item is 1, so DCG is NDCG; Jarvelin & Kekalainen 2002);
- precision@k: hits / k, i.e. hit_rate / k with one relevant item;
- coverage@k: distinct items in anyone's top k over all items (catalogue coverage),
  which tells a model that knows the catalogue from one that repeats the bestsellers.

Pure functions on numpy and scipy arrays: no I/O, no model library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

K = 10
# scores are computed for this many (user, item) cells at a time: 64 MiB of float32
CHUNK_CELLS = 1 << 24

ScoreChunk = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Split:
    """Training interactions (users x items) and each evaluated user's held-out item."""

    train: sp.csr_matrix
    users: npt.NDArray[np.int64]
    held_out: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    """Top-k metrics averaged over the evaluated users (see the module docstring)."""

    k: int
    users: int
    hit_rate: float
    ndcg: float
    precision: float
    coverage: float

    def as_dict(self) -> dict[str, float]:
        """`{"hit_rate@10": ..., "ndcg@10": ..., "precision@10": ..., "coverage@10": ...}`"""
        return {
            f"hit_rate@{self.k}": self.hit_rate,
            f"ndcg@{self.k}": self.ndcg,
            f"precision@{self.k}": self.precision,
            f"coverage@{self.k}": self.coverage,
        }


def leave_last_out(
    users: npt.NDArray[np.int64],
    items: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float32],
    timestamps: npt.NDArray[np.float64],
    shape: tuple[int, int],
) -> Split:
    """Hold out each user's latest interaction (ties: the larger item column) when the
    user has at least two; the rest, users with one interaction included, is training.

    Expects one row per (user, item), as `training.interactions` gives them.
    """
    order = np.lexsort((items, timestamps, users))
    ordered_users = users[order]
    last = np.append(ordered_users[1:] != ordered_users[:-1], True)
    counts = np.bincount(users, minlength=shape[0])
    held = order[last & (counts[ordered_users] >= 2)]  # in user order: users sort first
    keep = np.ones(len(users), dtype=bool)
    keep[held] = False
    train = sp.csr_matrix(
        (weights[keep].astype(np.float32), (users[keep], items[keep])), shape=shape
    )
    return Split(
        train=train,
        users=users[held].astype(np.int64),
        held_out=items[held].astype(np.int64),
    )


def item_popularity(user_items: sp.csr_matrix) -> npt.NDArray[np.float32]:
    """Distinct users per item: the most-popular baseline's score, and the popularity
    serving falls back to for visitors it knows nothing about."""
    counts = np.bincount(user_items.tocoo().col, minlength=user_items.shape[1])
    return counts.astype(np.float32)


def factor_scores(
    user_factors: npt.NDArray[np.float32], item_factors: npt.NDArray[np.float32]
) -> ScoreChunk:
    """Scores of a factor model for a chunk of users: U[chunk] @ Y.T."""
    items_t = np.ascontiguousarray(item_factors.T, dtype=np.float32)

    def scores(users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = user_factors[users].astype(np.float32) @ items_t
        return out

    return scores


def constant_scores(item_scores: npt.NDArray[np.float32]) -> ScoreChunk:
    """The same scores for every user (the most-popular baseline)."""

    def scores(users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return np.tile(item_scores.astype(np.float32), (len(users), 1))

    return scores


def recommend(
    score_chunk: ScoreChunk,
    users: npt.NDArray[np.int64],
    seen: sp.csr_matrix,
    k: int = K,
) -> npt.NDArray[np.int64]:
    """Each user's top `k` item columns, best first (ties by lower column, as serving's
    `top_n`), skipping the user's `seen` items; -1 pads a user with fewer candidates.

    Users are scored a chunk at a time (U_chunk @ Y.T, mask, partition), so memory
    stays bounded and no Python loop runs over items, nor over users within a chunk.
    """
    n_items = seen.shape[1]
    k_eff = min(k, n_items)
    out = np.full((len(users), k), -1, dtype=np.int64)
    if k_eff <= 0 or not len(users):
        return out
    chunk = max(1, CHUNK_CELLS // max(n_items, 1))
    seen = seen.tocsr()
    for start in range(0, len(users), chunk):
        batch = users[start : start + chunk]
        scores = score_chunk(batch).astype(np.float32, copy=True)
        mask = seen[batch].tocoo()
        scores[mask.row, mask.col] = -np.inf
        top = _top_columns(scores, k_eff)
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        best = np.take_along_axis(top, order, axis=1)
        best_scores = np.take_along_axis(top_scores, order, axis=1)
        out[start : start + len(batch), :k_eff] = np.where(best_scores > -np.inf, best, -1)
    return out


def _top_columns(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """Per row the columns of the `k` best scores, unordered; among columns tied at the
    k-th score the lowest win, so a baseline full of ties (popularity counts) ranks
    the same way on every run and machine."""
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    needed = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= needed))
    columns: npt.NDArray[np.int64] = np.nonzero(chosen)[1].reshape(len(scores), k)
    return columns


def ranking_metrics(
    recommended: npt.NDArray[np.int64], held_out: npt.NDArray[np.int64], n_items: int
) -> RankingMetrics:
    """Hit rate, NDCG, precision and coverage at k = `recommended.shape[1]`, with one
    relevant item per user (`held_out`)."""
    users, k = recommended.shape
    if users == 0:
        raise ValueError("no user to evaluate: every user has fewer than two interactions")
    hits = recommended == held_out[:, None]
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    shown = recommended[recommended >= 0]
    return RankingMetrics(
        k=k,
        users=users,
        hit_rate=float(hits.any(axis=1).mean()),
        ndcg=float((hits * discount).sum(axis=1).mean()),
        precision=float(hits.sum(axis=1).mean() / k),
        coverage=float(np.unique(shown).size / n_items) if n_items else 0.0,
    )


def evaluate(split: Split, score_chunk: ScoreChunk, k: int = K) -> RankingMetrics:
    """A model's metrics on a split: recommend for the evaluated users, compare."""
    recommended = recommend(score_chunk, split.users, split.train, k)
    return ranking_metrics(recommended, split.held_out, split.train.shape[1])


def popularity_baseline(split: Split, k: int = K) -> RankingMetrics:
    """The most-popular baseline: every user gets the items most users had in training."""
    return evaluate(split, constant_scores(item_popularity(split.train)), k)
