"""Off-policy evaluation: what a new policy would have earned, estimated from the log of
another policy's decisions and the propensities it recorded, before the new one ships.

Every estimator here is a ratio of sums of per-row terms, `sum(num) / sum(den)`, so the
point estimate and its bootstrap interval use one definition. `w = target_prob /
propensity` is a row's importance weight.

| estimator | per-row numerator | denominator | reference |
| --- | --- | --- | --- |
| ips | w r | 1 | Horvitz & Thompson 1952 |
| snips | w r | w | Swaminathan & Joachims 2015 |
| dr | q_target + w (r - q_logged) | 1 | Dudik, Langford & Li 2011 |

The policies and the reward model below are for slotted pages (an item at a position),
the Open Bandit Dataset's shape; the estimators take any log as arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Estimator = Literal["ips", "snips", "dr"]
ESTIMATORS: tuple[Estimator, ...] = ("ips", "snips", "dr")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# About 16 MiB of int64 indices per resampling block: B x n in one block for small logs
# (where it draws what scipy.stats.bootstrap draws), bounded memory for large ones.
BOOTSTRAP_BLOCK_ELEMENTS = 1 << 21
# Pseudo-impressions of additive smoothing in the click-rate model: at click rates near
# 0.5 %, an (item, position) cell of a few dozen impressions holds zero or one click.
DEFAULT_SMOOTHING = 50.0
DEFAULT_FOLDS = 5


def ips(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target_probs: npt.ArrayLike) -> float:
    """Inverse propensity scoring (Horvitz-Thompson): the mean of `w * r`.

    Unbiased whenever the logging policy gave every action the target may take a
    positive probability; its variance grows with the weights.
    """
    r, p, t = _checked(rewards=rewards, propensities=propensities, target_probs=target_probs)
    return _ratio(*_ips_terms(r, t / p))


def snips(
    rewards: npt.ArrayLike, propensities: npt.ArrayLike, target_probs: npt.ArrayLike
) -> float:
    """Self-normalized IPS (Swaminathan & Joachims 2015): `sum(w r) / sum(w)`.

    Slightly biased but bounded by the rewards' range, and far steadier than IPS when
    a few rows carry large weights.
    """
    r, p, t = _checked(rewards=rewards, propensities=propensities, target_probs=target_probs)
    return _snips_ratio(*_snips_terms(r, t / p))


def doubly_robust(
    rewards: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    q_logged: npt.ArrayLike,
    q_target: npt.ArrayLike,
) -> float:
    """Doubly robust (Dudik, Langford & Li 2011): the reward model's value of the target
    policy, corrected by the importance-weighted residual of the logged reward.

    `q_logged` is the model's prediction for the logged action, `q_target` its
    expectation under the target policy. Unbiased if either the propensities or the
    model are right; the better the model, the smaller the variance.
    """
    r, p, t, ql, qt = _checked(
        rewards=rewards,
        propensities=propensities,
        target_probs=target_probs,
        q_logged=q_logged,
        q_target=q_target,
    )
    return _ratio(*_dr_terms(r, t / p, ql, qt))


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size `(sum w)^2 / sum w^2`: how many equally weighted
    rows the weighted log is worth (n when all weights are equal, 1 when one dominates)."""
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / squares if squares > 0 else 0.0


