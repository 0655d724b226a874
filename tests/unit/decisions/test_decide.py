"""Choosing one variant per slot: `decide` with segments, and the `fallback` defaults."""

from __future__ import annotations

import random

from scipy import stats

from engine.decisions.decide import decide, fallback
from engine.decisions.rules import Facts
from engine.decisions.segments import compile_segment
from engine.decisions.slots import Slot, compile_slot

MOBILE = {"attr": "context.device", "op": "eq", "value": "mobile"}


def hero() -> Slot:
    return compile_slot(
        "home_hero",
        {
            "variants": [{"id": "generic"}, {"id": "phone"}],
            "default": "generic",
            "rules": [{"when": MOBILE, "variant": "phone"}],
        },
    )


def banner() -> Slot:
    """A slot whose rule targets a segment rather than raw context."""
    return compile_slot(
        "banner",
        {
            "variants": [{"id": "plain"}, {"id": "app_promo"}],
            "default": "plain",
            "rules": [
                {
                    "when": {"attr": "segments", "op": "contains", "value": "mobile"},
                    "variant": "app_promo",
                }
            ],
        },
    )


SEGMENTS = [compile_segment("mobile", {"when": MOBILE})]


def test_decide_gives_one_rules_decision_per_slot_in_request_order() -> None:
    decisions, _ = decide([banner(), hero()], SEGMENTS, Facts({"device": "desktop"}, {}))
    assert [(d.slot, d.variant.id, d.policy) for d in decisions] == [
        ("banner", "plain", "rules"),
        ("home_hero", "generic", "rules"),
    ]


def test_decide_records_propensity_one_for_deterministic_rules() -> None:
    decisions, _ = decide([hero()], SEGMENTS, Facts({"device": "mobile"}, {}))
    assert [d.propensity for d in decisions] == [1.0]


def test_decide_returns_the_segments_the_visitor_is_in() -> None:
    _, segments = decide([hero()], SEGMENTS, Facts({"device": "mobile"}, {}))
    assert segments == {"mobile"}
    _, segments = decide([hero()], SEGMENTS, Facts({"device": "desktop"}, {}))
    assert segments == frozenset()


def test_slot_rules_can_target_segments_computed_for_this_request() -> None:
    decisions, _ = decide([banner(), hero()], SEGMENTS, Facts({"device": "mobile"}, {}))
    assert [d.variant.id for d in decisions] == ["app_promo", "phone"]


def test_decide_with_no_slots_decides_nothing() -> None:
    decisions, segments = decide([], SEGMENTS, Facts({"device": "mobile"}, {}))
    assert decisions == []
    assert segments == {"mobile"}


def test_fallback_gives_every_slot_its_default_with_policy_fallback() -> None:
    slots = [hero(), banner()]
    decisions = fallback(slots)
    assert [(d.slot, d.variant, d.policy, d.propensity) for d in decisions] == [
        ("home_hero", slots[0].default, "fallback", 1.0),
        ("banner", slots[1].default, "fallback", 1.0),
    ]


def test_the_uniform_policy_draws_every_variant_equally_with_exact_propensity() -> None:
    slot = compile_slot(
        "hero",
        {"variants": [{"id": v} for v in "abcd"], "default": "a", "policy": "uniform"},
    )
    rng = random.Random(4)
    drawn = []
    for _ in range(4000):
        (decision,), _ = decide([slot], [], Facts(context={}, features={}), rng=rng)
        assert (decision.policy, decision.propensity) == ("uniform", 0.25)
        drawn.append(decision.variant.id)
    counts = [drawn.count(v) for v in "abcd"]
    assert stats.chisquare(counts).pvalue > 0.001
