"""Experiment statistics: did the variant change the metric, and by how much.

Pure functions in the gbstats manner: frozen dataclasses in, dataclasses out, no I/O.
The inputs are the per-arm sufficient statistics the engine keeps in Redis (visitors,
sum and sum of squares of the per-visitor metric, and for CUPED the sums of a
pre-period covariate), so every result here can be recomputed from a few counters.

Undefined values are None, never NaN or infinity: results go out as JSON. The rule is
one for every comparison: point estimates need a visitor in each arm (lifts also a
positive control mean); p-values, intervals and chances need two visitors in each arm
and some variation in the metric. Bad arguments (alpha outside (0, 1), mismatched
lengths) raise `InvalidInput`.

`sequential.py` holds the always-valid (mSPRT) math and `mvt.py` the multivariate
(full factorial) model; their public names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import stats

from engine.errors import InvalidInput
from engine.experiments.mvt import CellMean, Effect, mvt_cell_means, mvt_effects
from engine.experiments.sequential import (
    DEFAULT_MINIMAL_LIFT,
    always_valid_p_value,
    confidence_sequence_half_width,
    default_tau2,
)

__all__ = [
    "DEFAULT_MINIMAL_LIFT",
    "SRM_ALPHA",
    "ArmStats",
    "CellMean",
    "Comparison",
    "CovariateStats",
    "CupedComparison",
    "Effect",
    "SequentialComparison",
    "benjamini_hochberg",
    "compare",
    "cuped_compare",
    "holm",
    "minimum_detectable_effect",
    "mvt_cell_means",
    "mvt_effects",
    "sample_size_needed",
    "sequential_compare",
    "srm_p_value",
]

# Sample ratio mismatch is a data-quality alarm checked on every report view, so a
# strict threshold keeps false alarms rare (the convention of Fabijan et al. 2019).
SRM_ALPHA = 0.001

# Centered sums of squares are differences of large sums; below this fraction of the
# raw sum of squares they are float round-off over millions of visitors, not variation.
_ROUNDOFF = 1e-10


def _centered_squares(sum_squares: float, total: float, n: int) -> float:
    if n == 0:
        return 0.0
    centered = sum_squares - total * total / n
    return centered if centered > _ROUNDOFF * sum_squares else 0.0


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One arm's sufficient statistics of a per-visitor metric (0/1, count or revenue)."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise InvalidInput(f"an arm cannot have {self.n} visitors")

    @property
    def mean(self) -> float:
        """The metric per visitor; 0.0 for an arm without visitors (nothing observed)."""
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0.0 below two visitors or within float round-off."""
        if self.n < 2:
            return 0.0
        return _centered_squares(self.sum_squares, self.sum, self.n) / (self.n - 1)