def bootstrap_ci(
    numerators: npt.ArrayLike,
    denominators: npt.ArrayLike,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> FloatArray:
    """Percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13) of
    `sum(num[k]) / sum(den[k])` for each row k of the `(k, n)` inputs: `[[low, high], ...]`.

    Logged rows are resampled with replacement, the same resamples for every k, so the
    estimators' intervals are comparable. Indices are drawn as `(block, n)` arrays from
    one generator seeded with `seed`; when `B x n` fits one block the draw is exactly
    scipy.stats.bootstrap's for the same generator. A resample with `sum(den) == 0`
    (SNIPS when no resampled row has weight) has no value and is left out.
    """
    num = np.atleast_2d(np.asarray(numerators, dtype=np.float64))
    den = np.atleast_2d(np.asarray(denominators, dtype=np.float64))
    if num.ndim != 2 or num.shape != den.shape or num.shape[1] == 0:
        raise ValueError(
            f"bootstrap: numerators {num.shape} and denominators {den.shape} must be (k, n), n > 0"
        )
    if n_bootstrap < 1:
        raise ValueError(f"bootstrap: n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap: level must be in (0, 1), got {level}")
    n = num.shape[1]
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // n)
    stats = np.empty((num.shape[0], n_bootstrap))
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n_bootstrap, block):
            stop = min(n_bootstrap, start + block)
            idx = rng.integers(0, n, size=(stop - start, n))
            for k in range(num.shape[0]):
                stats[k, start:stop] = num[k][idx].sum(axis=1) / den[k][idx].sum(axis=1)
    alpha = 1.0 - level
    bounds = np.nanquantile(stats, [alpha / 2, 1.0 - alpha / 2], axis=1)
    return np.ascontiguousarray(bounds.T)


@dataclass(frozen=True, slots=True)
class WeightChecks:
    """When importance weights make an estimate untrustworthy: the warnings' thresholds."""

    # Below this, a logged propensity turns one click into a weight that swamps the rest.
    propensity_floor: float = 1e-3
    # Effective sample size as a share of n under which the estimate rests on few rows.
    min_ess_share: float = 0.1
    # Share of all the weight that a single row may carry.
    max_weight_share: float = 0.05
    # Standard errors by which the mean weight may miss its expectation, 1.
    mean_weight_z: float = 4.0


DEFAULT_CHECKS = WeightChecks()


@dataclass(frozen=True, slots=True)
class WeightDiagnostics:
    """How much the importance weights can be trusted, with the warnings they raise."""

    n: int
    ess: float
    max_weight: float
    max_weight_share: float
    mean_weight: float
    min_propensity: float
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "ess": self.ess,
            "ess_share": self.ess / self.n,
            "max_weight": self.max_weight,
            "max_weight_share": self.max_weight_share,
            "mean_weight": self.mean_weight,
            "min_propensity": self.min_propensity,
        }


