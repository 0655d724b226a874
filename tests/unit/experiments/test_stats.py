"""Fixed-horizon comparisons, CUPED, SRM, multiple testing and power, checked against
scipy and statsmodels on the same numbers."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, tt_ind_solve_power

from engine.errors import InvalidInput
from engine.experiments.stats import (
    SRM_ALPHA,
    ArmStats,
    CovariateStats,
    CupedComparison,
    benjamini_hochberg,
    compare,
    cuped_compare,
    holm,
    minimum_detectable_effect,
    sample_size_needed,
    srm_p_value,
)


def arm(values: npt.ArrayLike) -> ArmStats:
    y = np.asarray(values, dtype=np.float64)
    return ArmStats(n=y.size, sum=float(y.sum()), sum_squares=float(y @ y))


def covariate(x: npt.ArrayLike, y: npt.ArrayLike) -> CovariateStats:
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return CovariateStats(
        sum_x=float(xs.sum()), sum_x_squares=float(xs @ xs), sum_xy=float(xs @ ys)
    )


def json_safe(result: object) -> str:
    assert dataclasses.is_dataclass(result)
    assert not isinstance(result, type)
    return json.dumps(dataclasses.asdict(result), allow_nan=False)


def samples() -> dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    rng = np.random.default_rng(20240601)
    revenue_c = np.where(rng.random(900) < 0.08, rng.lognormal(3.5, 1.0, 900), 0.0)
    revenue_t = np.where(rng.random(1100) < 0.09, rng.lognormal(3.6, 1.1, 1100), 0.0)
    return {
        "conversion": (
            (rng.random(2000) < 0.10).astype(float),
            (rng.random(2100) < 0.12).astype(float),
        ),
        "counts": (rng.poisson(1.3, 500).astype(float), rng.poisson(1.5, 650).astype(float)),
        "revenue": (revenue_c, revenue_t),
        "tiny": (np.array([3.0, 5.0]), np.array([4.0, 9.0, 2.0])),
        "tiny_binary": (np.array([0.0, 1.0]), np.array([1.0, 1.0, 0.0])),
    }


SAMPLES = samples()


# ArmStats


def test_arm_mean_and_variance_are_numpys_with_ddof_1() -> None:
    y = SAMPLES["revenue"][1]
    assert arm(y).mean == pytest.approx(y.mean(), rel=1e-12)
    assert arm(y).variance == pytest.approx(y.var(ddof=1), rel=1e-9)


def test_arm_variance_is_zero_below_two_visitors() -> None:
    assert ArmStats(0, 0.0, 0.0).mean == 0.0
    assert ArmStats(0, 0.0, 0.0).variance == 0.0
    assert ArmStats(1, 4.0, 16.0).variance == 0.0


def test_round_off_in_the_sums_of_a_constant_metric_is_no_variance() -> None:
    y = np.full(1_000_000, 0.1)
    raw = float(y @ y) - float(y.sum()) ** 2 / y.size
    assert raw != 0.0  # the sums alone would report noise as variance
    assert arm(y).variance == 0.0


def test_an_arm_cannot_have_negative_visitors() -> None:
    with pytest.raises(InvalidInput):
        ArmStats(-1, 0.0, 0.0)


# compare


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_compare_is_welchs_t_test(name: str) -> None:
    yc, yt = SAMPLES[name]
    result = compare(arm(yc), arm(yt))
    c, t = arm(yc), arm(yt)
    expected = stats.ttest_ind_from_stats(
        c.mean, math.sqrt(c.variance), c.n, t.mean, math.sqrt(t.variance), t.n, equal_var=False
    )
    welch = stats.ttest_ind(yt, yc, equal_var=False)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.df == pytest.approx(welch.df, rel=1e-9)
    assert result.difference == pytest.approx(yt.mean() - yc.mean(), rel=1e-12)
    assert result.difference_ci is not None
    assert_allclose(result.difference_ci, welch.confidence_interval(0.95), rtol=1e-9)


def test_compare_uses_the_requested_alpha() -> None:
    yc, yt = SAMPLES["counts"]
    result = compare(arm(yc), arm(yt), alpha=0.1)
    assert result.difference_ci is not None
    expected = stats.ttest_ind(yt, yc, equal_var=False).confidence_interval(0.9)
    assert_allclose(result.difference_ci, expected, rtol=1e-9)


@pytest.mark.parametrize("name", ["conversion", "revenue", "tiny"])
def test_lift_interval_is_the_delta_method_with_satterthwaite_df(name: str) -> None:
    yc, yt = SAMPLES[name]
    result = compare(arm(yc), arm(yt))
    mc, mt = yc.mean(), yt.mean()
    # gradient of mt/mc times the covariance of the two independent means
    gradient = np.array([-mt / mc**2, 1.0 / mc])
    terms = gradient**2 * np.array([yc.var(ddof=1) / yc.size, yt.var(ddof=1) / yt.size])
    df = terms.sum() ** 2 / (terms[0] ** 2 / (yc.size - 1) + terms[1] ** 2 / (yt.size - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(terms.sum())
    assert result.lift == pytest.approx(mt / mc - 1, rel=1e-12)
    assert result.lift_ci is not None
    assert_allclose(result.lift_ci, (mt / mc - 1 - half, mt / mc - 1 + half), rtol=1e-9)
    assert result.chance_to_beat_control == pytest.approx(
        stats.norm.cdf((mt / mc - 1) / math.sqrt(terms.sum())), rel=1e-9
    )


def test_chance_to_beat_control_matches_the_one_sided_p_value_at_large_samples() -> None:
    yc, yt = SAMPLES["conversion"]
    result = compare(arm(yc), arm(yt))
    one_sided = stats.ttest_ind(yt, yc, equal_var=False, alternative="greater").pvalue
    # the lift's normal approximation weighs the control's variance by (mt/mc)^2 = 1.44
    # here, the difference's by 1: close, not equal
    assert result.chance_to_beat_control == pytest.approx(1 - one_sided, abs=0.02)


def test_identical_arms_show_no_difference() -> None:
    y = SAMPLES["counts"][0]
    result = compare(arm(y), arm(y))
    assert result.difference == 0.0
    assert result.lift == 0.0
    assert result.p_value == pytest.approx(1.0)
    assert result.chance_to_beat_control == pytest.approx(0.5)
    assert result.difference_ci is not None
    assert result.difference_ci[0] == pytest.approx(-result.difference_ci[1])


def test_an_arm_of_one_visitor_gives_estimates_without_inference() -> None:
    result = compare(arm([0.0, 1.0, 1.0]), arm([1.0]))
    assert result.difference == pytest.approx(1 / 3)
    assert result.lift == pytest.approx(0.5)
    inference = (result.difference_ci, result.lift_ci, result.p_value)
    assert inference == (None, None, None)
    assert (result.chance_to_beat_control, result.df) == (None, None)


def test_an_empty_arm_gives_no_difference() -> None:
    result = compare(ArmStats(0, 0.0, 0.0), arm([1.0, 0.0]))
    assert result.difference is None
    assert result.lift is None
    assert result.p_value is None
    json_safe(result)


def test_zero_conversions_in_both_arms_is_defined_and_json_safe() -> None:
    result = compare(ArmStats(5000, 0.0, 0.0), ArmStats(5000, 0.0, 0.0))
    assert (result.difference, result.lift, result.p_value, result.difference_ci) == (
        0.0,
        None,
        None,
        None,
    )
    assert result.chance_to_beat_control is None
    assert result.df is None
    json_safe(result)


def test_every_visitor_converting_in_both_arms_has_a_lift_but_no_test() -> None:
    result = compare(ArmStats(300, 300.0, 300.0), ArmStats(200, 200.0, 200.0))
    assert result.lift == 0.0
    assert (result.p_value, result.lift_ci, result.chance_to_beat_control) == (None, None, None)


def test_a_control_without_conversions_has_no_lift_but_a_p_value() -> None:
    yc, yt = np.zeros(400), (np.arange(400) < 12).astype(float)
    result = compare(arm(yc), arm(yt))
    expected = stats.ttest_ind(yt, yc, equal_var=False)
    assert result.lift is None
    assert result.lift_ci is None
    assert result.chance_to_beat_control is None
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.df == pytest.approx(expected.df, rel=1e-9)
    json_safe(result)


def test_a_treatment_without_conversions_has_lift_minus_one_without_interval() -> None:
    # The delta-method variance of the lift vanishes when the treatment mean is 0: an
    # interval of width zero would be a false certainty, so there is none.
    result = compare(arm((np.arange(400) < 12).astype(float)), ArmStats(400, 0.0, 0.0))
    assert result.lift == -1.0
    assert (result.lift_ci, result.chance_to_beat_control) == (None, None)
    assert result.p_value is not None


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_zero_one_is_rejected(alpha: float) -> None:
    with pytest.raises(InvalidInput):
        compare(arm([1.0, 2.0]), arm([1.0, 3.0]), alpha=alpha)


# CUPED


def correlated_visitors(
    seed: int, effect: float = 0.3
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    treated = (np.arange(3000) >= 1400).astype(float)  # unequal arms: 1400 and 1600
    x = rng.gamma(2.0, 2.0, treated.size)
    y = 1.0 + 0.8 * x + effect * treated + rng.normal(0.0, 1.5, treated.size)
    return x, y, treated


def cuped_of(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], t: npt.NDArray[np.float64]
) -> CupedComparison:
    c, tr = t == 0, t == 1
    return cuped_compare(arm(y[c]), covariate(x[c], y[c]), arm(y[tr]), covariate(x[tr], y[tr]))


def test_cuped_difference_is_the_ancova_treatment_coefficient() -> None:
    x, y, t = correlated_visitors(7)
    result = cuped_of(x, y, t)
    fit = smf.ols("y ~ t + xc", pd.DataFrame({"y": y, "t": t, "xc": x - x.mean()})).fit()
    assert result.difference == pytest.approx(fit.params["t"], rel=1e-9)
    assert result.theta == pytest.approx(fit.params["xc"], rel=1e-9)


def test_cuped_matches_the_explicit_formula_on_visitor_arrays() -> None:
    x, y, t = correlated_visitors(8)
    arms = [t == 0, t == 1]
    xy = sum(np.sum((x[a] - x[a].mean()) * (y[a] - y[a].mean())) for a in arms)
    xx = sum(np.sum((x[a] - x[a].mean()) ** 2) for a in arms)
    theta = xy / xx
    adjusted = y - theta * (x - x.mean())
    yc, yt = adjusted[arms[0]], adjusted[arms[1]]
    result = cuped_of(x, y, t)
    expected = stats.ttest_ind(yt, yc, equal_var=False)
    assert result.theta == pytest.approx(theta, rel=1e-9)
    assert result.control_mean == pytest.approx(yc.mean(), rel=1e-9)
    assert result.difference == pytest.approx(yt.mean() - yc.mean(), rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    assert result.difference_ci is not None
    assert_allclose(result.difference_ci, expected.confidence_interval(0.95), rtol=1e-8)
    assert result.lift == pytest.approx(yt.mean() / yc.mean() - 1, rel=1e-9)
    within = sum(np.sum((adjusted[a] - adjusted[a].mean()) ** 2) for a in arms)
    raw = sum(np.sum((y[a] - y[a].mean()) ** 2) for a in arms)
    assert result.variance_reduction == pytest.approx(1 - within / raw, rel=1e-9)


def test_cuped_shrinks_the_intervals_on_a_correlated_covariate() -> None:
    x, y, t = correlated_visitors(9)
    cuped = cuped_of(x, y, t)
    plain = compare(arm(y[t == 0]), arm(y[t == 1]))
    assert cuped.difference_ci is not None
    assert plain.difference_ci is not None
    assert cuped.lift_ci is not None
    assert plain.lift_ci is not None
    # corr(x, y)^2 is about 0.47 here: the variance halves, the interval shrinks ~27 %
    assert cuped.variance_reduction == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, abs=0.05)
    assert width(cuped.difference_ci) < 0.8 * width(plain.difference_ci)
    assert width(cuped.lift_ci) < 0.8 * width(plain.lift_ci)


def width(ci: tuple[float, float]) -> float:
    return ci[1] - ci[0]


def test_a_constant_covariate_makes_cuped_plain_compare() -> None:
    yc, yt = SAMPLES["counts"]
    result = cuped_compare(
        arm(yc),
        covariate(np.ones_like(yc), yc),
        arm(yt),
        covariate(np.ones_like(yt), yt),
    )
    plain = compare(arm(yc), arm(yt))
    assert result.theta == 0.0
    assert result.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == pytest.approx(plain.p_value, rel=1e-12)
    assert result.lift == pytest.approx(plain.lift, rel=1e-12)


def test_cuped_on_tiny_or_empty_arms_is_defined() -> None:
    empty = cuped_compare(
        ArmStats(0, 0.0, 0.0), CovariateStats(0.0, 0.0, 0.0), arm([1.0]), covariate([2.0], [1.0])
    )
    assert empty.difference is None
    assert empty.p_value is None
    json_safe(empty)
    no_conversions = cuped_compare(
        ArmStats(50, 0.0, 0.0),
        CovariateStats(10.0, 30.0, 0.0),
        ArmStats(50, 0.0, 0.0),
        CovariateStats(12.0, 40.0, 0.0),
    )
    assert no_conversions.difference == 0.0
    assert no_conversions.variance_reduction is None
    assert no_conversions.p_value is None
    json_safe(no_conversions)


# SRM


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ([5050, 4950], [1.0, 1.0]),
        ([5000, 2600, 2400], [0.5, 0.25, 0.25]),
        ([5000, 2600, 2400], [2.0, 1.0, 1.0]),
        ([3, 0], [0.5, 0.5]),
    ],
)
def test_srm_is_scipys_chi_square_against_the_planned_split(
    counts: list[int], weights: list[float]
) -> None:
    total = sum(counts)
    expected = [total * w / sum(weights) for w in weights]
    assert srm_p_value(counts, weights) == pytest.approx(
        stats.chisquare(counts, expected).pvalue, rel=1e-12
    )


def test_srm_flags_a_broken_split_and_not_a_fair_one() -> None:
    assert srm_p_value([10_500, 9_500], [0.5, 0.5]) < SRM_ALPHA
    assert srm_p_value([10_050, 9_950], [0.5, 0.5]) > SRM_ALPHA


def test_srm_without_visitors_is_no_evidence() -> None:
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([10, 10], [1.0]), ([10], [1.0]), ([10, 10], [1.0, 0.0]), ([10, -1], [1.0, 1.0])],
)
def test_srm_rejects_a_malformed_split(counts: list[int], weights: list[float]) -> None:
    with pytest.raises(InvalidInput):
        srm_p_value(counts, weights)


# multiple testing


Adjustment = Callable[[Sequence[float | None]], list[float | None]]
P_VALUES = [0.01, 0.04, 0.03, 0.2, 0.04, 0.0001, 0.5, 0.9, 0.011, 1.0]


@pytest.mark.parametrize(("adjust", "method"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_adjusted_p_values_are_statsmodels(adjust: Adjustment, method: str) -> None:
    rng = np.random.default_rng(3)
    for p in [P_VALUES, rng.random(25).tolist(), [0.03], rng.beta(0.3, 2.0, 12).tolist()]:
        assert_allclose(adjust(p), multipletests(p, method=method)[1], rtol=1e-12)


@pytest.mark.parametrize(("adjust", "method"), [(holm, "holm"), (benjamini_hochberg, "fdr_bh")])
def test_missing_p_values_pass_through_and_do_not_count(adjust: Adjustment, method: str) -> None:
    with_gaps = [0.01, None, 0.04, 0.03, None]
    result = adjust(with_gaps)
    assert result[1] is None
    assert result[4] is None
    present = [result[0], result[2], result[3]]
    assert_allclose(present, multipletests([0.01, 0.04, 0.03], method=method)[1], rtol=1e-12)
    assert adjust([]) == []
    assert adjust([None]) == [None]


def test_p_values_outside_zero_one_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        holm([0.5, 1.2])


# power


# statsmodels adds the far rejection tail to the power, at most 1e-6 at these plans, and
# its root finder stops at about 1e-5 relative: its power function is the sharper check.
@pytest.mark.parametrize(("n", "alpha", "power"), [(5000, 0.05, 0.8), (40_000, 0.01, 0.9)])
def test_minimum_detectable_effect_has_the_planned_normal_power(
    n: int, alpha: float, power: float
) -> None:
    control = arm(SAMPLES["conversion"][0])
    mde = minimum_detectable_effect(control, n, alpha, power)
    assert mde is not None
    effect_size = mde * control.mean / math.sqrt(control.variance)
    assert NormalIndPower().power(effect_size, n, alpha) == pytest.approx(power, abs=1e-5)
    solved = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power)
    assert effect_size == pytest.approx(solved, rel=1e-4)


@pytest.mark.parametrize("mde", [0.05, 0.1, 0.3])
def test_sample_size_needed_is_the_smallest_with_the_planned_power(mde: float) -> None:
    control = arm(SAMPLES["revenue"][0])
    effect_size = mde * control.mean / math.sqrt(control.variance)
    n = sample_size_needed(control, mde)
    assert n is not None
    assert NormalIndPower().power(effect_size, n, 0.05) >= 0.8
    assert NormalIndPower().power(effect_size, n - 1, 0.05) < 0.8 + 1e-6
    # the t-test needs a visitor or two more for its heavier tails
    t_test = tt_ind_solve_power(effect_size=effect_size, nobs1=None, alpha=0.05, power=0.8)
    assert n - 1 < t_test < n + 3
    smallest = minimum_detectable_effect(control, n)
    assert smallest is not None
    assert smallest <= mde


def test_power_is_undefined_without_a_positive_varying_control() -> None:
    assert minimum_detectable_effect(ArmStats(1000, 0.0, 0.0), 1000) is None
    assert sample_size_needed(ArmStats(1000, 1000.0, 1000.0), 0.05) is None
    assert sample_size_needed(ArmStats(1, 1.0, 1.0), 0.05) is None


def test_power_rejects_meaningless_plans() -> None:
    control = arm(SAMPLES["conversion"][0])
    with pytest.raises(InvalidInput):
        minimum_detectable_effect(control, 0)
    with pytest.raises(InvalidInput):
        sample_size_needed(control, 0.0)
    with pytest.raises(InvalidInput):
        sample_size_needed(control, 0.05, power=1.0)