@dataclass(frozen=True, slots=True)
class CovariateStats:
    """An arm's sums of a pre-period covariate x (same visitors as its `ArmStats`)."""

    sum_x: float
    sum_x_squares: float
    sum_xy: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control, fixed horizon: read once at the planned sample size."""

    control_mean: float
    treatment_mean: float
    difference: float | None
    difference_ci: tuple[float, float] | None
    lift: float | None
    lift_ci: tuple[float, float] | None
    p_value: float | None
    chance_to_beat_control: float | None
    df: float | None


@dataclass(frozen=True, slots=True)
class CupedComparison(Comparison):
    """A comparison of CUPED-adjusted means (`control_mean`, `treatment_mean` are the
    adjusted ones), with how much noise the covariate removed."""

    theta: float
    variance_reduction: float | None


def _fields_of(comparison: Comparison) -> dict[str, Any]:
    return {f.name: getattr(comparison, f.name) for f in fields(comparison)}


@dataclass(frozen=True, slots=True)
class SequentialComparison:
    """Treatment against control, valid at every look (mSPRT, see `sequential.py`)."""

    difference: float | None
    difference_ci: tuple[float, float] | None
    lift: float | None
    lift_ci: tuple[float, float] | None
    p_value: float | None
    significant: bool
    tau2: float | None


def _check_probability(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise InvalidInput(f"{name} must be between 0 and 1, not {value}")


def _satterthwaite(a: float, b: float, df_a: int, df_b: int) -> float:
    """Welch-Satterthwaite df of the variance estimate `a + b` of two sample variances."""
    return (a + b) ** 2 / (a * a / df_a + b * b / df_b)


@dataclass(frozen=True, slots=True)
class _Welch:
    """Two independent means, each with its sample variance: Welch's unequal-variance
    approximation, which stays valid when a variant changes the metric's spread."""

    n_c: int
    mean_c: float
    var_c: float
    n_t: int
    mean_t: float
    var_t: float

    @property
    def difference(self) -> float | None:
        return self.mean_t - self.mean_c if self.n_c and self.n_t else None

    @property
    def lift(self) -> float | None:
        difference = self.difference
        return difference / self.mean_c if difference is not None and self.mean_c > 0 else None

    @property
    def testable(self) -> bool:
        return self.n_c >= 2 and self.n_t >= 2 and self.variance > 0

    @property
    def variance(self) -> float:
        return self.var_c / self.n_c + self.var_t / self.n_t if self.n_c and self.n_t else 0.0

    def lift_terms(self) -> tuple[float, float]:
        """Delta-method variance of `mean_t / mean_c`, as its treatment and control terms:
        `Var(t)/c**2 + t**2 Var(c)/c**4` (first-order Taylor expansion of the ratio)."""
        ratio = self.mean_t / self.mean_c
        return (
            self.var_t / self.n_t / self.mean_c**2,
            ratio**2 * self.var_c / self.n_c / self.mean_c**2,
        )

    def comparison(self, alpha: float) -> Comparison:
        difference, lift = self.difference, self.lift
        if difference is None or not self.testable:
            return Comparison(
                self.mean_c, self.mean_t, difference, None, lift, None, None, None, None
            )
        df = _satterthwaite(
            self.var_c / self.n_c, self.var_t / self.n_t, self.n_c - 1, self.n_t - 1
        )
        lift_ci = chance = None
        if lift is not None:
            a, b = self.lift_terms()
            if a + b > 0:
                lift_df = _satterthwaite(a, b, self.n_t - 1, self.n_c - 1)
                lift_ci = _t_interval(lift, a + b, lift_df, alpha)
                chance = float(stats.norm.cdf(lift / math.sqrt(a + b)))
        return Comparison(
            control_mean=self.mean_c,
            treatment_mean=self.mean_t,
            difference=difference,
            difference_ci=_t_interval(difference, self.variance, df, alpha),
            lift=lift,
            lift_ci=lift_ci,
            p_value=float(2.0 * stats.t.sf(abs(difference) / math.sqrt(self.variance), df)),
            chance_to_beat_control=chance,
            df=df,
        )


def _t_interval(estimate: float, variance: float, df: float, alpha: float) -> tuple[float, float]:
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * math.sqrt(variance)
    return (estimate - half, estimate + half)


def _welch(control: ArmStats, treatment: ArmStats) -> _Welch:
    return _Welch(
        control.n, control.mean, control.variance, treatment.n, treatment.mean, treatment.variance
    )


def compare(control: ArmStats, treatment: ArmStats, alpha: float = 0.05) -> Comparison:
    """The fixed-horizon verdict on a variant: Welch's t-test and intervals.

    `p_value` is Welch's two-sided t-test (scipy's `ttest_ind_from_stats` with
    `equal_var=False`); `difference_ci` uses the t quantile at the Welch-Satterthwaite
    df. `lift_ci` is the delta-method interval of the ratio of means with the
    Satterthwaite df of that delta-method variance (which equals the difference's df
    when the arms are alike). `chance_to_beat_control` is the Bayesian P(lift > 0)
    under a flat prior and the same normal approximation of the lift; None when the
    delta-method variance vanishes (a treatment mean of 0 gives lift -1 exactly).
    """
    _check_probability("alpha", alpha)
    return _welch(control, treatment).comparison(alpha)


