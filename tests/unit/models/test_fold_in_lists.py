"""The fold-in lists hold each item's best items by y_i'G^-1 y_j, and their bound is
never beaten by an item outside a visitor's candidates: checked by brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.artifacts import ArtifactError
from models.fold_in import gram_matrices, solve
from models.fold_in_lists import (
    BOUNDS_FILE,
    FoldInLists,
    build_lists,
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
    length=st.sampled_from([2, 6, 20]),
)
def test_no_item_outside_the_candidates_scores_above_the_bound(
    history: list[int], confidence: list[float], length: int
) -> None:
    y = factors(1)
    gram, inverse = gram_matrices(y, 0.1)
    lists = build_lists(y, inverse, length)
    rows = np.array(history, dtype=np.int64)
    x, w = solve(gram, inverse, y[rows].astype(np.float64), np.array(confidence[: rows.size]))
    scores = y.astype(np.float64) @ x
    outside = np.setdiff1d(np.arange(ITEMS), lists.candidates(rows))
    assert np.array_equal(lists.candidates(rows), np.unique(lists.rows[rows]))
    if outside.size:
        assert scores[outside].max() <= lists.bound(rows, w)


def test_the_bound_is_tight_enough_to_certify_most_short_histories() -> None:
    # on a model with the structure real ones have, a list of a third of the catalogue
    # certifies nearly every 3-item visitor; a useless bound (say +inf) certifies none
    y = factors(2)
    gram, inverse = gram_matrices(y, 0.1)
    lists = build_lists(y, inverse, ITEMS // 3)
    rng = np.random.default_rng(3)
    certified = 0
    for _ in range(200):
        rows = rng.choice(ITEMS, 3, replace=False)
        x, w = solve(gram, inverse, y[rows].astype(np.float64), np.full(3, 5.0))
        candidates = lists.candidates(rows)
        tenth = np.sort(y[candidates] @ x.astype(np.float32))[-10]
        certified += tenth > lists.bound(rows, w)
    assert certified >= 100


def test_lists_round_trip_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    y = factors()
    lists = build_lists(y, gram_matrices(y, 0.1)[1], 5)
    save_lists(tmp_path, lists)
    loaded = load_lists(tmp_path, ITEMS)
    assert isinstance(loaded, FoldInLists)
    assert np.array_equal(loaded.rows, lists.rows)
    assert np.array_equal(loaded.ceiling, lists.ceiling)
    assert np.array_equal(loaded.floor, lists.floor)
    assert load_lists(tmp_path / "missing", ITEMS) is None
    with pytest.raises(ArtifactError, match="do not match 121 items"):
        load_lists(tmp_path, ITEMS + 1)
    (tmp_path / BOUNDS_FILE).write_bytes(b"not numpy")
    with pytest.raises(ArtifactError, match="fold-in lists"):
        load_lists(tmp_path, ITEMS)
