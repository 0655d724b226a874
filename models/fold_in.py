"""The algebra of folding a visitor into a trained ALS model: one user's least-squares
step, x = (G + Yv'DYv)^-1 Yv'c, with G = Y'Y + lambda*I over the whole catalogue's
factors Y, Yv the rows of the visitor's items, c their confidences and D = diag(c - 1)
(Hu, Koren & Volinsky 2008).

Both ways of solving it also give the visitor's coefficients w, with x = G^-1 Yv'w:
since G x = Yv'c - Yv'DYv x, w = c - DYv x. The visitor's score for an item j is then
sum_i w_i * y_i'G^-1 y_j, a weighted sum of item-to-item scores, which is what lets
`models.fold_in_lists` find their best items without scoring the catalogue.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg.lapack import dgesv, dposv, dpotrf, dpotri


class FoldIn(NamedTuple):
    """A folded-in visitor: the factor, and what it is made of (x = G^-1 Y[rows]'w)."""

    vector: np.ndarray  # float32; a BPR model's item-bias column (1) included
    rows: np.ndarray  # the distinct item rows of the history
    coefficients: np.ndarray | None  # w, one per row (float64); None if x is not G^-1 Y'w


def gram_matrices(latent: np.ndarray, regularization: float) -> tuple[np.ndarray, np.ndarray]:
    """G = Y'Y + lambda*I (float64) and its inverse (empty if G is not positive
    definite, e.g. lambda = 0 with dependent columns). Training and serving both call
    this, so lists built offline match the solves made per request."""
    y = np.asarray(latent, dtype=np.float64)
    gram = y.T @ y + regularization * np.eye(y.shape[1])
    return gram, spd_inverse(gram)


def spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix (empty if it is not one)."""
    factor, info = dpotrf(matrix, lower=False)
    if info != 0:
        return np.zeros((0, 0), np.float64)
    upper, info = dpotri(factor, lower=False)
    if info != 0:
        return np.zeros((0, 0), np.float64)
    inverse: np.ndarray = np.triu(upper) + np.triu(upper, 1).T
    return inverse


def solve(
    gram: np.ndarray, gram_inverse: np.ndarray, y: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """x = (G + Y'DY)^-1 Y'c and its coefficients w (x = G^-1 Y'w), in float64.

    A history of r <= k/2 items takes the low-rank route (an r x r system), a longer one
    the k x k Cholesky; a system LAPACK cannot factor falls back to least squares,
    whose x need not be G^-1 Y'w for any w: its coefficients are None."""
    if 2 * y.shape[0] <= y.shape[1] and gram_inverse.size:
        found = low_rank_solve(gram_inverse, y, confidence)
        if found is not None:
            return found
    d = confidence - 1.0
    a = gram + y.T @ (d[:, None] * y)
    b = y.T @ confidence
    # positive definite whenever lambda > 0 (confidences are >= 0): Cholesky, via
    # LAPACK directly (numpy's general solve costs half as much again per call)
    _, x, info = dposv(a, b)
    if info != 0:
        return np.linalg.lstsq(a, b, rcond=None)[0], None
    return x, confidence - d * (y @ x)


def low_rank_solve(
    gram_inverse: np.ndarray, y: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """The solve for a history of r << k items from the model's precomputed G^-1
    (Woodbury): with Z = Y G^-1 and M = Z Y', x = Z'(c - (I + DM)^-1 DMc), and since
    (I + DM)^-1 DM = I - (I + DM)^-1, the coefficients are w = (I + DM)^-1 c: one r x r
    solve instead of k x k, a five-item history for a fraction of the Cholesky.
    None if I + DM is singular (the caller solves directly)."""
    z = y @ gram_inverse
    system = (confidence - 1.0)[:, None] * (z @ y.T)
    system.flat[:: system.shape[0] + 1] += 1.0
    _, _, coefficients, info = dgesv(system, confidence)
    if info != 0:
        return None
    x: np.ndarray = z.T @ coefficients
    return x, coefficients
