"""Full factorial MVT effects from cell sums, checked against statsmodels' OLS on the
per-visitor data with sum-to-zero coding."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

from engine.errors import InvalidInput
from engine.experiments.stats import ArmStats, Effect, mvt_cell_means, mvt_effects

Factors = list[tuple[str, Sequence[str]]]


def visitors(
    factors: Factors, seed: int, binary: bool = False
) -> tuple[pd.DataFrame, dict[tuple[str, ...], ArmStats]]:
    """Per-visitor data with unequal cells, main effects and interactions, and the
    cells' sufficient statistics computed from it (vectorized with bincount)."""
    rng = np.random.default_rng(seed)
    sizes = [len(levels) for _, levels in factors]
    n_cells = int(np.prod(sizes))
    cell = rng.integers(0, n_cells, 4000)  # unequal cell sizes by chance
    cell = np.concatenate([np.arange(n_cells), cell])  # every cell has visitors
    cell_effect = rng.normal(0.0, 0.3, n_cells)
    if binary:
        y = (rng.random(cell.size) < 0.1 + 0.05 * (cell_effect[cell] > 0)).astype(float)
    else:
        y = 2.0 + cell_effect[cell] + rng.normal(0.0, 1.0 + 0.1 * cell, cell.size)
    index = np.array(list(itertools.product(*(range(k) for k in sizes))))[cell]
    frame = pd.DataFrame(
        {
            name: pd.Categorical(np.asarray(levels)[index[:, f]], categories=list(levels))
            for f, (name, levels) in enumerate(factors)
        }
    )
    frame["y"] = y
    n = np.bincount(cell, minlength=n_cells)
    sums = np.bincount(cell, weights=y, minlength=n_cells)
    squares = np.bincount(cell, weights=y * y, minlength=n_cells)
    keys = list(itertools.product(*(levels for _, levels in factors)))
    cells = {
        key: ArmStats(int(n[i]), float(sums[i]), float(squares[i])) for i, key in enumerate(keys)
    }
    return frame, cells


def our_name(statsmodels_name: str) -> str:
    """'C(color, Sum)[S.red]:C(size, Sum)[S.L]' -> 'color[red]:size[L]'."""
    return re.sub(r"C\((\w+), Sum\)\[S\.([^\]]+)\]", r"\1[\2]", statsmodels_name)


def assert_matches_statsmodels(effects: list[Effect], fit: Any, alpha: float = 0.05) -> None:
    params, bse, pvalues = fit.params, fit.bse, fit.pvalues
    ci = fit.conf_int(alpha)
    by_term = {e.term: e for e in effects}
    assert list(by_term) == [our_name(name) for name in params.index]
    for name in params.index:
        effect = by_term[our_name(name)]
        assert effect.estimate == pytest.approx(params[name], rel=1e-8, abs=1e-12)
        assert effect.standard_error == pytest.approx(bse[name], rel=1e-8)
        assert effect.p_value == pytest.approx(pvalues[name], rel=1e-8, abs=1e-300)
        assert effect.ci is not None
        assert_allclose(effect.ci, ci.loc[name].to_numpy(), rtol=1e-8, atol=1e-12)


TWO_FACTORS: Factors = [("color", ["blue", "red"]), ("size", ["L", "M", "S"])]
THREE_FACTORS: Factors = [
    ("headline", ["bold", "calm"]),
    ("image", ["beach", "city", "forest"]),
    ("cta", ["buy", "shop"]),
]


@pytest.mark.parametrize("binary", [False, True], ids=["revenue", "conversion"])
def test_two_factor_effects_are_statsmodels_ols_with_sum_coding(binary: bool) -> None:
    frame, cells = visitors(TWO_FACTORS, seed=1, binary=binary)
    fit = smf.ols("y ~ C(color, Sum) * C(size, Sum)", frame).fit()
    assert_matches_statsmodels(mvt_effects(cells, TWO_FACTORS), fit)


