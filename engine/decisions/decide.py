"""Choosing one variant per slot for one visitor: the heart of `POST /v1/decide`."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal, NamedTuple

import numpy as np

from engine.decisions.bandit import SlotBandit
from engine.decisions.rules import Facts
from engine.decisions.segments import Segment, segments_of
from engine.decisions.slots import PolicyName, Slot, Variant
from engine.experiments.assignment import Assignment, assign
from engine.experiments.definitions import Experiment
from models.scorer import VariantScorer

# "model": the slot's scorer chose, with exploration; "bandit": a Thompson draw from
# the visitor's segment's posteriors; "uniform": every variant equally likely (the log
# a first scorer is trained and judged on); "fallback": Redis was away; "no_consent": the
# visitor refused personalization. A model or bandit slot that cannot decide that way
# (no scorer loaded, no posteriors yet) decides by its rules and says "rules".
# "experiment": the visitor's experiment arm fixed the variant (or an MVT cell its
# content); "holdout": the experiment's holdout, who get the slot's default.
DecisionPolicy = Literal[
    "rules", "model", "bandit", "uniform", "experiment", "holdout", "fallback", "no_consent"
]
_SHARED_RNG = random.Random()
_SHARED_NP_RNG = np.random.default_rng()
log = logging.getLogger(__name__)


class Decision(NamedTuple):
    """One slot's choice. A NamedTuple: immutable, and one is built per slot per request
    (a frozen dataclass takes twice as long to build)."""

    slot: str
    variant: Variant
    policy: DecisionPolicy
    propensity: float  # probability the policy had of choosing this variant
    model_version: str | None = None
    segment: str | None = None  # the bandit's posterior
    propensity_estimated: bool = False  # a bandit's: by Monte Carlo, not exact
    experiment: str | None = None
    arm: str | None = None


class Models(NamedTuple):
    """What the learned policies decide with, as this worker holds it now."""

    scorers: Mapping[str, VariantScorer] = MappingProxyType({})  # active, by slot
    scorer_versions: Mapping[str, VariantScorer] = MappingProxyType({})  # by version
    bandits: Mapping[str, SlotBandit] = MappingProxyType({})


NO_MODELS = Models()


class _Visitor(NamedTuple):
    facts: Facts
    member_of: frozenset[str]
    rng: random.Random
    bandit_rng: np.random.Generator
    on_model_missing: Callable[[str], None]


def decide(
    slots: Sequence[Slot],
    segments: Sequence[Segment],
    facts: Facts,
    models: Models = NO_MODELS,
    *,
    pid: str = "",
    experiments: Mapping[str, tuple[Experiment, ...]] | None = None,
    rng: random.Random = _SHARED_RNG,
    bandit_rng: np.random.Generator | None = None,
    on_model_missing: Callable[[str], None] = lambda slot: None,
) -> tuple[list[Decision], frozenset[str]]:
    """One decision per slot, and the visitor's segments (which rules may target).
    A slot under a running experiment the visitor is assigned to (by `pid`) decides
    as their arm says."""
    member_of = segments_of(segments, facts)
    visitor = _Visitor(
        Facts(facts.context, facts.features, member_of),
        member_of,
        rng,
        bandit_rng or _SHARED_NP_RNG,
        on_model_missing,
    )
    decisions = []
    for slot in slots:
        assignment = None
        if experiments:
            for experiment in experiments.get(f"slot:{slot.name}", ()):
                assignment = assign(experiment, pid)
                if assignment is not None:
                    break
        if assignment is None:
            decisions.append(
                _by_policy(slot, slot.policy, models.scorers.get(slot.name), models, visitor)
            )
        else:
            decisions.append(_in_experiment(slot, assignment, models, visitor))
    return decisions, member_of


def _in_experiment(
    slot: Slot, assignment: Assignment, models: Models, visitor: _Visitor
) -> Decision:
    experiment, arm = assignment.experiment.id, assignment.definition
    if arm is None:  # the holdout: what the slot shows when nothing is personalized
        return Decision(
            slot.name, slot.default, "holdout", 1.0, experiment=experiment, arm=assignment.arm
        )
    if arm.content is not None:  # an MVT cell: the base variant with the levels' patches
        base = assignment.experiment.base or slot.default.id
        variant = Variant(base, arm.content)
        return Decision(slot.name, variant, "experiment", 1.0, experiment=experiment, arm=arm.name)
    if arm.variant is not None:
        variant = slot.variants[arm.variant]
        return Decision(slot.name, variant, "experiment", 1.0, experiment=experiment, arm=arm.name)
    if arm.model_version is not None:
        scorer = models.scorer_versions.get(arm.model_version)
        decision = _by_policy(slot, "model", scorer, models, visitor)
    else:
        policy = arm.policy or slot.policy
        decision = _by_policy(slot, policy, models.scorers.get(slot.name), models, visitor)
    return decision._replace(experiment=experiment, arm=arm.name)


def _by_policy(
    slot: Slot,
    policy: PolicyName,
    scorer: VariantScorer | None,
    models: Models,
    visitor: _Visitor,
) -> Decision:
    facts = visitor.facts
    if policy == "uniform":
        ids = list(slot.variants)
        variant = slot.variants[ids[int(visitor.rng.random() * len(ids))]]
        return Decision(slot.name, variant, "uniform", 1.0 / len(ids))
    if policy == "bandit":
        return _bandit_decision(slot, visitor, models.bandits.get(slot.name))
    if policy != "model":
        # rules are deterministic: the chosen variant had probability one
        return Decision(slot.name, slot.first_match(facts), "rules", 1.0)
    if scorer is None:
        visitor.on_model_missing(slot.name)
        return Decision(slot.name, slot.first_match(facts), "rules", 1.0)
    ids = list(slot.variants)
    try:
        scores = scorer.score(facts.features, ids)
    except Exception:  # a model that breaks on some input must not break decide
        log.exception("scorer %s failed on slot %s; its rules decide", scorer.version, slot.name)
        visitor.on_model_missing(slot.name)
        return Decision(slot.name, slot.first_match(facts), "rules", 1.0)
    index, propensity = slot.exploration.choose(scores, visitor.rng)
    return Decision(slot.name, slot.variants[ids[index]], "model", propensity, scorer.version)


def _bandit_decision(slot: Slot, visitor: _Visitor, bandit: SlotBandit | None) -> Decision:
    if bandit is None or bandit.config != slot.bandit or bandit.variants != tuple(slot.variants):
        # posteriors not read yet for this definition: the rules hold the slot meanwhile
        return Decision(slot.name, slot.first_match(visitor.facts), "rules", 1.0)
    segment = bandit.config.segment_of(visitor.member_of)
    index, propensity = bandit.posteriors[segment].choose(visitor.bandit_rng)
    variant = slot.variants[bandit.variants[index]]
    return Decision(
        slot.name, variant, "bandit", propensity, segment=segment, propensity_estimated=True
    )


def fallback(slots: Sequence[Slot], policy: DecisionPolicy = "fallback") -> list[Decision]:
    """Defaults for every slot, for when the visitor's data cannot or may not be read."""
    return [Decision(s.name, s.default, policy, 1.0) for s in slots]
