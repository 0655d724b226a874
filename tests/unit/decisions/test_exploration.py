"""Exploration draws with the probabilities it reports: propensities are exact."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.special import softmax

from engine.decisions.exploration import Exploration, parse_exploration

SCORES = np.array([0.1, 0.5, 0.3, 0.5])


def test_epsilon_greedy_gives_the_first_best_the_rest_of_the_mass() -> None:
    probs = Exploration("epsilon", 0.2).probabilities(SCORES)
    np.testing.assert_allclose(probs, [0.05, 0.85, 0.05, 0.05])
    np.testing.assert_allclose(Exploration("epsilon", 0.0).probabilities(SCORES), [0, 1, 0, 0])


def test_softmax_matches_scipy() -> None:
    probs = Exploration("softmax", 0.25).probabilities(SCORES)
    np.testing.assert_allclose(probs, softmax(SCORES / 0.25), rtol=1e-12)


@pytest.mark.parametrize("policy", [Exploration("epsilon", 0.3), Exploration("softmax", 0.2)])
def test_draws_follow_the_reported_probabilities(policy: Exploration) -> None:
    rng = random.Random(5)
    n = 40_000
    counts = np.zeros(SCORES.size)
    expected = policy.probabilities(SCORES)
    for _ in range(n):
        index, propensity = policy.choose(SCORES, rng)
        assert propensity == expected[index]
        counts[index] += 1
    # within 4 standard errors of each probability
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 1e-9
    assert np.all(np.abs(counts / n - expected) <= tolerance)


@pytest.mark.parametrize(
    "raw",
    [{"epsilon": 1.5}, {"softmax": 0}, {"greedy": 1}, {"epsilon": "x"}, [], {"epsilon": True}],
)
def test_bad_exploration_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="exploration"):
        parse_exploration(raw)


def test_the_default_is_five_percent_epsilon() -> None:
    assert parse_exploration(None) == Exploration("epsilon", 0.05)
    assert parse_exploration({"softmax": 2}) == Exploration("softmax", 2.0)


def test_a_scorer_that_raises_leaves_the_slot_to_its_rules() -> None:
    from engine.decisions.decide import Models, decide
    from engine.decisions.rules import Facts
    from engine.decisions.slots import compile_slot

    class Broken:
        version = "v1"

        def score(self, features: object, variants: object) -> np.ndarray:
            raise ValueError("bad input")

    slot = compile_slot(
        "hero",
        {"variants": [{"id": "a"}, {"id": "b"}], "default": "b", "policy": "model"},
    )
    missing: list[str] = []
    decisions, _ = decide(
        [slot],
        [],
        Facts(context={}, features={}),
        Models(scorers={"hero": Broken()}),  # type: ignore[dict-item]
        on_model_missing=missing.append,
    )
    assert (decisions[0].variant.id, decisions[0].policy) == ("b", "rules")
    assert missing == ["hero"]
