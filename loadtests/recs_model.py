"""A recommender of realistic shape and size for load tests, trained here.

Synthetic interactions with planted taste groups (each visitor shops two of 200
groups, popularity inside a group falls off like a power law), 100,000 items by
default, fitted with implicit's ALS: factors with the structure real ones have, which
is what an approximate index's recall depends on. It is labelled synthetic in its
manifest and is for measuring speed only. Trained visitors are `lt-u<i>`, items
`it-<j>`; user ids are pseudonymized with the server's secret, like training does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from models.ann import add_index
from models.artifacts import write_artifact
from models.fold_in_lists import LIST_LENGTH
from models.interactions import DEFAULT_WEIGHTS
from models.recommender import WeightingParams, recs_manifest, save_recs, weight_matrix

GROUPS = 200
FACTORS = 64
TOP_K = 100  # as `omotenashi train recs` precomputes by default
REGULARIZATION = 0.05


def item_id(row: int) -> str:
    return f"it-{row}"


def trained_visitor(i: int) -> str:
    return f"lt-u{i}"


@dataclass(frozen=True)
class BuiltModel:
    version: str
    seconds: float
    recall_at_10: float | None


def synthetic_interactions(items: int, users: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, GROUPS, items)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(GROUPS + 1))
    rows, cols = [], []
    for user in range(users):
        groups = np.unique(rng.integers(0, GROUPS, 2))  # one group when both draws agree
        members = np.concatenate([order[bounds[g] : bounds[g + 1]] for g in groups])
        weights = 1.0 / np.arange(1, members.size + 1) ** 0.8
        size = min(int(rng.integers(5, 40)), members.size)
        chosen = rng.choice(members, size=size, replace=False, p=weights / weights.sum())
        rows.append(np.full(size, user))
        cols.append(chosen)
    data = np.ones(sum(r.size for r in rows), np.float32)
    matrix = sp.csr_matrix(
        (data, (np.concatenate(rows), np.concatenate(cols))), shape=(users, items)
    )
    matrix.sum_duplicates()
    return matrix


def build(root: Path, secret: str, items: int, users: int, index: bool) -> BuiltModel:
    started = time.perf_counter()
    matrix = synthetic_interactions(items, users)
    weighting = WeightingParams("none")
    _, length_norm = weight_matrix(matrix, weighting)
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=FACTORS, regularization=REGULARIZATION, iterations=8, random_state=0
        )
        als.fit(matrix, show_progress=True)
    pseudonymize = Pseudonymizer(Keyring.from_secret(secret).pseudonyms)
    item_factors = np.asarray(als.item_factors)

    def files(folder: Path) -> None:
        save_recs(
            folder,
            item_ids=[item_id(j) for j in range(items)],
            item_factors=item_factors,
            user_pids=[pseudonymize(trained_visitor(u)) for u in range(users)],
            user_factors=np.asarray(als.user_factors),
            seen=matrix,
            popularity=np.asarray((matrix > 0).sum(axis=0)).ravel(),
            item_length_norm=length_norm,
            top_k=TOP_K,
            fold_in_lists=LIST_LENGTH,
            regularization=REGULARIZATION,
            show_progress=True,
        )
        if index:
            # the manifest is written after the files: the recall goes into it
            recall = add_index(folder, item_factors, np.asarray(als.user_factors))
            manifest["metrics"]["ann_recall@10"] = round(recall, 4)

    manifest = recs_manifest(
        algorithm="als",
        params={
            "factors": FACTORS,
            "iterations": 8,
            "regularization": REGULARIZATION,
            "alpha": 1.0,
        },
        weighting=weighting,
        event_weights=DEFAULT_WEIGHTS,
        data={
            "source": "synthetic (loadtests.recs_model): for load tests only",
            "users": users,
            "items": items,
            "interactions": int(matrix.nnz),
        },
        metrics={},
        train_seconds=0.0,
    )
    version = write_artifact(root, "recs", files, manifest)
    recall_at_10 = manifest["metrics"].get("ann_recall@10")
    return BuiltModel(version, time.perf_counter() - started, recall_at_10)