def weight_diagnostics(
    propensities: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    checks: WeightChecks = DEFAULT_CHECKS,
) -> WeightDiagnostics:
    """Effective sample size, extreme weights and tiny propensities, as data for the caller.

    The mean weight's expectation is the target policy's probability mass on actions
    the logger could take: well below 1, the target goes where the log never went (IPS
    is then biased low) or the propensities are wrong.
    """
    p, t = _checked(propensities=propensities, target_probs=target_probs)
    w = t / p
    n = len(w)
    total = float(w.sum())
    ess = effective_sample_size(w)
    max_weight = float(w.max())
    share = max_weight / total if total > 0 else 0.0
    mean = total / n
    se = float(w.std()) / np.sqrt(n)
    warnings: list[str] = []
    tiny = int(np.count_nonzero(p < checks.propensity_floor))
    if tiny:
        warnings.append(
            f"{tiny} of {n} logged propensities are below {checks.propensity_floor:g} "
            f"(smallest {float(p.min()):.3g}): their rows can carry huge weights"
        )
    if total == 0:
        warnings.append("the target policy gives every logged action probability 0")
    elif ess < checks.min_ess_share * n:
        warnings.append(
            f"effective sample size {ess:.1f} is {ess / n:.1%} of {n} rows "
            f"(below {checks.min_ess_share:.0%}): the estimate rests on few rows"
        )
    if share > checks.max_weight_share:
        warnings.append(
            f"one row carries {share:.1%} of the total weight (max weight {max_weight:.3g})"
        )
    if total > 0 and abs(mean - 1.0) > checks.mean_weight_z * se + 1e-12:
        warnings.append(
            f"mean importance weight {mean:.3f} is far from 1: the target policy puts mass "
            "where the logging policy never went, or the propensities are wrong"
        )
    return WeightDiagnostics(
        n=n,
        ess=ess,
        max_weight=max_weight,
        max_weight_share=share,
        mean_weight=mean,
        min_propensity=float(p.min()),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value of the target policy with its bootstrap interval."""

    estimator: Estimator
    value: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "estimate": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@dataclass(frozen=True, slots=True)
class OpeReport:
    """A target policy's estimated value next to the logging policy's observed one."""

    n: int
    observed: float
    estimates: tuple[Estimate, ...]
    diagnostics: WeightDiagnostics
    level: float
    n_bootstrap: int
    seed: int

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.diagnostics.warnings

    def estimate(self, estimator: Estimator) -> Estimate:
        return next(e for e in self.estimates if e.estimator == estimator)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "observed": self.observed,
            "level": self.level,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "estimates": [e.to_json() for e in self.estimates],
            "diagnostics": self.diagnostics.to_json(),
            "warnings": list(self.warnings),
        }


def evaluate(
    rewards: npt.ArrayLike,
    propensities: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    q_logged: npt.ArrayLike,
    q_target: npt.ArrayLike,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    checks: WeightChecks = DEFAULT_CHECKS,
) -> OpeReport:
    """IPS, SNIPS and DR of one target policy on one log, each with its percentile
    bootstrap interval (the same resamples for all three), plus the weight diagnostics."""
    r, p, t, ql, qt = _checked(
        rewards=rewards,
        propensities=propensities,
        target_probs=target_probs,
        q_logged=q_logged,
        q_target=q_target,
    )
    w = t / p
    terms = {"ips": _ips_terms(r, w), "snips": _snips_terms(r, w), "dr": _dr_terms(r, w, ql, qt)}
    values = [_snips_ratio(*terms[e]) if e == "snips" else _ratio(*terms[e]) for e in ESTIMATORS]
    bounds = bootstrap_ci(
        np.stack([terms[e][0] for e in ESTIMATORS]),
        np.stack([terms[e][1] for e in ESTIMATORS]),
        n_bootstrap=n_bootstrap,
        level=level,
        seed=seed,
    )
    return OpeReport(
        n=len(r),
        observed=float(r.mean()),
        estimates=tuple(
            Estimate(e, v, float(lo), float(hi))
            for e, v, (lo, hi) in zip(ESTIMATORS, values, bounds, strict=True)
        ),
        diagnostics=weight_diagnostics(p, t, checks),
        level=level,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


@dataclass(frozen=True, slots=True)
class SlotPolicy:
    """A context-free policy for a page with positions: the probability of each item at
    each position. OBD's Bernoulli Thompson sampling is one (it ignores the visitor).

    `probs[i]` is the full action distribution at position `positions[i]`, so it is
    also the distribution for every logged row at that position.
    """

    positions: IntArray
    probs: FloatArray

    def __post_init__(self) -> None:
        if self.probs.ndim != 2 or self.probs.shape[0] != len(self.positions):
            raise ValueError("policy: probs must be (positions, actions)")
        if np.any(np.diff(self.positions) <= 0):
            raise ValueError("policy: positions must be sorted and distinct")
        if not np.all(np.isfinite(self.probs)) or np.any(self.probs < 0):
            raise ValueError("policy: probabilities must be finite and non-negative")
        if not np.allclose(self.probs.sum(axis=1), 1.0, rtol=0, atol=1e-9):
            raise ValueError("policy: each position's probabilities must sum to 1")

    @property
    def n_actions(self) -> int:
        return int(self.probs.shape[1])

    def position_rows(self, positions: npt.ArrayLike) -> IntArray:
        """Each logged position's row of `probs`; a position the policy lacks is an error."""
        pos = np.asarray(positions, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.positions, pos), len(self.positions) - 1)
        unknown = self.positions[rows] != pos
        if np.any(unknown):
            raise ValueError(
                f"policy: position {int(pos[unknown][0])} is not one of its positions "
                f"{self.positions.tolist()}"
            )
        return rows.astype(np.int64)

    def target_probs(self, actions: npt.ArrayLike, positions: npt.ArrayLike) -> FloatArray:
        """The policy's probability of each logged row's item at its position."""
        acts = np.asarray(actions, dtype=np.int64)
        if acts.size and (acts.min() < 0 or acts.max() >= self.n_actions):
            raise ValueError(f"policy: actions must be item ids 0..{self.n_actions - 1}")
        return self.probs[self.position_rows(positions), acts]


