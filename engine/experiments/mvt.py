"""Multivariate (full factorial) experiments: which factor levels move the metric.

A full factorial MVT crosses factors (headline x image x button colour); each
combination of levels is a cell, served like an arm. The model is the classical
factorial ANOVA fitted by OLS (Montgomery, "Design and Analysis of Experiments",
ch. 5): the per-visitor metric on an intercept, every main effect and every two-way
interaction, in sum-to-zero ("effects", patsy's `C(f, Sum)`) coding. A main effect is
then a level's deviation from the grand mean of the cells, readable without a
reference level; the last level of each factor is minus the sum of the others.
Three-way and higher interactions are left out: they are rarely large and each would
cost parameters that few visitors per cell cannot pay for.

The design row `x_c` is constant within a cell, so the normal equations need only the
cells' sufficient statistics: `X'X = sum n_c x_c x_c'` and `X'y = sum s_c x_c`. The
residual sum of squares, `y'y - b'X'y`, is computed as the within-cell sum of squares
plus the lack of fit `sum n_c (mean_c - x_c'b)**2`: the same number, without
subtracting two large sums. Standard errors are the classical homoscedastic
`s**2 (X'X)^-1` with t at the residual df, which is what statsmodels' `ols` reports.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import stats

from engine.errors import InvalidInput

if TYPE_CHECKING:
    # stats.py re-exports this module, so the arm type is only named here, not imported.
    from engine.experiments.stats import ArmStats

FloatArray = npt.NDArray[np.float64]

INTERCEPT = "Intercept"

# A residual sum of squares below this fraction of the sum of y**2 is float round-off
# of a fit that leaves nothing (every visitor of a cell had the same value).
_RESIDUAL_ROUNDOFF = 1e-12


@dataclass(frozen=True, slots=True)
class Effect:
    """One model term: `"colour[red]"` (main effect) or `"colour[red]:size[L]"`."""

    term: str
    estimate: float | None
    standard_error: float | None
    ci: tuple[float, float] | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class CellMean:
    """A cell's metric per visitor, with its own t interval (no model assumed)."""

    levels: tuple[str, ...]
    n: int
    mean: float
    ci: tuple[float, float] | None


def mvt_effects(
    cells: Mapping[tuple[str, ...], ArmStats],
    factors: Sequence[tuple[str, Sequence[str]]],
    alpha: float = 0.05,
) -> list[Effect]:
    """Main effects and two-way interactions of a full factorial experiment.

    `cells` maps a tuple of level names (one per factor, in factor order) to the cell's
    statistics; a missing cell has no visitors. Terms come as statsmodels orders them:
    intercept, main effects by factor, interactions by pair of factors. Estimates are
    None while the model is not identified (a combination of levels without visitors,
    or no more visitors than parameters); errors, intervals and p-values are None also
    when the metric shows no variation within cells.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be between 0 and 1, not {alpha}")
    terms, design = _design(factors)
    keys = list(itertools.product(*(levels for _, levels in factors)))
    unknown = set(cells) - set(keys)
    if unknown:
        raise InvalidInput(f"cells {sorted(unknown)} are not combinations of the factors' levels")
    arms = [cells.get(key) for key in keys]
    n = np.array([arm.n if arm is not None else 0 for arm in arms], dtype=np.float64)
    sums = np.array([arm.sum if arm is not None else 0.0 for arm in arms])
    within = sum(arm.variance * (arm.n - 1) for arm in arms if arm is not None and arm.n >= 2)
    sum_squares = sum(arm.sum_squares for arm in arms if arm is not None)

    xtx = design.T @ (n[:, None] * design)
    df = n.sum() - len(terms)
    if df < 1 or np.linalg.matrix_rank(xtx) < len(terms):
        return [Effect(term, None, None, None, None) for term in terms]
    beta = np.linalg.solve(xtx, design.T @ sums)
    seen = n > 0
    lack_of_fit = float(n[seen] @ (sums[seen] / n[seen] - design[seen] @ beta) ** 2)
    rss = within + lack_of_fit
    if rss <= _RESIDUAL_ROUNDOFF * sum_squares:
        return [
            Effect(term, float(b), None, None, None) for term, b in zip(terms, beta, strict=True)
        ]
    se = np.sqrt(rss / df * np.diag(np.linalg.inv(xtx)))
    p_values = 2.0 * stats.t.sf(np.abs(beta) / se, df)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return [
        Effect(term, b, s, (b - h, b + h), p)
        for term, b, s, h, p in zip(
            terms, beta.tolist(), se.tolist(), half.tolist(), p_values.tolist(), strict=True
        )
    ]


def mvt_cell_means(
    cells: Mapping[tuple[str, ...], ArmStats], alpha: float = 0.05
) -> list[CellMean]:
    """Each cell's mean with a one-sample t interval: the table beside the effects.

    The interval is None below two visitors or without variation, as in `compare`.
    """
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be between 0 and 1, not {alpha}")
    result = []
    for levels, arm in cells.items():
        ci = None
        if arm.variance > 0:  # two visitors or more, and some variation
            half = float(stats.t.ppf(1.0 - alpha / 2.0, arm.n - 1)) * math.sqrt(
                arm.variance / arm.n
            )
            ci = (arm.mean - half, arm.mean + half)
        result.append(CellMean(levels, arm.n, arm.mean, ci))
    return result


def _design(factors: Sequence[tuple[str, Sequence[str]]]) -> tuple[list[str], FloatArray]:
    """Term names and the design row of every cell, cells in `itertools.product` order.

    Sum coding of a k-level factor: level j < k-1 is the unit vector e_j, the last level
    is all -1 (patsy's `Sum` contrast), so the columns of a factor sum to zero over its
    levels. An interaction's columns are the products of its factors' columns.
    """
    names = [name for name, _ in factors]
    if not factors or len(set(names)) != len(names):
        raise InvalidInput("an MVT needs one or more factors with distinct names")
    for name, levels in factors:
        if len(levels) < 2 or len(set(levels)) != len(levels):
            raise InvalidInput(f"factor {name!r} needs two or more distinct levels")
    grid = np.array(list(itertools.product(*(range(len(levels)) for _, levels in factors))))
    coded = []
    for f, (_, levels) in enumerate(factors):
        coding = np.vstack([np.eye(len(levels) - 1), -np.ones(len(levels) - 1)])
        coded.append(coding[grid[:, f]])
    labels = [[f"{name}[{level}]" for level in levels[:-1]] for name, levels in factors]

    terms = [INTERCEPT, *itertools.chain.from_iterable(labels)]
    blocks = [np.ones((len(grid), 1)), *coded]
    for f, g in itertools.combinations(range(len(factors)), 2):
        terms += [f"{a}:{b}" for a, b in itertools.product(labels[f], labels[g])]
        blocks.append((coded[f][:, :, None] * coded[g][:, None, :]).reshape(len(grid), -1))
    return terms, np.hstack(blocks)
