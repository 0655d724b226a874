"""Off-policy estimators against a synthetic bandit whose true value is known exactly,
hand-computed cases, scipy's bootstrap, and the warnings that weights raise."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import scipy.stats

from training import ope
from training.ope import (
    ESTIMATORS,
    SlotPolicy,
    bootstrap_ci,
    cross_fitted_rewards,
    doubly_robust,
    effective_sample_size,
    empirical_policy,
    evaluate,
    evaluate_slot_policy,
    ips,
    snips,
    uniform_policy,
    weight_diagnostics,
)

FloatArray = npt.NDArray[np.float64]

# A contextual bandit: 3 visitor types, 5 actions, known click probabilities.
CONTEXT_PROBS = np.array([0.5, 0.3, 0.2])
CLICK = np.array(
    [
        [0.10, 0.20, 0.70, 0.15, 0.05],
        [0.40, 0.10, 0.20, 0.85, 0.30],
        [0.05, 0.35, 0.10, 0.20, 0.90],
    ]
)
N_ACTIONS = CLICK.shape[1]
# The target mostly shows each visitor type its best action.
TARGET = np.full_like(CLICK, 0.05)
TARGET[[0, 1, 2], [2, 3, 4]] = 0.8
TRUE_VALUE = float(CONTEXT_PROBS @ (TARGET * CLICK).sum(axis=1))
LOGGED_VALUE = float(CONTEXT_PROBS @ CLICK.mean(axis=1))


@dataclass(frozen=True)
class Log:
    rewards: FloatArray
    propensities: FloatArray
    target_probs: FloatArray
    q_logged: FloatArray
    q_target: FloatArray


def simulate(n: int, rng: np.random.Generator, model_error: float = 0.0) -> Log:
    """Uniform logging with exact propensities; `q` is the true model shifted by `model_error`."""
    contexts = rng.choice(len(CONTEXT_PROBS), size=n, p=CONTEXT_PROBS)
    actions = rng.integers(0, N_ACTIONS, size=n)
    rewards = (rng.random(n) < CLICK[contexts, actions]).astype(np.float64)
    model = CLICK + model_error
    return Log(
        rewards=rewards,
        propensities=np.full(n, 1.0 / N_ACTIONS),
        target_probs=TARGET[contexts, actions],
        q_logged=model[contexts, actions],
        q_target=(TARGET * model).sum(axis=1)[contexts],
    )


def estimates(log: Log, *, n_bootstrap: int, seed: int, level: float = 0.95) -> ope.OpeReport:
    return evaluate(
        log.rewards,
        log.propensities,
        log.target_probs,
        log.q_logged,
        log.q_target,
        n_bootstrap=n_bootstrap,
        level=level,
        seed=seed,
    )


def test_the_synthetic_target_differs_from_the_logging_policy() -> None:
    by_hand = (
        0.5 * (0.8 * 0.70 + 0.05 * 0.50)
        + 0.3 * (0.8 * 0.85 + 0.05 * 1.00)
        + 0.2 * (0.8 * 0.90 + 0.05 * 0.70)
    )
    assert pytest.approx(by_hand) == TRUE_VALUE
    assert TRUE_VALUE - LOGGED_VALUE > 0.3


def test_every_estimator_s_interval_covers_the_true_value_and_stays_narrow() -> None:
    # DR's reward model is off by 0.05 everywhere: exact propensities keep it unbiased.
    # 99% intervals, so that three of them all covering is not a lucky seed (the next
    # test checks how often 95% ones cover).
    log = simulate(20_000, np.random.default_rng(7), model_error=0.05)
    report = estimates(log, n_bootstrap=400, seed=1, level=0.99)
    assert [e.estimator for e in report.estimates] == list(ESTIMATORS)
    for e in report.estimates:
        assert e.ci_low < e.value < e.ci_high, e
        assert e.ci_low <= TRUE_VALUE <= e.ci_high, e
        assert e.ci_high - e.ci_low < 0.06, e  # IPS's exact 99% width here: 0.053
    assert report.observed == pytest.approx(LOGGED_VALUE, abs=0.01)


def test_ips_intervals_cover_the_truth_about_as_often_as_they_claim() -> None:
    rng = np.random.default_rng(11)
    replications, covered = 60, 0
    for seed in range(replications):
        log = simulate(1_000, rng)
        num = (log.target_probs / log.propensities * log.rewards)[None, :]
        low, high = bootstrap_ci(num, np.ones_like(num), n_bootstrap=200, seed=seed)[0]
        covered += bool(low <= TRUE_VALUE <= high)
    assert covered >= 0.85 * replications


def test_dr_with_the_true_reward_model_varies_far_less_than_ips() -> None:
    rng = np.random.default_rng(3)
    runs = [simulate(500, rng) for _ in range(200)]
    ips_values = np.array([ips(r.rewards, r.propensities, r.target_probs) for r in runs])
    dr_values = np.array(
        [
            doubly_robust(r.rewards, r.propensities, r.target_probs, r.q_logged, r.q_target)
            for r in runs
        ]
    )
    assert dr_values.var() < 0.5 * ips_values.var()
    for values in (ips_values, dr_values):  # both unbiased: the mean is near the truth
        assert abs(values.mean() - TRUE_VALUE) < 4 * values.std() / np.sqrt(len(values))


# rewards, propensities, target_probs: weights w = [2, 2, 0, 0.5]
R, P, T = [1.0, 0.0, 1.0, 0.0], [0.5, 0.25, 0.5, 1.0], [1.0, 0.5, 0.0, 0.5]
Q_LOGGED, Q_TARGET = [0.5, 0.5, 0.5, 0.5], [0.6, 0.4, 0.2, 0.5]


def test_ips_of_a_tiny_log_by_hand() -> None:
    assert ips(R, P, T) == pytest.approx((2 * 1 + 2 * 0 + 0 * 1 + 0.5 * 0) / 4)


def test_snips_of_a_tiny_log_by_hand() -> None:
    assert snips(R, P, T) == pytest.approx(2 / 4.5)


def test_dr_of_a_tiny_log_by_hand() -> None:
    terms = [0.6 + 2 * 0.5, 0.4 + 2 * -0.5, 0.2 + 0, 0.5 + 0.5 * -0.5]
    assert doubly_robust(R, P, T, Q_LOGGED, Q_TARGET) == pytest.approx(sum(terms) / 4)


def test_effective_sample_size_is_kish_s() -> None:
    assert effective_sample_size([2, 2, 0, 0.5]) == pytest.approx(4.5**2 / 8.25)
    assert effective_sample_size(np.ones(7)) == pytest.approx(7)
    assert effective_sample_size([0.0, 0.0]) == 0.0


def test_ips_is_the_plain_mean_of_weight_times_reward() -> None:
    log = simulate(5_000, np.random.default_rng(5))
    direct = np.mean(log.target_probs / log.propensities * log.rewards)
    assert ips(log.rewards, log.propensities, log.target_probs) == pytest.approx(direct, rel=1e-12)


def test_the_bootstrap_draws_and_cuts_what_scipy_does_with_the_same_generator() -> None:
    log = simulate(2_000, np.random.default_rng(9))
    x = log.target_probs / log.propensities * log.rewards
    ours = bootstrap_ci(x[None, :], np.ones((1, len(x))), n_bootstrap=1_000, seed=4)[0]
    theirs = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=1_000, method="percentile", rng=np.random.default_rng(4)
    ).confidence_interval
    assert ours == pytest.approx([theirs.low, theirs.high], rel=1e-9)


def test_a_bootstrap_drawn_in_blocks_agrees_with_scipy_within_noise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ope, "BOOTSTRAP_BLOCK_ELEMENTS", 50_000)  # 25 rows of 2,000 a block
    log = simulate(2_000, np.random.default_rng(9))
    x = log.target_probs / log.propensities * log.rewards
    ours = bootstrap_ci(x[None, :], np.ones((1, len(x))), n_bootstrap=2_000, seed=4)[0]
    theirs = scipy.stats.bootstrap(
        (x,), np.mean, n_resamples=2_000, method="percentile", rng=np.random.default_rng(8)
    ).confidence_interval
    width = theirs.high - theirs.low
    assert ours == pytest.approx([theirs.low, theirs.high], abs=0.1 * width)


def test_the_same_seed_gives_the_same_intervals() -> None:
    log = simulate(500, np.random.default_rng(2))
    first, again = (estimates(log, n_bootstrap=100, seed=5) for _ in range(2))
    assert first == again


def test_tiny_propensities_and_exploding_weights_raise_warnings() -> None:
    n = 1_000
    propensities = np.full(n, 0.5)
    propensities[0] = 1e-5
    report = weight_diagnostics(propensities, np.full(n, 0.5))
    text = "\n".join(report.warnings)
    assert "1 of 1000 logged propensities are below 0.001" in text
    assert "effective sample size" in text
    assert "one row carries 98.0% of the total weight" in text
    assert report.max_weight == pytest.approx(0.5 / 1e-5)
    assert report.ess < 2


def test_a_target_off_the_logged_support_is_flagged_by_its_mean_weight() -> None:
    # The logger picks each of 2 actions with 0.5; the target gives the logged ones 0.1.
    report = weight_diagnostics(np.full(1_000, 0.5), np.full(1_000, 0.1))
    assert report.mean_weight == pytest.approx(0.2)
    assert any("mean importance weight 0.200 is far from 1" in w for w in report.warnings)


def test_a_well_overlapping_target_raises_no_warning() -> None:
    log = simulate(5_000, np.random.default_rng(4))
    report = weight_diagnostics(log.propensities, log.target_probs)
    assert report.warnings == ()
    # Weights are 4 (target 0.8 / logged 0.2) a fifth of the time, else 0.25:
    # ESS / n tends to 1 / E[w^2] = 1 / 3.25.
    assert report.ess / report.n == pytest.approx(1 / 3.25, rel=0.1)


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"propensities": [0.5, 0.5, 0.5]}, "inputs differ in length: rewards 2, propensities 3"),
        (
            {"propensities": [0.5, 0.0]},
            "propensities: 1 values outside (0, 1] (first 0.0 at row 1)",
        ),
        ({"propensities": [1.5, 0.5]}, "propensities: 1 values outside (0, 1]"),
        ({"target_probs": [-0.1, 0.5]}, "target_probs: 1 values outside [0, 1]"),
        ({"target_probs": [0.5, 1.01]}, "target_probs: 1 values outside [0, 1]"),
        ({"rewards": [np.nan, 1.0]}, "rewards: 1 non-finite values (first at row 0)"),
        ({"rewards": [1.0, np.inf]}, "rewards: 1 non-finite values (first at row 1)"),
        ({"rewards": [[1.0, 0.0]]}, "rewards: expected one value per logged row"),
        ({"rewards": ["a", "b"]}, "rewards: not numbers"),
        ({"rewards": [], "propensities": [], "target_probs": []}, "no logged rows"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_problem(
    columns: dict[str, object], problem: str
) -> None:
    given: dict[str, object] = {
        "rewards": [1.0, 0.0],
        "propensities": [0.5, 0.5],
        "target_probs": [0.5, 0.5],
    }
    given.update(columns)
    for estimator in (ips, snips):
        with pytest.raises(ValueError, match=re.escape(problem)):
            estimator(**given)  # type: ignore[arg-type]


def test_dr_refuses_a_reward_model_of_the_wrong_length_or_not_finite() -> None:
    with pytest.raises(ValueError, match="inputs differ in length"):
        doubly_robust(R, P, T, Q_LOGGED[:3], Q_TARGET)
    with pytest.raises(ValueError, match="q_target: 1 non-finite"):
        doubly_robust(R, P, T, Q_LOGGED, [0.1, np.nan, 0.1, 0.1])


def test_snips_refuses_a_target_that_never_takes_a_logged_action() -> None:
    with pytest.raises(ValueError, match="snips: the target policy gives every logged action"):
        snips(R, P, [0.0] * 4)


@pytest.mark.parametrize(
    ("kwargs", "problem"), [({"n_bootstrap": 0}, "n_bootstrap"), ({"level": 1.0}, "level")]
)
def test_the_bootstrap_refuses_meaningless_settings(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        bootstrap_ci([[1.0, 2.0]], [[1.0, 1.0]], **kwargs)  # type: ignore[arg-type]


# Slotted pages: an item at a position, the Open Bandit Dataset's shape.


def test_a_uniform_policy_gives_every_item_one_over_n_at_each_position() -> None:
    policy = uniform_policy(4, [3, 1, 1, 2])
    assert policy.positions.tolist() == [1, 2, 3]
    assert policy.target_probs([0, 3, 2], [1, 2, 3]).tolist() == [0.25] * 3


def test_a_policy_refuses_a_position_it_does_not_know() -> None:
    with pytest.raises(
        ValueError, match=re.escape("position 4 is not one of its positions [1, 2]")
    ):
        uniform_policy(3, [1, 2]).target_probs([0], [4])


def test_a_policy_must_sum_to_one_at_each_position() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        SlotPolicy(np.array([0]), np.array([[0.5, 0.4]]))


def test_the_empirical_policy_is_the_harmonic_mean_of_the_logged_propensities() -> None:
    # Item 0 shown twice at position 1 (propensities 0.5, 0.25): 2 / (2 + 4) = 1/3.
    # Item 1 once (0.5): 1 / 2. Renormalized: 0.4 and 0.6; item 2 never shown: 0.
    policy = empirical_policy([0, 0, 1], [1, 1, 1], [0.5, 0.25, 0.5], n_actions=3)
    assert policy.positions.tolist() == [1]
    assert policy.probs[0].tolist() == pytest.approx([0.4, 0.6, 0.0])


def test_the_empirical_policy_recovers_a_stationary_logger_exactly() -> None:
    rng = np.random.default_rng(1)
    truth = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    positions = rng.integers(0, 2, size=3_000)
    actions = np.array([rng.choice(3, p=truth[p]) for p in positions])
    policy = empirical_policy(actions, positions, truth[positions, actions], n_actions=3)
    assert policy.probs == pytest.approx(truth, rel=1e-12)


def test_a_row_s_own_reward_never_enters_its_reward_model_prediction() -> None:
    rng = np.random.default_rng(6)
    n = 200
    actions, positions = rng.integers(0, 3, size=n), rng.integers(0, 2, size=n)
    rewards = (rng.random(n) < 0.3).astype(np.float64)
    policy = uniform_policy(3, positions)
    q_logged, q_target = cross_fitted_rewards(actions, positions, rewards, policy)
    flipped = rewards.copy()
    flipped[17] = 1.0 - flipped[17]
    q_logged2, q_target2 = cross_fitted_rewards(actions, positions, flipped, policy)
    assert q_logged2[17] == q_logged[17]
    assert q_target2[17] == q_target[17]
    assert not np.array_equal(q_logged2, q_logged)  # other folds did learn from it


def test_evaluating_the_logging_policy_itself_returns_its_observed_value() -> None:
    rng = np.random.default_rng(8)
    n = 2_000
    actions, positions = rng.integers(0, 4, size=n), rng.integers(1, 4, size=n)
    rewards = (rng.random(n) < 0.2).astype(np.float64)
    report = evaluate_slot_policy(
        actions, positions, rewards, np.full(n, 0.25), uniform_policy(4, positions), n_bootstrap=100
    )
    assert report.estimate("ips").value == pytest.approx(report.observed)
    assert report.estimate("snips").value == pytest.approx(report.observed)
    assert report.estimate("dr").value == pytest.approx(report.observed, abs=0.01)
    assert report.diagnostics.ess == pytest.approx(n)