def uniform_policy(n_actions: int, positions: npt.ArrayLike) -> SlotPolicy:
    """Every item equally likely at every position seen in `positions`."""
    if n_actions < 1:
        raise ValueError(f"policy: n_actions must be at least 1, got {n_actions}")
    values = np.unique(np.asarray(positions, dtype=np.int64))
    return SlotPolicy(values, np.full((len(values), n_actions), 1.0 / n_actions))


def empirical_policy(
    actions: npt.ArrayLike, positions: npt.ArrayLike, propensities: npt.ArrayLike, n_actions: int
) -> SlotPolicy:
    """The policy that wrote a log, averaged over the log, for a context-free logger.

    A Thompson-sampling logger changes its probabilities as it learns, so the policy
    "as it ran" is its probability of item a at position p averaged over the rows at p.
    That average is estimated as `count(a, p) / sum(1 / propensity)` over the rows
    showing a at p (the harmonic mean of their propensities): the sum is the
    Horvitz-Thompson estimate of the number of rows at p. The plain mean of the
    propensities is biased upward, because the rows where a was shown over-represent
    the times its probability was high (on OBD's BTS log those means sum to 3.7 at
    one position). Each position is renormalized to sum to 1; items never shown at a
    position get 0 there.
    """
    acts = np.asarray(actions, dtype=np.int64)
    props = np.asarray(propensities, dtype=np.float64)
    if acts.size == 0 or acts.shape != props.shape:
        raise ValueError("policy: actions and propensities must be equally long and non-empty")
    if acts.min() < 0 or acts.max() >= n_actions:
        raise ValueError(f"policy: actions must be item ids 0..{n_actions - 1}")
    if not np.all((props > 0) & (props <= 1)):
        raise ValueError("policy: propensities must be in (0, 1]")
    values, rows = np.unique(np.asarray(positions, dtype=np.int64), return_inverse=True)
    counts = np.zeros((len(values), n_actions))
    inverse_sums = np.zeros((len(values), n_actions))
    np.add.at(counts, (rows, acts), 1.0)
    np.add.at(inverse_sums, (rows, acts), 1.0 / props)
    average = np.divide(counts, inverse_sums, out=np.zeros_like(counts), where=counts > 0)
    return SlotPolicy(values, average / average.sum(axis=1, keepdims=True))


def cross_fitted_rewards(
    actions: npt.ArrayLike,
    positions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    policy: SlotPolicy,
    *,
    folds: int = DEFAULT_FOLDS,
    smoothing: float = DEFAULT_SMOOTHING,
) -> tuple[FloatArray, FloatArray]:
    """DR's reward model for a slotted log: `(q_logged, q_target)` for every row.

    The model is the click rate per (position, item), shrunk toward the position's
    rate, itself shrunk toward the overall rate, by `smoothing` pseudo-impressions
    (additive smoothing). Each row's predictions come from a model fitted on the other
    folds (cross-fitting, Chernozhukov et al. 2018), so a row's own click never leaks
    into its prediction and shrinks its DR correction. Folds take every `folds`-th
    row, which spreads each over a time-ordered log.
    """
    acts = np.asarray(actions, dtype=np.int64)
    r = np.asarray(rewards, dtype=np.float64)
    rows = policy.position_rows(positions)
    n = len(r)
    if acts.shape != r.shape or rows.shape != r.shape:
        raise ValueError("reward model: actions, positions and rewards differ in length")
    if n < 2:
        raise ValueError("reward model: cross-fitting needs at least 2 logged rows")
    if acts.min() < 0 or acts.max() >= policy.n_actions:
        raise ValueError(f"reward model: actions must be item ids 0..{policy.n_actions - 1}")
    if smoothing <= 0:
        raise ValueError(f"reward model: smoothing must be positive, got {smoothing}")
    fold = np.arange(n) % min(folds, n)
    q_logged = np.empty(n)
    q_target = np.empty(n)
    for f in range(min(folds, n)):
        train = fold != f
        table = _click_rates(acts[train], rows[train], r[train], policy.probs.shape, smoothing)
        test = ~train
        q_logged[test] = table[rows[test], acts[test]]
        q_target[test] = (policy.probs * table).sum(axis=1)[rows[test]]
    return q_logged, q_target


