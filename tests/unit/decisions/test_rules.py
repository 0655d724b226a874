"""The targeting condition language: evaluation, missing-value semantics, validation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decisions.rules import MAX_DEPTH, MAX_LIST, OPS, Facts, compile_condition
from engine.errors import InvalidInput

DETERMINISTIC = settings(deadline=None, derandomize=True, database=None)


def facts(
    context: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
    segments: set[str] | None = None,
) -> Facts:
    return Facts(context or {}, features or {}, frozenset(segments or ()))


def leaf(attr: str, op: str, value: Any = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"attr": attr, "op": op}
    if value is not None:
        cond["value"] = value
    return cond


def matches(cond: dict[str, Any], f: Facts) -> bool:
    return compile_condition(cond)(f)


def refused(cond: Any, message: str, **kwargs: Any) -> None:
    """`cond` is refused with an error that starts with `message` (a JSON path and reason)."""
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        compile_condition(cond, **kwargs)


# --- leaves on context --------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("eq", "mobile", "mobile", True),
        ("eq", "mobile", "desktop", False),
        ("eq", 3, 3.0, True),
        ("ne", "mobile", "desktop", True),
        ("ne", "mobile", "mobile", False),
        ("in", ["fr", "ja"], "ja", True),
        ("in", ["fr", "ja"], "en", False),
        ("not_in", ["fr", "ja"], "en", True),
        ("not_in", ["fr", "ja"], "fr", False),
        ("gt", 10, 11, True),
        ("gt", 10, 10, False),
        ("gte", 10, 10, True),
        ("gte", 10, 9.5, False),
        ("lt", 10, 9.5, True),
        ("lt", 10, 10, False),
        ("lte", 10, 10, True),
        ("lte", 10, 11, False),
        ("contains", "sale", "/summer-sale/shoes", True),
        ("contains", "sale", "/shoes", False),
        ("contains", "vip", ["new", "vip"], True),
        ("contains", "vip", ["new"], False),
        ("contains", 5, "page-5", False),
    ],
)
def test_context_leaf_compares_the_context_value(
    op: str, value: Any, actual: Any, expected: bool
) -> None:
    assert matches(leaf("context.x", op, value), facts({"x": actual})) is expected


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("actual", ["5", True, None, [5]])
def test_ordering_ops_never_match_a_value_that_is_not_a_number(op: str, actual: Any) -> None:
    assert not matches(leaf("context.x", op, 0), facts({"x": actual}))


def test_exists_matches_a_present_context_key_even_when_its_value_is_falsy() -> None:
    cond = leaf("context.coupon", "exists")
    assert matches(cond, facts({"coupon": ""}))
    assert not matches(cond, facts({}))


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("gt", 0, False),
        ("gte", 0, False),
        ("lt", 0, False),
        ("lte", 0, False),
        ("exists", True, False),
        ("exists", False, True),
        ("contains", "x", False),
    ],
)
def test_missing_context_key_matches_only_ne_not_in_and_exists_false(
    op: str, value: Any, expected: bool
) -> None:
    assert matches(leaf("context.absent", op, value), facts({"other": "x"})) is expected


@pytest.mark.parametrize(
    ("cond", "context"),
    [
        (leaf("context.member", "eq", True), {"member": 1}),
        (leaf("context.member", "eq", False), {"member": 0}),
        (leaf("context.member", "eq", 1), {"member": True}),
        (leaf("context.member", "in", [1]), {"member": True}),
        (leaf("context.member", "in", [True]), {"member": 1}),
    ],
    ids=["eq-true-vs-1", "eq-false-vs-0", "eq-1-vs-true", "in-1-vs-true", "in-true-vs-1"],
)
def test_booleans_and_numbers_are_different_json_values(
    cond: dict[str, Any], context: dict[str, Any]
) -> None:
    # JSON true is not the number 1; the ordering ops already refuse booleans as numbers.
    assert not matches(cond, facts(context))


# --- leaves on features -------------------------------------------------------------


def test_feature_the_visitor_lacks_reads_as_its_schema_default() -> None:
    new_visitor = facts(features={})
    assert matches(leaf("features.page_views", "lt", 1), new_visitor)
    assert matches(leaf("features.last_channel", "eq", ""), new_visitor)
    assert matches(leaf("features.days_since_last_seen", "eq", -1.0), new_visitor)


def test_feature_family_member_the_visitor_lacks_reads_as_the_family_default() -> None:
    assert matches(leaf("features.views.shoes", "eq", 0), facts(features={"views.hats": 3}))


def test_stored_feature_value_is_compared() -> None:
    cond = leaf("features.views.shoes", "gte", 3)
    assert matches(cond, facts(features={"views.shoes": 3}))
    assert not matches(cond, facts(features={"views.shoes": 2}))


def test_feature_exists_asks_whether_it_is_stored_not_its_default() -> None:
    stored_as_default = facts(features={"page_views": 0})
    assert matches(leaf("features.page_views", "exists"), stored_as_default)
    assert not matches(leaf("features.page_views", "exists"), facts())
    assert matches(leaf("features.page_views", "exists", False), facts())
    assert not matches(leaf("features.page_views", "exists", False), stored_as_default)


# --- segments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "segments", "expected"),
    [
        ("contains", "vip", {"vip", "mobile"}, True),
        ("contains", "vip", {"mobile"}, False),
        ("in", ["vip", "sports"], {"sports"}, True),
        ("in", ["vip", "sports"], {"mobile"}, False),
        ("in", ["vip"], set(), False),
        ("not_in", ["vip", "sports"], {"mobile"}, True),
        ("not_in", ["vip", "sports"], {"sports", "mobile"}, False),
        ("not_in", ["vip"], set(), True),
        ("exists", True, {"mobile"}, True),
        ("exists", True, set(), False),
        ("exists", False, set(), True),
        ("exists", False, {"mobile"}, False),
    ],
)
def test_segments_leaf_tests_the_visitors_segment_set(
    op: str, value: Any, segments: set[str], expected: bool
) -> None:
    assert matches(leaf("segments", op, value), facts(segments=segments)) is expected


@pytest.mark.parametrize("op", ["eq", "ne", "gt", "gte", "lt", "lte"])
def test_segments_refuse_ops_other_than_contains_in_not_in_exists(op: str) -> None:
    refused(leaf("segments", op, 1), "when.op: segments supports")


def test_segments_contains_needs_a_segment_name() -> None:
    refused(leaf("segments", "contains", 3), "when.value: segments contains needs")


def test_segments_are_refused_when_not_allowed_even_nested() -> None:
    cond = {"any": [leaf("context.x", "exists"), {"not": leaf("segments", "contains", "vip")}]}
    refused(cond, "when.any[1].not.attr: a segment cannot", allow_segments=False)
    assert compile_condition(cond)(facts({"x": 1}))


# --- combinators --------------------------------------------------------------------


def test_all_needs_every_condition_and_any_needs_one() -> None:
    mobile = leaf("context.device", "eq", "mobile")
    japanese = leaf("context.locale", "eq", "ja")
    both = facts({"device": "mobile", "locale": "ja"})
    one = facts({"device": "mobile", "locale": "fr"})
    neither = facts({"device": "desktop", "locale": "fr"})
    assert [matches({"all": [mobile, japanese]}, f) for f in (both, one, neither)] == [
        True,
        False,
        False,
    ]
    assert [matches({"any": [mobile, japanese]}, f) for f in (both, one, neither)] == [
        True,
        True,
        False,
    ]


def test_not_inverts_a_combinator() -> None:
    cond = {"not": {"any": [leaf("context.a", "exists"), leaf("context.b", "exists")]}}
    assert matches(cond, facts({"c": 1}))
    assert not matches(cond, facts({"b": 1}))


def nested(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = leaf("context.x", "exists")
    for level in range(depth):
        cond = {"not": cond} if level % 2 else {"all": [cond]}
    return cond


def test_conditions_nested_up_to_the_limit_compile() -> None:
    assert compile_condition(nested(MAX_DEPTH))(facts({"x": 1}))


def test_conditions_nested_past_the_limit_are_refused() -> None:
    with pytest.raises(InvalidInput, match=f"nest deeper than {MAX_DEPTH}"):
        compile_condition(nested(MAX_DEPTH + 1))


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        ({}, "when: a condition must be a non-empty object"),
        ([leaf("context.x", "exists")], "when: a condition must be a non-empty object"),
        ("context.x", "when: a condition must be a non-empty object"),
        ({"all": []}, "when.all: must be a non-empty list"),
        ({"any": leaf("context.x", "exists")}, "when.any: must be a non-empty list"),
        ({"none": [leaf("context.x", "exists")]}, "when: unknown condition 'none'"),
        (
            {"all": [leaf("context.x", "exists")], "any": [leaf("context.x", "exists")]},
            "when: use exactly one of",
        ),
        ({"not": {}}, "when.not: a condition must be a non-empty object"),
        ({**leaf("context.x", "eq", 1), "note": "hi"}, "when: unknown fields ['note']"),
        (leaf("context.x", "like", "a"), "when.op: 'like' is not one of"),
        ({"attr": "context.x"}, "when.op: None is not one of"),
        ({"attr": ["context.x"], "op": "eq", "value": 1}, "when.attr: must be a string"),
        ({"attr": "context.x", "op": "eq"}, "when.value: required for op 'eq'"),
        (leaf("context.x", "exists", "yes"), "when.value: op 'exists' takes true or false"),
        (leaf("context.x", "in", "a"), "when.value: op 'in' needs a list"),
        (leaf("context.x", "not_in", [["a"]]), "when.value: list values must be"),
        (leaf("context.x", "in", [{"a": 1}]), "when.value: list values must be"),
        (leaf("context.x", "gt", "5"), "when.value: op 'gt' needs a number"),
        (leaf("context.x", "lte", True), "when.value: op 'lte' needs a number"),
        (leaf("context.x", "eq", {"a": 1}), "when.value: op 'eq' needs a string"),
        (leaf("context.x", "contains", ["a"]), "when.value: op 'contains' needs a string"),
        (leaf("features.nope", "eq", 1), "when.attr: unknown feature 'nope'"),
        (leaf("features.views.Shoes", "eq", 1), "when.attr: unknown feature 'views.Shoes'"),
        (leaf("features.views", "eq", 1), "when.attr: unknown feature 'views'"),
        (leaf("context.", "eq", 1), "when.attr: 'context.' is not context.<key>"),
        (leaf("context.has-dash", "eq", 1), "when.attr: 'context.has-dash' is not"),
        (leaf("context", "eq", 1), "when.attr: 'context' is not"),
        (leaf("visitor.age", "eq", 1), "when.attr: 'visitor.age' is not"),
    ],
)
def test_invalid_condition_is_refused_with_its_json_path(cond: Any, message: str) -> None:
    refused(cond, message)


def test_error_path_points_into_nested_lists() -> None:
    cond = {
        "all": [
            leaf("context.x", "exists"),
            {"any": [leaf("context.y", "eq", 1), {"not": leaf("context.z", "gt", "a")}]},
        ]
    }
    refused(cond, "when.all[1].any[1].not.value: op 'gt' needs a number")


def test_error_path_starts_at_the_path_given() -> None:
    refused(leaf("context.x", "bogus", 1), "rules[3].when.op:", path="rules[3].when")


def test_lists_up_to_the_limit_are_accepted_and_longer_ones_refused() -> None:
    at_limit = compile_condition(leaf("context.x", "in", list(range(MAX_LIST))))
    assert at_limit(facts({"x": MAX_LIST - 1}))
    refused(leaf("context.x", "in", list(range(MAX_LIST + 1))), "when.value: op 'in' needs")


# --- properties ---------------------------------------------------------------------

KEYS = ("a", "b", "c")
scalars = st.one_of(
    st.text(max_size=5),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.booleans(),
)
context_values = st.one_of(scalars, st.lists(scalars, max_size=3))
contexts = st.dictionaries(st.sampled_from(KEYS), context_values, max_size=3)
attrs = st.sampled_from([f"context.{k}" for k in KEYS])
numbers = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(OPS))
    if op in ("in", "not_in"):
        value: Any = draw(st.lists(scalars, max_size=4))
    elif op in ("gt", "gte", "lt", "lte"):
        value = draw(numbers)
    elif op == "exists":
        value = draw(st.booleans())
    else:
        value = draw(scalars)
    return {"attr": draw(attrs), "op": op, "value": value}


@DETERMINISTIC
@given(cond=leaves(), context=contexts)
def test_not_inverts_any_leaf(cond: dict[str, Any], context: dict[str, Any]) -> None:
    f = facts(context)
    assert matches({"not": cond}, f) is (not matches(cond, f))


@DETERMINISTIC
@given(cond=leaves(), context=contexts)
def test_all_or_any_of_one_condition_equals_the_condition(
    cond: dict[str, Any], context: dict[str, Any]
) -> None:
    f = facts(context)
    assert matches({"all": [cond]}, f) is matches(cond, f)
    assert matches({"any": [cond]}, f) is matches(cond, f)


@DETERMINISTIC
@given(attr=attrs, values=st.lists(scalars, max_size=4), context=contexts)
def test_in_and_not_in_are_complements(
    attr: str, values: list[Any], context: dict[str, Any]
) -> None:
    f = facts(context)
    assert matches(leaf(attr, "in", values), f) is not matches(leaf(attr, "not_in", values), f)


@DETERMINISTIC
@given(key=st.sampled_from(KEYS), value=scalars, context=contexts)
def test_eq_and_ne_are_complements(key: str, value: Any, context: dict[str, Any]) -> None:
    f = facts(context)
    attr = f"context.{key}"
    assert matches(leaf(attr, "eq", value), f) is not matches(leaf(attr, "ne", value), f)
