"""The fold-in lists hold each item's best items by y_i'G^-1 y_j; no item scores above
its upper bound or, outside a visitor's candidates, above the outside bound; and the
pruned exact top n is the brute-force top n: all checked by brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import fold_in_lists
from models.artifacts import ArtifactError
from models.fold_in import gram_matrices, solve
from models.fold_in_lists import (
    BOUNDS_FILE,
    SCORES_FILE,
    Candidates,
    FoldInLists,
    build_lists,
    exact_top,
    load_lists,
    save_lists,
)

ITEMS, FACTORS = 120, 8


def factors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(ITEMS, FACTORS)) * rng.gamma(1.0, 1.0, size=(ITEMS, 1))
    y[7] = 0.0  # an item nobody interacted with: it ties with every other such item
    y[9] = 0.0
    return y.astype(np.float32)


def item_scores(y: np.ndarray) -> np.ndarray:
    _, inverse = gram_matrices(y, 0.1)
    return np.asarray((y.astype(np.float64) @ inverse) @ y.T.astype(np.float64))


@pytest.mark.parametrize("length", [1, 10, ITEMS - 1, ITEMS, ITEMS + 5])
def test_each_list_is_its_items_best_by_the_item_to_item_score(length: int) -> None:
    y = factors()
    lists = build_lists(y, gram_matrices(y, 0.1)[1], length)
    s = item_scores(y)
    kept = min(length, ITEMS)
    assert lists.rows.shape == (ITEMS, kept)
    assert lists.rows.dtype == np.int32
    for i in range(ITEMS):
        listed = lists.rows[i]
        # the best scores, best first (float32 against float64: to a tolerance)
        best = np.sort(s[i])[::-1][:kept]
        np.testing.assert_allclose(s[i, listed], best, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(lists.scores[i], s[i, listed], rtol=1e-4, atol=1e-6)
        assert len(set(listed.tolist())) == kept
        rest = np.setdiff1d(np.arange(ITEMS), listed)
        if rest.size:
            assert lists.ceiling[i] == pytest.approx(s[i, rest].max(), rel=1e-4, abs=1e-5)
            assert lists.floor[i] <= s[i, rest].min() + 1e-5
    assert lists.complete == (length >= ITEMS)
    # items without factors score 0 with everything: ties go to the lower row
    assert lists.rows[7].tolist() == sorted(lists.rows[7].tolist())


@settings(max_examples=150, deadline=None)
@given(
    history=st.lists(st.integers(0, ITEMS - 1), min_size=1, max_size=12, unique=True),
    confidence=st.lists(st.sampled_from([0.0, 1.0, 2.0, 7.5, 40.0]), min_size=12, max_size=12),
    length=st.sampled_from([2, 6, 20, ITEMS]),
    n=st.integers(1, 15),
    dropped=st.lists(st.integers(0, ITEMS - 1), max_size=20),
    batch=st.sampled_from([1, fold_in_lists.FIRST_BATCH]),  # 1: prune from 4n candidates
)
def test_bounds_hold_and_the_pruned_top_n_is_the_exact_one(
    history: list[int],
    confidence: list[float],
    length: int,
    n: int,
    dropped: list[int],
    batch: int,
) -> None:
    y = factors(1)
    gram, inverse = gram_matrices(y, 0.1)
    lists = build_lists(y, inverse, length)
    rows = np.array(history, dtype=np.int64)
    x, w = solve(gram, inverse, y[rows].astype(np.float64), np.array(confidence[: rows.size]))
    vector = x.astype(np.float32)
    scores = y @ vector
    found = lists.candidates(rows, w)
    assert np.array_equal(found.rows, np.unique(lists.rows[rows]))
    assert np.all(scores[found.rows] <= found.upper + found.margin)
    # each upper bound, term by term: the listed score where the item is on a list,
    # the list's ceiling (or floor, for a negative weight) where it is not
    s = item_scores(y)
    for j, upper in zip(found.rows.tolist(), found.upper.tolist(), strict=True):
        expected = 0.0
        for i, weight in zip(rows.tolist(), w.tolist(), strict=True):
            if j in lists.rows[i]:
                expected += weight * s[i, j]
            else:
                expected += weight * (lists.ceiling[i] if weight > 0 else lists.floor[i])
        assert upper == pytest.approx(expected, rel=1e-4, abs=1e-4)
    outside = np.setdiff1d(np.arange(ITEMS), found.rows)
    if outside.size:
        assert scores[outside].max() <= found.outside + found.margin
    # filters drop some candidates; what is left is ranked, pruned, exactly
    keep = ~np.isin(found.rows, dropped)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fold_in_lists, "FIRST_BATCH", batch)
        got = exact_top(found.subset(keep), y, vector, n)
    if got is None:
        return
    allowed = np.setdiff1d(np.arange(ITEMS), np.intersect1d(found.rows[~keep], dropped))
    expected = allowed[np.lexsort((allowed, -scores[allowed]))][:n]
    assert got[0].tolist() == expected.tolist()
    np.testing.assert_allclose(got[1], scores[expected], rtol=1e-6)


def test_the_bounds_are_tight_enough_to_vouch_for_most_short_histories() -> None:
    # on a model with the structure real ones have, lists of a third of the catalogue
    # vouch for nearly every 3-item visitor's top 10 and prune most candidates;
    # loose bounds (say +inf) would vouch for none and score every candidate
    y = factors(2)
    gram, inverse = gram_matrices(y, 0.1)
    lists = build_lists(y, inverse, ITEMS // 3)
    rng = np.random.default_rng(3)
    vouched, reached = 0, []
    for _ in range(200):
        rows = rng.choice(ITEMS, 3, replace=False)
        x, w = solve(gram, inverse, y[rows].astype(np.float64), np.full(3, 5.0))
        found = lists.candidates(rows, w)
        got = exact_top(found, y, x.astype(np.float32), 10)
        vouched += got is not None
        tenth = np.sort(y[found.rows] @ x.astype(np.float32))[-10]
        reached.append(np.count_nonzero(found.upper + found.margin >= tenth) / found.rows.size)
    assert vouched >= 100
    assert np.mean(reached) < 0.5


def test_loose_upper_bounds_only_cost_work_never_the_answer() -> None:
    # bounds that say nothing (every candidate might be best) make the first batch of
    # candidates scored insufficient: the rest must be scored too, not skipped
    rng = np.random.default_rng(4)
    y = rng.normal(size=(300, 4)).astype(np.float32)
    vector = rng.normal(size=4).astype(np.float32)
    found = Candidates(np.arange(300), np.full(300, 1e9), 0.0, -1e9, 0.0)
    got = exact_top(found, y, vector, 5)
    assert got is not None
    assert got[0].tolist() == np.argsort(-(y @ vector), kind="stable")[:5].tolist()
    # and an outside bound above the fifth score vouches for nothing
    assert exact_top(found._replace(outside=1e9), y, vector, 5) is None


def test_rounding_within_the_margin_never_decides() -> None:
    # bounds computed in float32 may sit below a score by up to the margin: such a
    # candidate is still scored, and such an outside bound still withholds the answer
    y = np.arange(40, dtype=np.float32)[:, None]  # one factor: item i scores i
    vector = np.ones(1, dtype=np.float32)
    gains = y[:, 0].astype(np.float64)
    gains[39] = 34.7  # the best item's bound reads 4.3 low: within the margin of 4.5
    found = Candidates(np.arange(40), gains, 0.0, -1e9, 4.5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fold_in_lists, "FIRST_BATCH", 1)
        got = exact_top(found, y, vector, 1)  # rows 35-38 first: their bounds lead
        assert got is not None
        assert got[0].tolist() == [39]
        # an outside bound 0.3 under the best score is not enough to vouch for it
        assert exact_top(found._replace(outside=38.7), y, vector, 1) is None


def test_a_candidate_beyond_the_first_batch_is_reached_through_the_common_base() -> None:
    # loose bounds (45) put rows 35-38 first; row 39's bound (base 10 + gain 30 = 40)
    # still reaches their best score (38), so it is scored and wins
    y = np.arange(40, dtype=np.float32)[:, None]
    upper = y[:, 0].astype(np.float64)
    upper[35:39] = 45.0
    upper[39] = 40.0
    found = Candidates(np.arange(40), upper - 10.0, 10.0, -1e9, 0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fold_in_lists, "FIRST_BATCH", 1)
        got = exact_top(found, y, np.ones(1, dtype=np.float32), 1)
    assert got is not None
    assert got[0].tolist() == [39]


def test_ties_go_to_the_lower_row() -> None:
    values = np.random.default_rng(2).integers(0, 3, size=300)  # a hundred-way ties
    y = values.astype(np.float32)[:, None]
    found = Candidates(np.arange(300), values.astype(np.float64), 0.0, -1e9, 0.0)
    got = exact_top(found, y, np.ones(1, dtype=np.float32), 50)
    assert got is not None
    assert got[0].tolist() == np.flatnonzero(values == 2)[:50].tolist()


def test_an_ill_conditioned_model_gets_wider_margins_not_wrong_answers() -> None:
    # two factor columns nearly equal and almost no regularization: G^-1 is huge, and
    # so is the rounding of everything computed with it; a certified list may differ
    # from the float64 answer only among items whose scores are within the margin
    rng = np.random.default_rng(9)
    y = rng.normal(size=(400, 8)) * rng.gamma(1.0, 1.0, size=(400, 1))
    y[:, 7] = y[:, 6] + 1e-5 * rng.normal(size=400)
    y = y.astype(np.float32)
    gram, inverse = gram_matrices(y, 1e-6)
    lists = build_lists(y, inverse, 40)
    for _ in range(200):
        rows = rng.choice(400, 4, replace=False)
        x, w = solve(gram, inverse, y[rows].astype(np.float64), np.full(4, 3.0))
        assert w is not None
        found = lists.candidates(rows, w)
        got = exact_top(found, y, x.astype(np.float32), 10)
        if got is None:
            continue
        exact = y.astype(np.float64) @ x
        others = np.setdiff1d(np.arange(400), got[0])
        assert exact[others].max() <= exact[got[0]].min() + 2 * found.margin


def test_lists_round_trip_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    y = factors()
    lists = build_lists(y, gram_matrices(y, 0.1)[1], 5)
    save_lists(tmp_path, lists)
    loaded = load_lists(tmp_path, ITEMS)
    assert isinstance(loaded, FoldInLists)
    assert np.array_equal(loaded.rows, lists.rows)
    assert np.array_equal(loaded.scores, lists.scores)
    assert np.array_equal(loaded.ceiling, lists.ceiling)
    assert np.array_equal(loaded.floor, lists.floor)
    assert load_lists(tmp_path / "missing", ITEMS) is None
    with pytest.raises(ArtifactError, match="do not match 121 items"):
        load_lists(tmp_path, ITEMS + 1)
    np.save(tmp_path / SCORES_FILE, lists.scores[:, :3])
    with pytest.raises(ArtifactError, match="scores"):
        load_lists(tmp_path, ITEMS)
    (tmp_path / BOUNDS_FILE).write_bytes(b"not numpy")
    with pytest.raises(ArtifactError, match="fold-in lists"):
        load_lists(tmp_path, ITEMS)