def evaluate_slot_policy(
    actions: npt.ArrayLike,
    positions: npt.ArrayLike,
    rewards: npt.ArrayLike,
    propensities: npt.ArrayLike,
    policy: SlotPolicy,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    smoothing: float = DEFAULT_SMOOTHING,
    checks: WeightChecks = DEFAULT_CHECKS,
) -> OpeReport:
    """A context-free policy's value from a slotted log: IPS, SNIPS and DR with the
    cross-fitted click-rate model, each with its bootstrap interval."""
    q_logged, q_target = cross_fitted_rewards(
        actions, positions, rewards, policy, smoothing=smoothing
    )
    return evaluate(
        rewards,
        propensities,
        policy.target_probs(actions, positions),
        q_logged,
        q_target,
        n_bootstrap=n_bootstrap,
        level=level,
        seed=seed,
        checks=checks,
    )


def _click_rates(
    actions: IntArray,
    rows: IntArray,
    rewards: FloatArray,
    shape: tuple[int, ...],
    smoothing: float,
) -> FloatArray:
    overall = float(rewards.mean())
    shown = np.zeros(shape, dtype=np.float64)
    clicks = np.zeros(shape, dtype=np.float64)
    np.add.at(shown, (rows, actions), 1.0)
    np.add.at(clicks, (rows, actions), rewards)
    position_rate: FloatArray = (clicks.sum(axis=1) + smoothing * overall) / (
        shown.sum(axis=1) + smoothing
    )
    rates: FloatArray = (clicks + smoothing * position_rate[:, None]) / (shown + smoothing)
    return rates


def _ips_terms(r: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    return w * r, np.ones_like(r)


def _snips_terms(r: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    return w * r, w


def _dr_terms(
    r: FloatArray, w: FloatArray, q_logged: FloatArray, q_target: FloatArray
) -> tuple[FloatArray, FloatArray]:
    return q_target + w * (r - q_logged), np.ones_like(r)


def _ratio(num: FloatArray, den: FloatArray) -> float:
    return float(num.sum() / den.sum())


def _snips_ratio(num: FloatArray, den: FloatArray) -> float:
    if not den.sum() > 0:
        raise ValueError(
            "snips: the target policy gives every logged action probability 0, "
            "so the log says nothing about it"
        )
    return _ratio(num, den)


_RANGES: dict[str, tuple[str, Callable[[FloatArray], npt.NDArray[np.bool_]]]] = {
    "propensities": ("(0, 1]", lambda a: (a > 0) & (a <= 1)),
    "target_probs": ("[0, 1]", lambda a: (a >= 0) & (a <= 1)),
}


def _checked(**columns: npt.ArrayLike) -> tuple[FloatArray, ...]:
    """The named inputs as float arrays, or a ValueError naming what is wrong."""
    arrays = {name: _column(name, values) for name, values in columns.items()}
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"inputs differ in length: {described}")
    if not any(lengths.values()):
        raise ValueError("no logged rows")
    for name, a in arrays.items():
        if name in _RANGES:
            interval, inside = _RANGES[name]
            bad = ~inside(a)
            if np.any(bad):
                first = int(np.argmax(bad))
                raise ValueError(
                    f"{name}: {int(bad.sum())} values outside {interval} "
                    f"(first {float(a[first])!r} at row {first})"
                )
    return tuple(arrays.values())


def _column(name: str, values: npt.ArrayLike) -> FloatArray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not numbers") from None
    if a.ndim != 1:
        raise ValueError(f"{name}: expected one value per logged row, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if np.any(bad):
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite values (first at row {int(np.argmax(bad))})"
        )
    return a
