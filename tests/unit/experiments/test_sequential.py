"""The mSPRT: its closed forms against numerical integration, and the always-valid
comparison's intervals against the fixed-horizon ones."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from engine.errors import InvalidInput
from engine.experiments.sequential import (
    DEFAULT_MINIMAL_LIFT,
    always_valid_p_value,
    confidence_sequence_half_width,
    default_tau2,
)
from engine.experiments.stats import ArmStats, compare, sequential_compare


def binary(n: int, conversions: int) -> ArmStats:
    return ArmStats(n=n, sum=float(conversions), sum_squares=float(conversions))


def mixture_likelihood_ratio(estimate: float, variance: float, tau2: float) -> float:
    """Johari et al.'s Lambda by quadrature: the likelihood of the estimate averaged over
    effects drawn from N(0, tau2), over its likelihood at effect 0."""
    sd, spread = math.sqrt(variance), math.sqrt(tau2)
    null = stats.norm.pdf(estimate, 0.0, sd)
    value, _ = integrate.quad(
        lambda theta: stats.norm.pdf(estimate, theta, sd) * stats.norm.pdf(theta, 0.0, spread),
        -12 * spread,
        12 * spread,
        points=[estimate],
        limit=200,
    )
    return float(value / null)


@pytest.mark.parametrize(
    ("estimate", "variance", "tau2"),
    [(0.0, 1.0, 1.0), (1.5, 1.0, 0.5), (-0.02, 1e-4, 2.5e-5), (0.01, 6e-6, 2.5e-5)],
)
def test_always_valid_p_value_is_one_over_the_mixture_likelihood_ratio(
    estimate: float, variance: float, tau2: float
) -> None:
    expected = min(1.0, 1.0 / mixture_likelihood_ratio(estimate, variance, tau2))
    assert always_valid_p_value(estimate, variance, tau2) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize(("variance", "tau2"), [(1.0, 1.0), (9e-5, 2.5e-5), (6e-6, 2.5e-5)])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_confidence_sequence_ends_where_the_test_rejects(
    variance: float, tau2: float, alpha: float
) -> None:
    half = confidence_sequence_half_width(variance, tau2, alpha)
    assert always_valid_p_value(half, variance, tau2) == pytest.approx(alpha, rel=1e-9)
    assert always_valid_p_value(0.99 * half, variance, tau2) > alpha


def test_default_mixing_variance_is_the_squared_minimal_lift() -> None:
    assert default_tau2(0.1) == pytest.approx((DEFAULT_MINIMAL_LIFT * 0.1) ** 2)
    assert default_tau2(0.0) is None
    assert default_tau2(-3.0) is None


@pytest.mark.parametrize(("n", "conversions"), [(200, (20, 25)), (5000, (500, 560))])
@pytest.mark.parametrize("tau2", [None, 1e-6, 1e-4, 1e-2])
def test_always_valid_intervals_are_wider_than_fixed_horizon_ones(
    n: int, conversions: tuple[int, int], tau2: float | None
) -> None:
    control, treatment = binary(n, conversions[0]), binary(n, conversions[1])
    fixed = compare(control, treatment)
    always = sequential_compare(control, treatment, tau2=tau2)
    assert fixed.difference_ci is not None
    assert always.difference_ci is not None
    assert fixed.lift_ci is not None
    assert always.lift_ci is not None
    assert always.difference_ci[0] < fixed.difference_ci[0]
    assert always.difference_ci[1] > fixed.difference_ci[1]
    assert always.lift_ci[0] < fixed.lift_ci[0]
    assert always.lift_ci[1] > fixed.lift_ci[1]
    assert always.p_value is not None
    assert fixed.p_value is not None
    assert always.p_value >= fixed.p_value


def test_significant_exactly_when_the_interval_excludes_zero() -> None:
    rng = np.random.default_rng(11)
    conversions = rng.binomial(20_000, [0.10, 0.106], size=(200, 2))
    verdicts = set()
    for c, t in conversions:
        result = sequential_compare(binary(20_000, int(c)), binary(20_000, int(t)))
        assert result.difference_ci is not None
        excludes_zero = result.difference_ci[0] > 0 or result.difference_ci[1] < 0
        assert result.significant == excludes_zero
        verdicts.add(result.significant)
    assert verdicts == {True, False}  # both sides of the boundary were exercised


def test_a_clear_effect_is_significant_and_estimated() -> None:
    result = sequential_compare(binary(30_000, 3_000), binary(30_000, 3_400))
    assert result.significant
    assert result.p_value is not None
    assert result.p_value < 0.001
    assert result.difference == pytest.approx(400 / 30_000)
    assert result.lift == pytest.approx(0.4 / 3)
    assert result.tau2 == pytest.approx((DEFAULT_MINIMAL_LIFT * 0.1) ** 2)


def test_without_a_positive_control_mean_the_default_gives_no_verdict() -> None:
    result = sequential_compare(binary(1000, 0), binary(1000, 9))
    assert result.difference == pytest.approx(0.009)
    assert (result.p_value, result.difference_ci, result.lift, result.lift_ci) == (
        None,
        None,
        None,
        None,
    )
    assert not result.significant
    json.dumps(dataclasses.asdict(result), allow_nan=False)


def test_an_explicit_mixing_variance_tests_a_zero_control_mean() -> None:
    result = sequential_compare(binary(1000, 0), binary(1000, 40), tau2=1e-4)
    assert result.p_value is not None
    assert result.difference_ci is not None
    assert result.lift is None
    assert result.lift_ci is None
    assert result.tau2 == 1e-4


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        (binary(1, 1), binary(500, 50)),
        (binary(0, 0), binary(500, 50)),
        (binary(500, 0), binary(500, 0)),
        (binary(500, 500), binary(400, 400)),
    ],
)
def test_tiny_or_constant_arms_give_no_verdict(control: ArmStats, treatment: ArmStats) -> None:
    result = sequential_compare(control, treatment)
    assert (result.p_value, result.difference_ci, result.lift_ci) == (None, None, None)
    assert not result.significant
    json.dumps(dataclasses.asdict(result), allow_nan=False)


@pytest.mark.parametrize("tau2", [0.0, -1.0])
def test_a_mixing_variance_must_be_positive(tau2: float) -> None:
    with pytest.raises(InvalidInput):
        sequential_compare(binary(100, 10), binary(100, 12), tau2=tau2)
