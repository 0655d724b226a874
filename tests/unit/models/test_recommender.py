"""The shared recommender agrees with implicit: weighting, fold-in, top-n, similar items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import bm25_weight, tfidf_weight
from threadpoolctl import threadpool_limits

from models.artifacts import ArtifactError, write_artifact
from models.recommender import (
    RecsModel,
    WeightingParams,
    load_recs,
    precompute_top,
    recs_manifest,
    save_recs,
    top_n,
    weight_matrix,
)


@pytest.fixture(autouse=True)
def one_blas_thread() -> object:
    """implicit warns (an error here) when BLAS would run threads under its own."""
    with threadpool_limits(1, "blas"):
        yield


def interactions(seed: int = 3, users: int = 60, items: int = 45) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < 0.15) * rng.integers(1, 5, (users, items))
    dense[:, 0] += 1  # every user has at least one item
    return sp.csr_matrix(dense.astype(np.float32))


def build(
    tmp_path: Path, model: object, user_items: sp.csr_matrix, weighting: WeightingParams, **params
) -> RecsModel:
    _, length_norm = weight_matrix(user_items, weighting)
    n_users, n_items = user_items.shape

    def files(folder: Path) -> None:
        save_recs(
            folder,
            item_ids=[f"i{j}" for j in range(n_items)],
            item_factors=np.asarray(model.item_factors),  # type: ignore[attr-defined]
            user_pids=[f"u{u:03d}" for u in range(n_users)],
            user_factors=np.asarray(model.user_factors),  # type: ignore[attr-defined]
            seen=user_items,
            popularity=np.asarray((user_items > 0).sum(axis=0)).ravel(),
            item_length_norm=length_norm,
        )

    manifest = recs_manifest(
        algorithm="bpr" if isinstance(model, BayesianPersonalizedRanking) else "als",
        params=params,
        weighting=weighting,
        event_weights={"click": 1.0},
        data={},
        metrics={},
        train_seconds=0.0,
    )
    version = write_artifact(tmp_path, "recs", files, manifest)
    return load_recs(tmp_path / "recs" / version)


@pytest.mark.parametrize("kind", ["bm25", "tfidf"])
def test_weighting_matches_implicit_on_the_item_user_matrix(kind: str) -> None:
    user_items = interactions()
    ours, _ = weight_matrix(user_items, WeightingParams(kind, k1=50.0, b=0.7))  # type: ignore[arg-type]
    if kind == "bm25":
        theirs = bm25_weight(user_items.T.tocoo(), K1=50.0, B=0.7).T.tocsr()
    else:
        theirs = tfidf_weight(user_items.T.tocoo()).T.tocsr()
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-5)


@pytest.mark.parametrize("kind", ["none", "bm25", "tfidf"])
@pytest.mark.parametrize("factors", [8, 32], ids=["history-vs-8", "low-rank-vs-32"])
def test_fold_in_equals_implicits_recalculate_user(tmp_path: Path, kind: str, factors: int) -> None:
    # users have about 8 items: with 32 factors every fold-in takes the low-rank path
    raw = interactions()
    weighting = WeightingParams(kind)  # type: ignore[arg-type]
    weighted, _ = weight_matrix(raw, weighting)
    als = AlternatingLeastSquares(
        factors=factors, regularization=0.05, alpha=2.0, iterations=5, random_state=1
    )
    als.fit(weighted, show_progress=False)
    model = build(tmp_path, als, raw, weighting, regularization=0.05, alpha=2.0)
    for user in (0, 7, 31):
        row = raw[user]
        # the same history as the visitor's live interactions, one row per item
        ours = model.fold_in(row.indices.astype(np.int64), row.data.astype(np.float64))
        theirs = als.recalculate_user(user, weighted[user])
        np.testing.assert_allclose(ours, theirs, rtol=2e-3, atol=2e-4)


def test_fold_in_sums_repeated_items_before_weighting(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=6, iterations=3, random_state=2)
    als.fit(raw, show_progress=False)
    model = build(tmp_path, als, raw, WeightingParams(), regularization=0.01)
    once = model.fold_in(np.array([4, 9]), np.array([3.0, 1.0]))
    split = model.fold_in(np.array([4, 9, 4]), np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(once, split, rtol=1e-6)


def test_top_n_for_a_trained_user_equals_implicits_recommend(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=8, iterations=5, random_state=4)
    als.fit(raw, show_progress=False)
    model = build(tmp_path, als, raw, WeightingParams(), regularization=0.01)
    for user in range(0, 60, 9):
        row = model.user_row(f"u{user:03d}")
        assert row == user  # pids were written sorted: u000 .. u059
        rows, scores = top_n(model.scores(model.user_factors[row]), 10, model.seen_rows(row))
        ids, theirs = als.recommend(user, raw[user], N=10, filter_already_liked_items=True)
        np.testing.assert_array_equal(rows, ids)
        np.testing.assert_allclose(scores, theirs, rtol=1e-5)


def test_precomputed_top_lists_equal_implicits_recommend(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=8, iterations=5, random_state=4)
    als.fit(raw, show_progress=False)
    top = precompute_top(
        np.asarray(als.item_factors), np.asarray(als.user_factors), raw, 12, chunk=7
    )
    assert top.shape == (60, 12)
    ids, _ = als.recommend(np.arange(60), raw, N=12, filter_already_liked_items=True)
    np.testing.assert_array_equal(top, ids)
    # a user who has seen all but 3 items gets 3 rows and -1 padding
    crowded = raw.tolil()
    crowded[0, :3] = 0.0
    crowded[0, 3:] = 1.0
    seen = crowded.tocsr()
    seen.eliminate_zeros()
    short = precompute_top(np.asarray(als.item_factors), np.asarray(als.user_factors), seen, 12)
    assert sorted(short[0][:3].tolist()) == [0, 1, 2]
    assert short[0][3:].tolist() == [-1] * 9


def test_bpr_scores_include_the_item_bias(tmp_path: Path) -> None:
    raw = interactions()
    bpr = BayesianPersonalizedRanking(factors=8, iterations=20, random_state=5)
    bpr.fit(raw, show_progress=False)
    model = build(tmp_path, bpr, raw, WeightingParams(), regularization=0.01)
    ids, theirs = bpr.recommend(3, raw[3], N=5, filter_already_liked_items=True)
    rows, scores = top_n(model.scores(model.user_factors[3]), 5, model.seen_rows(3))
    np.testing.assert_array_equal(rows, ids)
    np.testing.assert_allclose(scores, theirs, rtol=1e-5)
    assert model.fold_in(np.array([1, 2]), np.ones(2))[-1] == 1.0


def test_similar_items_equal_implicits_cosine_neighbours(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=8, iterations=5, random_state=6)
    als.fit(raw, show_progress=False)
    model = build(tmp_path, als, raw, WeightingParams(), regularization=0.01)
    ids, theirs = als.similar_items(5, N=6)
    rows, scores = top_n(model.similar_scores(5), 6)
    np.testing.assert_array_equal(rows, ids)
    np.testing.assert_allclose(scores, theirs, rtol=1e-4)


def test_top_n_skips_excluded_and_minus_infinity_and_breaks_ties_by_row() -> None:
    scores = np.array([1.0, 5.0, 5.0, -np.inf, 3.0, 2.0], np.float32)
    rows, best = top_n(scores.copy(), 3, np.array([4]))
    assert rows.tolist() == [1, 2, 5]
    assert best.tolist() == [5.0, 5.0, 2.0]
    rows, _ = top_n(scores.copy(), 10)
    assert rows.tolist() == [1, 2, 4, 5, 0]  # fewer candidates than asked: all of them
    ties = np.array([3.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0], np.float32)
    for _ in range(5):  # the rows tied at the cut are always the lowest ones
        assert top_n(ties.copy(), 4)[0].tolist() == [0, 5, 1, 2]


def test_unknown_pid_has_no_row_and_unknown_items_are_left_out(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=4, iterations=2, random_state=7)
    als.fit(raw, show_progress=False)
    model = build(tmp_path, als, raw, WeightingParams(), regularization=0.01)
    assert model.user_row("nobody") is None
    assert model.user_row("u059") == 59
    assert model.rows_of(["i3", "zzz", "i0"]).tolist() == [3, 0]


def test_a_manifest_of_another_kind_or_format_is_refused(tmp_path: Path) -> None:
    raw = interactions()
    als = AlternatingLeastSquares(factors=4, iterations=2, random_state=8)
    als.fit(raw, show_progress=False)
    model = build(tmp_path, als, raw, WeightingParams(), regularization=0.01)
    folder = tmp_path / "recs" / model.version
    text = (folder / "manifest.json").read_text().replace('"format": 1', '"format": 99')
    (folder / "manifest.json").write_text(text)
    with pytest.raises(ArtifactError, match="format"):
        load_recs(folder)
    (folder / "manifest.json").write_text(text.replace('"format": 99', '"format": 1'))
    np.save(folder / "popularity.npy", np.zeros(3, np.float32))
    with pytest.raises(ArtifactError, match="popularity"):
        load_recs(folder)
