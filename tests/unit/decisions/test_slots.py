"""Slot definitions: what `compile_slot` accepts and refuses, and the rules policy."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from engine.decisions.rules import Facts
from engine.decisions.slots import MAX_CONTENT_BYTES, MAX_RULES, MAX_VARIANTS, compile_slot
from engine.errors import InvalidInput

MOBILE = {"attr": "context.device", "op": "eq", "value": "mobile"}
JAPANESE = {"attr": "context.locale", "op": "eq", "value": "ja"}


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "variants": [
            {"id": "default", "content": {"title": "Welcome"}},
            {"id": "mobile", "content": {"title": "Welcome, phone"}},
            {"id": "japan", "content": {"title": "ようこそ"}},
        ],
        "default": "default",
        "rules": [
            {"when": MOBILE, "variant": "mobile"},
            {"when": JAPANESE, "variant": "japan"},
        ],
    }
    base.update(overrides)
    return base


def refused(message: str, name: str = "home_hero", **overrides: Any) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        compile_slot(name, definition(**overrides))


def context(**values: Any) -> Facts:
    return Facts(context=values, features={})


# --- what compiles ------------------------------------------------------------------


def test_valid_definition_compiles_to_a_slot_with_its_variants_and_default() -> None:
    slot = compile_slot("home_hero", definition(description="top of the home page"))
    assert slot.name == "home_hero"
    assert slot.policy == "rules"
    assert list(slot.variants) == ["default", "mobile", "japan"]
    assert slot.default is slot.variants["default"]
    assert [rule.variant.id for rule in slot.rules] == ["mobile", "japan"]


def test_variant_content_is_serialized_once_and_embeds_as_the_same_json() -> None:
    slot = compile_slot("home_hero", definition())
    embedded = orjson.dumps({"content": slot.variants["japan"].content})
    assert orjson.loads(embedded) == {"content": {"title": "ようこそ"}}


def test_variant_without_content_gets_an_empty_object() -> None:
    slot = compile_slot("banner", {"variants": [{"id": "a"}], "default": "a"})
    assert orjson.loads(orjson.dumps(slot.default.content)) == {}
    assert slot.rules == ()


def test_content_up_to_the_size_limit_is_accepted() -> None:
    padding = MAX_CONTENT_BYTES - len(orjson.dumps({"t": ""}))
    slot = compile_slot(
        "banner", {"variants": [{"id": "a", "content": {"t": "x" * padding}}]} | {"default": "a"}
    )
    assert len(orjson.dumps(slot.default.content)) == MAX_CONTENT_BYTES


# --- what is refused ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Home", "", "-home", "home hero", "a" * 65, "home.hero"])
def test_slot_name_outside_the_pattern_is_refused(name: str) -> None:
    refused("slot name", name=name)


def test_unknown_top_level_fields_are_refused() -> None:
    refused("unknown fields ['colour', 'weight']", colour="red", weight=2)


def test_unknown_policy_is_refused() -> None:
    refused("policy: 'greedy' is not one of rules, model, bandit, uniform", policy="greedy")


def test_bandit_section_is_checked_and_only_allowed_on_bandit_slots() -> None:
    refused("bandit.reward: 'click' or 'conversion'", policy="bandit", bandit={"reward": "buy"})
    refused("bandit.window_s: within [60, 86400]", policy="bandit", bandit={"window_s": 10})
    refused("bandit.prior: [alpha, beta], both positive", policy="bandit", bandit={"prior": [0, 1]})
    refused("bandit.segments: up to 50 distinct", policy="bandit", bandit={"segments": ["a", "a"]})
    refused("bandit: unknown fields ['arms']", policy="bandit", bandit={"arms": 2})
    refused('bandit: only for slots with "policy": "bandit"', bandit={})


@pytest.mark.parametrize(
    "variants",
    [None, [], "default", {"id": "default"}, [{"id": f"v{i}"} for i in range(MAX_VARIANTS + 1)]],
    ids=["null", "empty", "string", "object", "too-many"],
)
def test_variants_must_be_a_list_of_one_to_the_limit(variants: Any) -> None:
    refused(f"variants: must be a list of 1 to {MAX_VARIANTS} variants", variants=variants)


@pytest.mark.parametrize(
    "variant",
    [
        "default",
        {"content": {}},
        {"id": 7},
        {"id": "default", "content": {}, "weight": 2},
    ],
    ids=["not-object", "no-id", "id-not-string", "extra-field"],
)
def test_malformed_variant_is_refused_by_index(variant: Any) -> None:
    refused('variants[1]: a variant is {"id": ..., "content": {}}', variants=[{"id": "a"}, variant])


def test_variant_id_outside_the_pattern_is_refused() -> None:
    refused("variants[0].id: 'Big Sale' must match", variants=[{"id": "Big Sale"}])


def test_duplicate_variant_ids_are_refused() -> None:
    refused(
        "variants[2].id: 'a' appears twice",
        variants=[{"id": "a"}, {"id": "b"}, {"id": "a"}],
        default="a",
    )


@pytest.mark.parametrize("content", [None, [], "hello", 3])
def test_content_that_is_not_an_object_is_refused(content: Any) -> None:
    refused(
        "variants[0].content: must be a JSON object",
        variants=[{"id": "a", "content": content}],
        default="a",
    )


def test_content_over_the_size_limit_is_refused() -> None:
    padding = MAX_CONTENT_BYTES - len(orjson.dumps({"t": ""})) + 1
    refused(
        f"variants[0].content: larger than {MAX_CONTENT_BYTES} bytes",
        variants=[{"id": "a", "content": {"t": "x" * padding}}],
        default="a",
    )


@pytest.mark.parametrize("default", [None, "winter", 3])
def test_default_that_is_not_a_variant_is_refused(default: Any) -> None:
    refused(f"default: {default!r} is not one of the variants", default=default)


@pytest.mark.parametrize("default", [["default"], {"id": "default"}], ids=["list", "object"])
def test_default_of_the_wrong_json_type_is_refused_as_invalid_input(default: Any) -> None:
    # Definitions arrive as raw JSON, so any JSON type can sit here.
    refused("default:", default=default)


@pytest.mark.parametrize(
    "rules",
    [
        {"when": MOBILE, "variant": "mobile"},
        "mobile",
        [{"when": MOBILE, "variant": "mobile"}] * (MAX_RULES + 1),
    ],
    ids=["object", "string", "too-many"],
)
def test_rules_must_be_a_list_up_to_the_limit(rules: Any) -> None:
    refused(f"rules: must be a list of at most {MAX_RULES} rules", rules=rules)


@pytest.mark.parametrize(
    "rule",
    [
        "mobile",
        {"when": MOBILE},
        {"variant": "mobile"},
        {"when": MOBILE, "variant": "mobile", "weight": 1},
    ],
    ids=["not-object", "no-variant", "no-when", "extra-field"],
)
def test_malformed_rule_is_refused_by_index(rule: Any) -> None:
    refused(
        'rules[1]: a rule is {"when": COND, "variant": ID}',
        rules=[{"when": MOBILE, "variant": "mobile"}, rule],
    )


def test_rule_pointing_at_an_unknown_variant_is_refused() -> None:
    refused(
        "rules[0].variant: 'winter' is not a variant", rules=[{"when": MOBILE, "variant": "winter"}]
    )


def test_rule_variant_of_the_wrong_json_type_is_refused_as_invalid_input() -> None:
    refused("rules[0].variant:", rules=[{"when": MOBILE, "variant": ["mobile"]}])


def test_invalid_rule_condition_is_refused_with_its_path_in_the_slot() -> None:
    bad = {"any": [MOBILE, {"attr": "context.x", "op": "near", "value": 1}]}
    refused(
        "rules[1].when.any[1].op: 'near' is not one of",
        rules=[{"when": MOBILE, "variant": "mobile"}, {"when": bad, "variant": "japan"}],
    )


# --- the rules policy ---------------------------------------------------------------


def test_first_match_returns_the_variant_of_the_first_matching_rule_in_order() -> None:
    slot = compile_slot("home_hero", definition())
    assert slot.first_match(context(device="mobile", locale="ja")).id == "mobile"
    assert slot.first_match(context(device="desktop", locale="ja")).id == "japan"


def test_first_match_follows_the_order_the_rules_were_written_in() -> None:
    reordered = definition(
        rules=[{"when": JAPANESE, "variant": "japan"}, {"when": MOBILE, "variant": "mobile"}]
    )
    slot = compile_slot("home_hero", reordered)
    assert slot.first_match(context(device="mobile", locale="ja")).id == "japan"


def test_first_match_falls_back_to_the_default_when_no_rule_matches() -> None:
    slot = compile_slot("home_hero", definition())
    assert slot.first_match(context(device="desktop", locale="fr")) is slot.default


def test_rule_for_the_default_variant_is_allowed() -> None:
    slot = compile_slot("home_hero", definition(rules=[{"when": MOBILE, "variant": "default"}]))
    assert slot.first_match(context(device="mobile")) is slot.default


@pytest.mark.parametrize("description", [5, ["x"], "d" * 1001])
def test_description_must_be_a_short_string(description: Any) -> None:
    refused("description", description=description)


def test_a_short_description_is_kept_out_of_the_way() -> None:
    assert compile_slot("home_hero", definition(description="the big banner")).name == "home_hero"