def test_three_factor_effects_are_statsmodels_ols_with_all_two_way_interactions() -> None:
    frame, cells = visitors(THREE_FACTORS, seed=2)
    fit = smf.ols("y ~ (C(headline, Sum) + C(image, Sum) + C(cta, Sum))**2", frame).fit()
    assert_matches_statsmodels(mvt_effects(cells, THREE_FACTORS, alpha=0.1), fit, alpha=0.1)


def test_the_last_level_in_factor_order_is_the_implied_one() -> None:
    factors: Factors = [("color", ["red", "blue"]), ("size", ["S", "M", "L"])]
    frame, cells = visitors(factors, seed=3)
    fit = smf.ols("y ~ C(color, Sum) * C(size, Sum)", frame).fit()
    effects = mvt_effects(cells, factors)
    assert [e.term for e in effects][:4] == ["Intercept", "color[red]", "size[S]", "size[M]"]
    assert_matches_statsmodels(effects, fit)


def test_intercept_is_the_grand_mean_of_cell_means() -> None:
    _, cells = visitors(TWO_FACTORS, seed=4)
    intercept = mvt_effects(cells, TWO_FACTORS)[0]
    assert intercept.estimate == pytest.approx(np.mean([arm.mean for arm in cells.values()]))


def test_a_cell_without_visitors_leaves_the_model_unidentified() -> None:
    _, cells = visitors(TWO_FACTORS, seed=5)
    del cells[("red", "M")]
    effects = mvt_effects(cells, TWO_FACTORS)
    assert len(effects) == 6
    assert all(e == Effect(e.term, None, None, None, None) for e in effects)


def test_no_more_visitors_than_parameters_gives_no_estimates() -> None:
    cells = {key: ArmStats(1, 1.0, 1.0) for key in itertools.product(*(v for _, v in TWO_FACTORS))}
    assert all(e.estimate is None for e in mvt_effects(cells, TWO_FACTORS))


def test_no_variation_within_cells_gives_estimates_without_inference() -> None:
    keys = list(itertools.product(*(levels for _, levels in TWO_FACTORS)))
    cells = {key: ArmStats(50, 50.0 * (i % 2), 50.0 * (i % 2)) for i, key in enumerate(keys)}
    effects = mvt_effects(cells, TWO_FACTORS)
    assert effects[0].estimate == pytest.approx(0.5)
    assert all((e.standard_error, e.ci, e.p_value) == (None, None, None) for e in effects)


@pytest.mark.parametrize(
    ("cells", "factors"),
    [
        ({("green", "M"): ArmStats(5, 1.0, 1.0)}, TWO_FACTORS),
        ({("red",): ArmStats(5, 1.0, 1.0)}, TWO_FACTORS),
        ({}, [("color", ["red"])]),
        ({}, [("color", ["red", "red"])]),
        ({}, [("color", ["red", "blue"]), ("color", ["L", "S"])]),
        ({}, []),
    ],
)
def test_cells_and_factors_must_describe_one_full_factorial(
    cells: dict[tuple[str, ...], ArmStats], factors: Factors
) -> None:
    with pytest.raises(InvalidInput):
        mvt_effects(cells, factors)


def test_cell_means_carry_their_own_t_interval() -> None:
    frame, cells = visitors(TWO_FACTORS, seed=6)
    means = mvt_cell_means(cells, alpha=0.1)
    assert [m.levels for m in means] == list(cells)
    for m in means:
        y = frame.loc[(frame["color"] == m.levels[0]) & (frame["size"] == m.levels[1]), "y"]
        values: npt.NDArray[np.float64] = y.to_numpy()
        expected = stats.t.interval(0.9, values.size - 1, values.mean(), stats.sem(values))
        assert m.n == values.size
        assert m.mean == pytest.approx(values.mean(), rel=1e-12)
        assert m.ci is not None
        assert_allclose(m.ci, expected, rtol=1e-9)
    constant = mvt_cell_means({("red", "S"): ArmStats(10, 0.0, 0.0)})
    assert constant[0].ci is None
