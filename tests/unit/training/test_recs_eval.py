"""Leave-last-out and the top-k metrics, on cases small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from training.recs_eval import (
    RankingMetrics,
    Split,
    constant_scores,
    evaluate,
    factor_scores,
    item_popularity,
    leave_last_out,
    popularity_baseline,
    ranking_metrics,
    recommend,
)


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_leave_last_out_holds_out_the_latest_with_ties_to_the_larger_item() -> None:
    users = ids(0, 0, 0, 1, 1, 1, 2)
    items = ids(3, 1, 2, 4, 0, 2, 1)
    times = np.array([5.0, 9.0, 1.0, 7.0, 7.0, 2.0, 3.0])
    weights = np.arange(1, 8, dtype=np.float32)
    split = leave_last_out(users, items, weights, times, (3, 5))
    # user 0: item 1 is latest; user 1: items 4 and 0 tie, 4 is larger; user 2 has one
    assert split.users.tolist() == [0, 1]
    assert split.held_out.tolist() == [1, 4]
    expected = np.zeros((3, 5), np.float32)
    expected[0, 3], expected[0, 2] = 1, 3
    expected[1, 0], expected[1, 2] = 5, 6
    expected[2, 1] = 7
    np.testing.assert_array_equal(split.train.toarray(), expected)


def test_item_popularity_counts_distinct_users_not_weight() -> None:
    matrix = sp.csr_matrix(np.array([[5.0, 0, 1], [2.0, 0, 0]], np.float32))
    assert item_popularity(matrix).tolist() == [2.0, 0.0, 1.0]


def test_recommend_masks_seen_items_and_orders_best_first_ties_by_lower_column() -> None:
    seen = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32))
    scores = np.array([3.0, 9.0, 3.0, 1.0, 5.0], np.float32)
    top = recommend(constant_scores(scores), ids(0, 1), seen, k=3)
    assert top.tolist() == [[4, 0, 2], [1, 4, 0]]


def test_recommend_pads_with_minus_one_when_candidates_run_out() -> None:
    seen = sp.csr_matrix(np.array([[1, 0, 1]], np.float32))
    top = recommend(constant_scores(np.ones(3, np.float32)), ids(0), seen, k=4)
    assert top.tolist() == [[1, -1, -1, -1]]


def test_recommend_in_chunks_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(50, 4)), rng.normal(size=(30, 4))
    seen = sp.random(50, 30, density=0.2, format="csr", random_state=1)
    score = factor_scores(users.astype(np.float32), items.astype(np.float32))
    whole = recommend(score, np.arange(50), seen, k=10)
    monkeypatch.setattr("training.recs_eval.CHUNK_CELLS", 7 * 30)  # 7 users a chunk
    np.testing.assert_array_equal(recommend(score, np.arange(50), seen, k=10), whole)
    for user in (0, 17, 49):  # and equals a direct per-user ranking
        direct = users[user] @ items.T
        direct[seen[user].indices] = -np.inf
        assert whole[user].tolist() == np.argsort(-direct, kind="stable")[:10].tolist()


def test_ranking_metrics_by_hand() -> None:
    recommended = np.array([[7, 3, 5], [1, 2, 4], [6, 8, -1], [5, 9, 2]], np.int64)
    held_out = ids(3, 9, 8, 0)  # ranks 1, miss, 1, miss
    metrics = ranking_metrics(recommended, held_out, n_items=20)
    assert metrics.k == 3
    assert metrics.users == 4
    assert metrics.hit_rate == pytest.approx(2 / 4)
    assert metrics.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(3)) / 4)
    assert metrics.precision == pytest.approx(2 / 3 / 4)
    # distinct shown: 7 3 5 1 2 4 6 8 9
    assert metrics.coverage == pytest.approx(9 / 20)
    assert metrics.as_dict() == {
        "hit_rate@3": metrics.hit_rate,
        "ndcg@3": metrics.ndcg,
        "precision@3": metrics.precision,
        "coverage@3": metrics.coverage,
    }


def ndcg_direct(ranked: list[int], relevant: set[int], k: int) -> float:
    """NDCG@k by its definition: DCG of binary gains over the DCG of the ideal order."""
    dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def test_ndcg_equals_the_direct_formula_on_random_rankings() -> None:
    rng = np.random.default_rng(5)
    recommended = np.stack([rng.permutation(40)[:10] for _ in range(200)]).astype(np.int64)
    held_out = rng.integers(0, 40, 200)
    metrics = ranking_metrics(recommended, held_out, n_items=40)
    direct = [
        ndcg_direct(row.tolist(), {int(item)}, 10)
        for row, item in zip(recommended, held_out, strict=True)
    ]
    assert metrics.ndcg == pytest.approx(float(np.mean(direct)), rel=1e-12)
    assert 0 < metrics.ndcg < metrics.hit_rate  # some hits, not all at rank 0


def test_no_user_to_evaluate_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no user to evaluate"):
        ranking_metrics(np.zeros((0, 10), np.int64), ids(), n_items=5)


def test_popularity_baseline_ranks_by_distinct_users_in_training() -> None:
    train = sp.csr_matrix(
        np.array(
            [[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]],
            np.float32,
        )
    )
    split = Split(train=train, users=ids(1, 3), held_out=ids(1, 0))
    metrics = popularity_baseline(split, k=1)
    # popularity 3, 2, 1, 1: user 1 (has 0 and 2) gets item 1, user 3 gets item 0
    assert metrics == RankingMetrics(
        k=1, users=2, hit_rate=1.0, ndcg=1.0, precision=1.0, coverage=0.5
    )


def test_a_model_that_scores_the_held_out_item_first_is_perfect() -> None:
    train = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    split = Split(train=train, users=ids(0, 1), held_out=ids(2, 0))
    user_factors = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    item_factors = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], np.float32)
    metrics = evaluate(split, factor_scores(user_factors, item_factors), k=2)
    assert (metrics.hit_rate, metrics.ndcg, metrics.precision) == (1.0, 1.0, 0.5)
    assert metrics.coverage == 1.0
