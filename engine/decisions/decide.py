"""Choosing one variant per slot for one visitor: the heart of `POST /v1/decide`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from engine.decisions.rules import Facts
from engine.decisions.segments import Segment, segments_of
from engine.decisions.slots import Slot, Variant

# "fallback": Redis was away; "no_consent": the visitor refused personalization.
DecisionPolicy = Literal["rules", "fallback", "no_consent"]


@dataclass(frozen=True, slots=True)
class Decision:
    slot: str
    variant: Variant
    policy: DecisionPolicy
    propensity: float  # probability the policy had of choosing this variant


def decide(
    slots: Sequence[Slot], segments: Sequence[Segment], facts: Facts
) -> tuple[list[Decision], frozenset[str]]:
    """One decision per slot, and the visitor's segments (which rules may target)."""
    member_of = segments_of(segments, facts)
    facts = replace(facts, segments=member_of)
    # Rules are deterministic: the chosen variant had probability one.
    decisions = [Decision(s.name, s.first_match(facts), "rules", 1.0) for s in slots]
    return decisions, member_of


def fallback(slots: Sequence[Slot], policy: DecisionPolicy = "fallback") -> list[Decision]:
    """Defaults for every slot, for when the visitor's data cannot or may not be read."""
    return [Decision(s.name, s.default, policy, 1.0) for s in slots]
