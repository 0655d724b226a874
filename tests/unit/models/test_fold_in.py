"""Fold-in's two solves agree with LAPACK's direct one, and their coefficients rebuild
the factor (x = G^-1 Y'w), which the fold-in lists' bound relies on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg.lapack import dposv

from models.fold_in import gram_matrices, low_rank_solve, solve, spd_inverse


def system(r: int, k: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + r)
    factors = rng.normal(size=(500, k)) * rng.gamma(1.0, 1.0, size=(500, 1))  # uneven norms
    y = factors[rng.choice(500, r, replace=False)]
    confidence = rng.choice([0.0, 1.0, 2.5, 40.0], size=r)  # 1.0: a zero in D
    return factors, y, confidence


def direct(gram: np.ndarray, y: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    _, x, info = dposv(gram + y.T @ ((confidence - 1.0)[:, None] * y), y.T @ confidence)
    assert info == 0
    return np.asarray(x)


@pytest.mark.parametrize("r", [1, 2, 5, 16, 32])
def test_the_low_rank_solve_equals_the_direct_one(r: int) -> None:
    factors, y, confidence = system(r)
    gram = factors.T @ factors + 0.05 * np.eye(factors.shape[1])
    found = low_rank_solve(spd_inverse(gram), y, confidence)
    assert found is not None
    np.testing.assert_allclose(found[0], direct(gram, y, confidence), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("r", [1, 5, 32, 33, 100])  # 33 and 100 take the Cholesky route
def test_both_routes_give_coefficients_that_rebuild_the_factor(r: int) -> None:
    factors, y, confidence = system(r, seed=7)
    gram, inverse = gram_matrices(factors, 0.05)
    x, w = solve(gram, inverse, y, confidence)
    assert w is not None
    np.testing.assert_allclose(x, direct(gram, y, confidence), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(inverse @ (y.T @ w), x, rtol=1e-8, atol=1e-10)


def test_a_gram_matrix_that_is_not_positive_definite_has_no_inverse() -> None:
    dependent = np.array([[1.0, 2.0], [2.0, 4.0]])
    gram, inverse = gram_matrices(dependent, 0.0)
    assert inverse.size == 0
    # and solving still answers, by least squares, whose x has no coefficients to vouch
    # for it (the fold-in lists then stand aside)
    x, w = solve(gram, inverse, dependent[:1], np.array([2.0]))
    np.testing.assert_allclose(gram @ x + dependent[:1].T @ (dependent[:1] @ x), dependent[0] * 2)
    assert w is None
