"""Off-policy inputs from the engine's own decision log: for one slot, the logged
rewards and propensities, and a target policy's probabilities of the logged choices
with a reward model's predictions for DR.

Target policies: `uniform` (every eligible variant alike) and a scorer's greedy policy
(`scorer:<version>`: the best-scored eligible variant). The reward model is the scorer
itself when there is one, else each variant's smoothed click rate in the log.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.scorer import VariantScorer
from training.attribution import AttributedDecisions

SMOOTHING = 20.0  # pseudo-decisions at the slot's overall rate, per variant

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class OpeInputs:
    rewards: FloatArray
    propensities: FloatArray
    target_probs: FloatArray
    q_logged: FloatArray
    q_target: FloatArray


def uniform_inputs(decisions: AttributedDecisions) -> OpeInputs:
    rewards = decisions.clicked.astype(np.float64)
    overall = float(rewards.mean()) if rewards.size else 0.0
    rate: dict[str, float] = {}
    for variant in np.unique(decisions.chosen):
        mask = decisions.chosen == variant
        rate[str(variant)] = (rewards[mask].sum() + SMOOTHING * overall) / (mask.sum() + SMOOTHING)
    eligible = [
        p.get("eligible") or [str(c)]
        for p, c in zip(decisions.properties, decisions.chosen, strict=True)
    ]
    return OpeInputs(
        rewards=rewards,
        propensities=decisions.propensities,
        target_probs=np.array([1.0 / len(e) for e in eligible]),
        q_logged=np.array([rate.get(str(c), overall) for c in decisions.chosen]),
        q_target=np.array([np.mean([rate.get(v, overall) for v in e]) for e in eligible]),
    )


def greedy_inputs(decisions: AttributedDecisions, scorer: VariantScorer) -> OpeInputs:
    target, q_logged, q_target = [], [], []
    for props, chosen in zip(decisions.properties, decisions.chosen, strict=True):
        eligible = props.get("eligible") or [str(chosen)]
        scores = scorer.score(props.get("features", {}), eligible)
        best = int(np.argmax(scores))
        target.append(1.0 if eligible[best] == chosen else 0.0)
        logged = eligible.index(str(chosen)) if str(chosen) in eligible else best
        q_logged.append(float(scores[logged]))
        q_target.append(float(scores[best]))
    return OpeInputs(
        rewards=decisions.clicked.astype(np.float64),
        propensities=decisions.propensities,
        target_probs=np.array(target),
        q_logged=np.array(q_logged),
        q_target=np.array(q_target),
    )


def estimated_propensities_warning(decisions: AttributedDecisions) -> str | None:
    """A warning when logged propensities are Monte Carlo estimates (a bandit's): every
    estimate divided by them inherits their error, most for rarely chosen variants."""
    estimated = sum(bool(p.get("propensity_estimated")) for p in decisions.properties)
    if not estimated:
        return None
    return (
        f"{estimated} of {len(decisions)} logged propensities are Monte Carlo estimates "
        "(bandit policy): the estimates inherit their error, most for rarely chosen variants"
    )
