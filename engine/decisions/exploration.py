"""Exploration for model-scored slots: how a choice is drawn from the scorer's scores,
with the exact probability it had (the propensity every off-policy estimate needs).

- epsilon-greedy: the best variant (first among equals) with 1 - epsilon + epsilon/K,
  each other variant with epsilon/K;
- softmax: variant i with exp(s_i / T) / sum_j exp(s_j / T).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import numpy as np

ExplorationKind = Literal["epsilon", "softmax"]


@dataclass(frozen=True, slots=True)
class Exploration:
    kind: ExplorationKind = "epsilon"
    value: float = 0.05  # epsilon, or the softmax temperature

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """The policy's distribution over the variants, given their scores."""
        k = scores.size
        if self.kind == "softmax":
            z = (scores - scores.max()) / self.value
            weights = np.exp(z)
            out: np.ndarray = weights / weights.sum()
            return out
        probs = np.full(k, self.value / k)
        probs[int(np.argmax(scores))] += 1.0 - self.value
        return probs

    def choose(self, scores: np.ndarray, rng: random.Random) -> tuple[int, float]:
        """A variant index drawn from `probabilities`, and its probability."""
        if self.kind == "epsilon":  # closed form: one draw, no arrays (the hot path)
            k, best = scores.size, int(scores.argmax())
            u = rng.random()
            index = min(int(u / self.value * k), k - 1) if u < self.value else best
            share = self.value / k
            return index, (1.0 - self.value + share) if index == best else share
        probs = self.probabilities(scores)
        u = rng.random()
        index = int(np.searchsorted(np.cumsum(probs), u, side="right"))
        index = min(index, probs.size - 1)  # u within rounding of 1.0
        return index, float(probs[index])


def parse_exploration(raw: object) -> Exploration:
    """`{"epsilon": 0.1}` or `{"softmax": 0.5}` (the temperature); ValueError otherwise."""
    if raw is None:
        return Exploration()
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ValueError('exploration is {"epsilon": E} or {"softmax": T}')
    ((kind, value),) = raw.items()
    if kind not in ("epsilon", "softmax") or isinstance(value, bool):
        raise ValueError('exploration is {"epsilon": E} or {"softmax": T}')
    if not isinstance(value, int | float):
        raise ValueError(f"exploration.{kind} must be a number")
    if kind == "epsilon" and not 0.0 <= value <= 1.0:
        raise ValueError("exploration.epsilon must be within [0, 1]")
    if kind == "softmax" and not 1e-3 <= value <= 1e3:
        raise ValueError("exploration.softmax (the temperature) must be within [0.001, 1000]")
    return Exploration(kind, float(value))