def cuped_compare(
    control: ArmStats,
    control_x: CovariateStats,
    treatment: ArmStats,
    treatment_x: CovariateStats,
    alpha: float = 0.05,
) -> CupedComparison:
    """`compare` on CUPED-adjusted means: the same verdict, sooner, on a correlated metric.

    CUPED (Deng, Xu, Kohavi & Walker 2013) subtracts `theta * (x - mean x)` from every
    visitor's metric, with x measured before the experiment so the adjustment cannot
    absorb the treatment effect; the variance falls by the squared correlation. `theta`
    is the within-arm pooled `cov(x, y) / var(x)`, which makes the adjusted difference
    exactly the treatment coefficient of the OLS regression `y ~ t + x` (ANCOVA); the
    uncertainty of `theta` itself is ignored, as in the paper. A constant covariate
    gives `theta = 0`, which is `compare`. `variance_reduction` is
    `1 - adjusted / raw` within-arm variance, pooled over both arms.
    """
    _check_probability("alpha", alpha)
    arms = ((control, control_x), (treatment, treatment_x))
    sxx = [_centered_squares(x.sum_x_squares, x.sum_x, a.n) for a, x in arms]
    sxy = [x.sum_xy - x.sum_x * a.sum / a.n if a.n else 0.0 for a, x in arms]
    syy = [_centered_squares(a.sum_squares, a.sum, a.n) for a, _ in arms]
    theta = sum(sxy) / sum(sxx) if sum(sxx) > 0 else 0.0
    n_total = control.n + treatment.n
    mean_x = (control_x.sum_x + treatment_x.sum_x) / n_total if n_total else 0.0
    adjusted_ss = [
        _adjusted_squares(yy, xy, xx, theta) for yy, xy, xx in zip(syy, sxy, sxx, strict=True)
    ]

    def adjusted(arm: ArmStats, x: CovariateStats, ss: float) -> tuple[int, float, float]:
        if arm.n == 0:
            return 0, 0.0, 0.0
        variance = ss / (arm.n - 1) if arm.n >= 2 else 0.0
        return arm.n, arm.mean - theta * (x.sum_x / arm.n - mean_x), variance

    welch = _Welch(
        *adjusted(control, control_x, adjusted_ss[0]),
        *adjusted(treatment, treatment_x, adjusted_ss[1]),
    )
    raw = sum(syy)
    return CupedComparison(
        **_fields_of(welch.comparison(alpha)),
        theta=theta,
        variance_reduction=1.0 - sum(adjusted_ss) / raw if raw > 0 else None,
    )


def _adjusted_squares(syy: float, sxy: float, sxx: float, theta: float) -> float:
    """Centered sum of squares of `y - theta x`, zero within float round-off."""
    adjusted = syy - 2.0 * theta * sxy + theta * theta * sxx
    return adjusted if adjusted > _ROUNDOFF * (syy + theta * theta * sxx) else 0.0


