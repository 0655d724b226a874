"""Small recommender artifacts with planted structure, built in the test run.

60 items in three categories of 20 (`a`, `b`, `c`); each of 90 users likes one
category and has touched 6 of its items. Users' ids are pseudonymized with the test
secret, as training does, so the served app finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from fastapi import FastAPI
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from engine.keyring import Keyring
from engine.privacy.pseudonym import Pseudonymizer
from models.artifacts import write_artifact
from models.interactions import DEFAULT_WEIGHTS
from models.recommender import WeightingParams, recs_manifest, save_recs, weight_matrix
from tests.support.waiting import until

CATEGORIES = ("a", "b", "c")
ITEMS_PER_CATEGORY = 20
N_USERS = 90
REGULARIZATION = 0.05


@dataclass(frozen=True)
class PlantedData:
    item_ids: list[str]
    user_ids: list[str]  # raw client ids
    user_items: sp.csr_matrix

    def category_of(self, item_id: str) -> str:
        return item_id.split("-")[0]


def planted_data(seed: int = 11) -> PlantedData:
    rng = np.random.default_rng(seed)
    item_ids = [f"{c}-{j:02d}" for c in CATEGORIES for j in range(ITEMS_PER_CATEGORY)]
    rows, cols = [], []
    for user in range(N_USERS):
        start = (user % 3) * ITEMS_PER_CATEGORY
        chosen = rng.choice(ITEMS_PER_CATEGORY, size=6, replace=False) + start
        rows += [user] * 6
        cols += chosen.tolist()
    matrix = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(N_USERS, len(item_ids))
    )
    return PlantedData(item_ids, [f"user-{u}" for u in range(N_USERS)], matrix)


def fit_als(data: PlantedData, *, factors: int = 8, seed: int = 1) -> AlternatingLeastSquares:
    with threadpool_limits(1, "blas"):  # implicit warns (an error in tests) otherwise
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=REGULARIZATION,
            alpha=1.0,
            iterations=8,
            random_state=seed,
        )
        model.fit(data.user_items, show_progress=False)
    return model


def write_recs(
    root: Path,
    data: PlantedData,
    model: AlternatingLeastSquares,
    secret: str,
    top_k: int = 0,
    fold_in_lists: int = 0,
) -> str:
    """An artifact as training writes it (with `top_k`, each user's best items
    precomputed; with `fold_in_lists`, each item's lists for fold-in); returns the
    version."""
    pseudonymize = Pseudonymizer(Keyring.from_secret(secret).pseudonyms)
    weighting = WeightingParams("none")
    _, length_norm = weight_matrix(data.user_items, weighting)

    def files(folder: Path) -> None:
        save_recs(
            folder,
            item_ids=data.item_ids,
            item_factors=np.asarray(model.item_factors),
            user_pids=[pseudonymize(u) for u in data.user_ids],
            user_factors=np.asarray(model.user_factors),
            seen=data.user_items,
            popularity=np.asarray((data.user_items > 0).sum(axis=0)).ravel(),
            item_length_norm=length_norm,
            top_k=top_k,
            fold_in_lists=fold_in_lists,
            regularization=REGULARIZATION,
        )

    manifest = recs_manifest(
        algorithm="als",
        params={"factors": model.factors, "regularization": REGULARIZATION, "alpha": 1.0},
        weighting=weighting,
        event_weights=DEFAULT_WEIGHTS,
        data={"users": N_USERS, "items": len(data.item_ids)},
        metrics={},
        train_seconds=0.0,
    )
    return write_artifact(root, "recs", files, manifest)


async def wait_for_recs(app: FastAPI, version: str) -> None:
    """Until the app's worker serves recommender `version` (it polls for it)."""
    await until(
        lambda: app.state.services.recs.version == version,
        failure=f"worker did not load {version}",
    )
