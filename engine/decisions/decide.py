"""Choosing one variant per slot for one visitor: the heart of `POST /v1/decide`."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from engine.decisions.bandit import SlotBandit
from engine.decisions.rules import Facts
from engine.decisions.segments import Segment, segments_of
from engine.decisions.slots import Slot, Variant
from models.scorer import VariantScorer

# "model": the slot's scorer chose, with exploration; "bandit": a Thompson draw from
# the visitor's segment's posteriors; "uniform": every variant equally likely (the log
# a first scorer is trained and judged on); "fallback": Redis was away; "no_consent": the
# visitor refused personalization. A model or bandit slot that cannot decide that way
# (no scorer loaded, no posteriors yet) decides by its rules and says "rules".
DecisionPolicy = Literal["rules", "model", "bandit", "uniform", "fallback", "no_consent"]
_SHARED_RNG = random.Random()
_SHARED_NP_RNG = np.random.default_rng()
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    slot: str
    variant: Variant
    policy: DecisionPolicy
    propensity: float  # probability the policy had of choosing this variant
    model_version: str | None = None
    segment: str | None = None  # the bandit's posterior
    propensity_estimated: bool = False  # a bandit's: by Monte Carlo, not exact


def decide(
    slots: Sequence[Slot],
    segments: Sequence[Segment],
    facts: Facts,
    scorers: Mapping[str, VariantScorer] | None = None,
    rng: random.Random = _SHARED_RNG,
    on_model_missing: Callable[[str], None] = lambda slot: None,
    bandits: Mapping[str, SlotBandit] | None = None,
    bandit_rng: np.random.Generator | None = None,
) -> tuple[list[Decision], frozenset[str]]:
    """One decision per slot, and the visitor's segments (which rules may target)."""
    member_of = segments_of(segments, facts)
    facts = replace(facts, segments=member_of)
    decisions = []
    for slot in slots:
        if slot.policy == "uniform":
            ids = list(slot.variants)
            variant = slot.variants[ids[int(rng.random() * len(ids))]]
            decisions.append(Decision(slot.name, variant, "uniform", 1.0 / len(ids)))
            continue
        if slot.policy == "bandit":
            decisions.append(
                _bandit_decision(slot, member_of, facts, bandits, bandit_rng or _SHARED_NP_RNG)
            )
            continue
        scorer = scorers.get(slot.name) if scorers and slot.policy == "model" else None
        if scorer is None:
            if slot.policy == "model":
                on_model_missing(slot.name)
            # rules are deterministic: the chosen variant had probability one
            decisions.append(Decision(slot.name, slot.first_match(facts), "rules", 1.0))
            continue
        ids = list(slot.variants)
        try:
            scores = scorer.score(facts.features, ids)
        except Exception:  # a model that breaks on some input must not break decide
            log.exception(
                "scorer %s failed on slot %s; its rules decide", scorer.version, slot.name
            )
            on_model_missing(slot.name)
            decisions.append(Decision(slot.name, slot.first_match(facts), "rules", 1.0))
            continue
        index, propensity = slot.exploration.choose(scores, rng)
        variant = slot.variants[ids[index]]
        decisions.append(Decision(slot.name, variant, "model", propensity, scorer.version))
    return decisions, member_of


def _bandit_decision(
    slot: Slot,
    member_of: frozenset[str],
    facts: Facts,
    bandits: Mapping[str, SlotBandit] | None,
    rng: np.random.Generator,
) -> Decision:
    bandit = bandits.get(slot.name) if bandits else None
    if bandit is None or bandit.config != slot.bandit or bandit.variants != tuple(slot.variants):
        # posteriors not read yet for this definition: the rules hold the slot meanwhile
        return Decision(slot.name, slot.first_match(facts), "rules", 1.0)
    segment = bandit.config.segment_of(member_of)
    index, propensity = bandit.posteriors[segment].choose(rng)
    variant = slot.variants[bandit.variants[index]]
    return Decision(
        slot.name, variant, "bandit", propensity, segment=segment, propensity_estimated=True
    )


def fallback(slots: Sequence[Slot], policy: DecisionPolicy = "fallback") -> list[Decision]:
    """Defaults for every slot, for when the visitor's data cannot or may not be read."""
    return [Decision(s.name, s.default, policy, 1.0) for s in slots]
