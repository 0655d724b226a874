"""Training the recommender: it learns planted taste groups that popularity cannot see,
and the artifact it writes serves exactly what the fitted model recommends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.recommender import WeightingParams, load_recs, top_n
from training.interactions import Interactions
from training.recs_train import (
    DEFAULT_PARAMS,
    RecsParams,
    TrainedRecs,
    check_device,
    encode,
    format_metrics,
    save_trained,
    train_recs,
)

GROUPS, ITEMS_PER_GROUP, USERS = 4, 15, 240
FAST = RecsParams(factors=8, iterations=8, regularization=0.1, seed=3)


def planted(seed: int = 11) -> Interactions:
    """Four taste groups, each with its own 15 items; every user picks 8 items of their
    group and one random item anywhere, at random times. Group items are about equally
    popular overall, so popularity cannot tell a user's group, factors can."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for user in range(USERS):
        group = user % GROUPS
        own = rng.choice(ITEMS_PER_GROUP, 8, replace=False) + group * ITEMS_PER_GROUP
        noise = rng.integers(0, GROUPS * ITEMS_PER_GROUP)
        picks = np.unique(np.append(own, noise))
        users += [f"user{user:03d}"] * len(picks)
        items += [f"item{item:02d}" for item in picks]
        times += rng.permutation(len(picks)).astype(float).tolist()
    return Interactions(
        users=np.asarray(users, dtype=np.str_),
        items=np.asarray(items, dtype=np.str_),
        weights=np.ones(len(users), np.float32),
        timestamps=np.asarray(times, np.float64),
    )


@pytest.fixture(scope="module")
def trained() -> TrainedRecs:
    return train_recs(encode(planted()), FAST, evaluate=True)


def test_als_beats_popularity_on_planted_groups(trained: TrainedRecs) -> None:
    assert trained.evaluation is not None
    model, baseline = trained.evaluation.model, trained.evaluation.popularity
    assert model.users == USERS
    assert model.ndcg > 2 * baseline.ndcg
    assert model.hit_rate > 0.6
    assert model.coverage > baseline.coverage
    table = format_metrics(trained.evaluation, "als")
    assert table.splitlines()[0].split() == ["metric", "als", "popularity"]
    assert [line.split()[0] for line in table.splitlines()[2:]] == [
        "hit_rate@10",
        "ndcg@10",
        "precision@10",
        "coverage@10",
    ]


def test_bpr_trains_and_beats_popularity_too() -> None:
    params = RecsParams(
        algorithm="bpr", factors=8, iterations=60, learning_rate=0.05, regularization=0.01, seed=3
    )
    result = train_recs(encode(planted()), params, evaluate=True)
    assert result.evaluation is not None
    assert result.evaluation.model.ndcg > result.evaluation.popularity.ndcg
    assert result.fit.item_factors.shape == (GROUPS * ITEMS_PER_GROUP, 9)  # + item bias


def test_the_saved_model_is_fit_on_every_interaction(trained: TrainedRecs) -> None:
    data = trained.data
    assert trained.seen.nnz == len(planted())
    assert trained.fit.user_factors.shape == (USERS, FAST.factors)
    assert trained.fit.item_factors.shape == (len(data.item_ids), FAST.factors)
    np.testing.assert_array_equal(
        trained.popularity, np.bincount(data.cols, minlength=len(data.item_ids))
    )


def test_artifact_round_trip_serves_what_implicit_recommends(
    tmp_path: Path, trained: TrainedRecs
) -> None:
    version = save_trained(
        tmp_path, trained, event_weights={"page_view": 1.0}, data={"source": "planted"}
    )
    model = load_recs(tmp_path / "recs" / version)
    assert model.algorithm == "als"
    assert model.params["regularization"] == FAST.regularization
    assert model.params["alpha"] == FAST.alpha
    assert model.manifest["data"]["interactions"] == len(planted())
    assert model.manifest["metrics"]["protocol"] == "leave-last-out"
    assert model.item_ids.tolist() == trained.data.item_ids.tolist()
    np.testing.assert_array_equal(model.popularity, trained.popularity)
    seen = trained.seen
    for user in (0, 57, 239):
        pid = str(trained.data.user_ids[user])
        row = model.user_row(pid)
        assert row is not None
        assert set(model.seen_rows(row).tolist()) == set(seen[user].indices.tolist())
        rows, scores = top_n(model.scores(model.user_factors[row]), 10, model.seen_rows(row))
        ids, theirs = trained.fit.model.recommend(
            user, seen[user], N=10, filter_already_liked_items=True
        )
        np.testing.assert_array_equal(rows, ids)
        np.testing.assert_allclose(scores, theirs, rtol=1e-5)


def test_item_columns_follow_numeric_ids_when_every_id_is_a_number() -> None:
    interactions = Interactions(
        users=np.array(["a", "a", "b"], dtype=np.str_),
        items=np.array(["10", "9", "100"], dtype=np.str_),
        weights=np.ones(3, np.float32),
        timestamps=np.zeros(3),
    )
    data = encode(interactions)
    assert data.item_ids.tolist() == ["9", "10", "100"]
    assert data.cols.tolist() == [1, 0, 2]
    assert data.summary() == {"users": 2, "items": 3, "interactions": 3, "density": 0.5}


def test_bpr_manifest_params_carry_alpha_one_and_the_learning_rate() -> None:
    params = RecsParams(algorithm="bpr", alpha=40.0, learning_rate=0.02)
    assert params.manifest_params()["alpha"] == 1.0
    assert params.manifest_params()["learning_rate"] == 0.02
    assert "learning_rate" not in DEFAULT_PARAMS["als"].manifest_params()


@pytest.mark.parametrize(
    "changes",
    [{"factors": 0}, {"iterations": -1}, {"regularization": -0.1}, {"alpha": 0.0}],
)
def test_out_of_range_params_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RecsParams(**changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bm25"):
        RecsParams(weighting=WeightingParams("bm25", b=1.5))


def test_gpu_without_cuda_fails_clearly() -> None:
    import implicit.gpu

    if implicit.gpu.HAS_CUDA:
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA"):
        check_device("gpu")
    check_device("cpu")