def sequential_compare(
    control: ArmStats, treatment: ArmStats, alpha: float = 0.05, tau2: float | None = None
) -> SequentialComparison:
    """The verdict a marketer may read every day: mSPRT always-valid p-value and intervals.

    The difference of means with Welch's variance `V = s_c**2/n_c + s_t**2/n_t` goes
    through the normal-mixture SPRT of Johari, Pekelis & Walsh (2017); see
    `sequential.py`. `tau2` (in the metric's squared unit) defaults to
    `default_tau2(control mean)`: tuned to a 5 % relative lift. The control mean
    settles within the first days, so the default is effectively fixed; pass a `tau2`
    pinned at the experiment's start for strict validity, and for metrics whose control
    mean can be zero or negative (the default is None there, and so is every interval).
    The lift's interval is the same confidence sequence on the delta-method variance of
    the lift, with mixing variance `tau2 / control mean**2` (the lift is the difference
    in units of the control mean).
    """
    _check_probability("alpha", alpha)
    if tau2 is not None and not tau2 > 0:
        raise InvalidInput(f"tau2 must be positive, not {tau2}")
    welch = _welch(control, treatment)
    difference, lift = welch.difference, welch.lift
    mixing = tau2 if tau2 is not None else default_tau2(control.mean)
    if difference is None or not welch.testable or mixing is None:
        return SequentialComparison(difference, None, lift, None, None, False, mixing)
    half = confidence_sequence_half_width(welch.variance, mixing, alpha)
    p_value = always_valid_p_value(difference, welch.variance, mixing)
    lift_ci = None
    lift_variance = sum(welch.lift_terms()) if lift is not None else 0.0
    if lift is not None and lift_variance > 0:
        lift_half = confidence_sequence_half_width(lift_variance, mixing / control.mean**2, alpha)
        lift_ci = (lift - lift_half, lift + lift_half)
    return SequentialComparison(
        difference=difference,
        difference_ci=(difference - half, difference + half),
        lift=lift,
        lift_ci=lift_ci,
        p_value=p_value,
        significant=p_value < alpha,
        tau2=mixing,
    )


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Sample ratio mismatch: do the arms' sizes fit the planned split?

    Pearson's chi-square goodness of fit against `total * weight / sum(weights)`, k-1 df
    (scipy's `chisquare`). A p-value below `SRM_ALPHA` means assignment or tracking is
    broken and the experiment's statistics cannot be trusted (Fabijan et al. 2019).
    No visitors yet is no evidence: 1.0.
    """
    observed = np.asarray(counts, dtype=np.float64)
    planned = np.asarray(weights, dtype=np.float64)
    if observed.shape != planned.shape or observed.ndim != 1 or observed.size < 2:
        raise InvalidInput("srm needs one count and one weight per arm, two arms or more")
    if np.any(planned <= 0) or np.any(observed < 0):
        raise InvalidInput("srm needs positive weights and non-negative counts")
    total = observed.sum()
    if total == 0:
        return 1.0
    expected = total * planned / planned.sum()
    chi_square = float(np.sum((observed - expected) ** 2 / expected))
    return float(stats.chi2.sf(chi_square, observed.size - 1))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: family-wise error control over the variants or
    metrics of one experiment, uniformly more powerful than Bonferroni (Holm 1979)."""
    return _adjust(p_values, step_down=True)


def benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg step-up adjustment: false discovery rate control, for many
    metrics where some false leads are acceptable (Benjamini & Hochberg 1995)."""
    return _adjust(p_values, step_down=False)


def _adjust(p_values: Sequence[float | None], step_down: bool) -> list[float | None]:
    """Adjusted p-values of the present entries (None ones pass through, not counted)."""
    present = [i for i, p in enumerate(p_values) if p is not None]
    p = np.array([p_values[i] for i in present], dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise InvalidInput("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    rank = np.arange(1, m + 1)
    if step_down:
        ranked = np.maximum.accumulate(p[order] * (m - rank + 1))
    else:
        ranked = np.minimum.accumulate((p[order] * m / rank)[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    result: list[float | None] = [None] * len(p_values)
    for i, value in zip(present, adjusted.tolist(), strict=True):
        result[i] = value
    return result


def minimum_detectable_effect(
    control: ArmStats, n_per_arm: int, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """The smallest relative lift an experiment of this size will likely detect.

    Two-sided two-sample z-test with equal allocation and the control's variance in
    both arms: `(z_{1-alpha/2} + z_power) * sqrt(2 s**2 / n) / mean` (the far rejection
    tail is ignored, as is usual). None until the control has a positive mean and some
    variation to scale by.
    """
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if n_per_arm < 1:
        raise InvalidInput(f"an experiment needs visitors, not {n_per_arm} per arm")
    if control.mean <= 0 or control.variance == 0:
        return None
    return _z_sum(alpha, power) * math.sqrt(2.0 * control.variance / n_per_arm) / control.mean


def sample_size_needed(
    control: ArmStats, relative_mde: float, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Visitors per arm to detect `relative_mde` (0.05 = 5 % lift): the inverse of
    `minimum_detectable_effect`, rounded up. None as there."""
    _check_probability("alpha", alpha)
    _check_probability("power", power)
    if not relative_mde > 0:
        raise InvalidInput(f"the minimal detectable effect must be positive, not {relative_mde}")
    if control.mean <= 0 or control.variance == 0:
        return None
    delta = relative_mde * control.mean
    return math.ceil(2.0 * control.variance * (_z_sum(alpha, power) / delta) ** 2)


def _z_sum(alpha: float, power: float) -> float:
    return float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
