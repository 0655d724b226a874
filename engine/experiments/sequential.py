"""Always-valid inference for experiments that are looked at every day.

A fixed-horizon test is valid only at the one sample size planned in advance; a
marketer who opens the report daily and stops at the first "significant" day sees
false winners far more often than alpha. The mixture sequential probability ratio
test (mSPRT) of Johari, Pekelis & Walsh (2017, "Always valid inference: continuous
monitoring of A/B tests") keeps the error at alpha however often one looks.

For an estimate `d` of an effect `theta` with (plug-in) variance `V`, the mSPRT
compares the likelihood of `d` under a normal mixture of alternatives,
`theta ~ N(0, tau2)`, with its likelihood under `theta = 0`:

    Lambda = sqrt(V / (V + tau2)) * exp(tau2 * d**2 / (2 * V * (V + tau2)))

By Ville's inequality `P(Lambda ever reaches 1/alpha) <= alpha` under the null, so
`min(1, 1/Lambda)` crossing alpha at any look is a level-alpha test, and inverting the
test at every `theta` gives a confidence sequence (Johari et al., section 4):

    d +- sqrt(V * (V + tau2) / tau2 * (log((V + tau2) / V) - 2 log(alpha)))

Pure functions of floats; `engine.experiments.stats.sequential_compare` feeds them the
Welch variance of two arms.
"""

from __future__ import annotations

import math

# The relative lift a typical web experiment is run to detect. The mixing variance is
# tuned to it: see `default_tau2`.
DEFAULT_MINIMAL_LIFT = 0.05


def default_tau2(control_mean: float) -> float | None:
    """The mixing variance for an experiment planned to detect a 5 % relative lift.

    The mSPRT is valid for any `tau2`; `tau2` decides *when* it is sharpest. For a
    planned minimal effect `delta`, a fixed-horizon test (alpha 0.05, power 0.8)
    reaches it at `V* = delta**2 / (z_0.975 + z_0.8)**2 = delta**2 / 7.85`. The
    confidence sequence's width at `V*` is smallest when `r = tau2 / V*` solves
    `r = log(1 + r) + 2 log(1 / alpha)`, `r = 8.2` at alpha 0.05 (Howard et al. 2021,
    "Time-uniform, nonparametric, nonasymptotic confidence sequences", on tuning a
    normal mixture to a planned sample size), so `tau2 = 8.2 / 7.85 * delta**2`, about
    `delta**2`: Johari et al.'s advice to match the mixture to the effects one expects.
    `delta` is 5 % of the control mean, so the metric's unit needs no setting.

    None when the control mean is not positive: a relative effect has no scale there,
    and the caller passes `tau2` for such metrics.
    """
    if control_mean <= 0:
        return None
    return (DEFAULT_MINIMAL_LIFT * control_mean) ** 2


def always_valid_p_value(estimate: float, variance: float, tau2: float) -> float:
    """The mSPRT p-value `min(1, 1/Lambda)` at the current look (`variance > 0`).

    Stopping at the first look where it is below alpha is a level-alpha test. The
    running minimum over looks is the monotone always-valid p-value of Johari et al.;
    this function sees one look, so a display that must never rise keeps that minimum.
    """
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * estimate**2 / (
        2.0 * variance * (variance + tau2)
    )
    return math.exp(min(0.0, -log_lambda))


def confidence_sequence_half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half width of the mSPRT confidence sequence at this look (`variance > 0`).

    It covers the true effect at every look at once with probability `1 - alpha`, so
    it is wider than the fixed-horizon interval at the same data: at least
    `sqrt(2 log(1/alpha) * V)`, 2.45 standard errors at alpha 0.05, against 1.96.
    """
    return math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (math.log((variance + tau2) / variance) - 2.0 * math.log(alpha))
    )
