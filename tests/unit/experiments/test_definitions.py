"""Experiment definitions: every malformed one refused with a message that says what is
wrong, and well-formed ones compiled with their defaults (first metric primary, MVT
cells named by their levels with the base variant's content patched)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.decisions.slots import Slot, compile_slot
from engine.errors import InvalidInput
from engine.experiments.definitions import (
    DEFAULT_WINDOW_S,
    compile_experiment,
)

AB: dict[str, Any] = {
    "target": "slot:hero",
    "arms": [{"name": "control", "variant": "a"}, {"name": "treat", "variant": "b"}],
    "metrics": [{"name": "clicked", "event": "click"}],
}
FACTORS = [
    {
        "name": "colour",
        "levels": [{"name": "grey"}, {"name": "red", "patch": {"colour": "red"}}],
    },
    {
        "name": "size",
        "levels": [
            {"name": "s"},
            {"name": "m", "patch": {"size": "m"}},
            {"name": "l", "patch": {"size": "l", "title": "big"}},
        ],
    },
]
MVT: dict[str, Any] = {
    "target": "slot:hero",
    "type": "mvt",
    "factors": FACTORS,
    "metrics": [{"name": "clicked", "event": "click"}],
}


@pytest.fixture
def slots() -> dict[str, Slot]:
    variants = [
        {"id": v, "content": {"title": v, "colour": "grey", "size": "s"}} for v in ("a", "b", "c")
    ]
    return {"hero": compile_slot("hero", {"variants": variants, "default": "a"})}


def with_(source: dict[str, Any], /, **changes: Any) -> dict[str, Any]:
    return {**source, **changes}


def metrics(*items: dict[str, Any]) -> dict[str, Any]:
    return with_(AB, metrics=list(items))


def arms(*items: dict[str, Any]) -> dict[str, Any]:
    return with_(AB, arms=list(items))


def levels(n: int) -> list[dict[str, str]]:
    return [{"name": f"l{i}"} for i in range(n)]


REFUSED = [
    (with_(AB, target="page:hero"), 'target: "slot:<slot name>" or "recommendations"'),
    (with_(AB, target="slot:Hero!"), 'target: "slot:<slot name>" or "recommendations"'),
    (with_(AB, target="slot:nope"), "target: no slot named 'nope'"),
    (with_(AB, type="abn"), 'type: "ab" or "mvt"'),
    (with_(AB, colour="red"), "unknown fields ['colour']"),
    (arms({"name": "control", "variant": "a"}), "arms: a list of 2 to 20 arms"),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat"}),
        "arms[1]: a slot arm needs a variant, policy or model_version",
    ),
    (
        arms(
            {"name": "control", "variant": "a"},
            {"name": "treat", "variant": "b", "policy": "model"},
        ),
        "arms[1]: one of variant, policy, model_version",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat", "variant": "z"}),
        "arms[1].variant: 'z' is not a variant of the slot",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat", "policy": "bandit"}),
        "arms[1].policy: the slot has no bandit settings",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat", "policy": "greedy"}),
        "arms[1].policy: one of rules, model, bandit, uniform",
    ),
    (
        arms({"name": "control", "variant": "a", "weight": 0}, {"name": "treat", "variant": "b"}),
        "arms[0].weight: a positive number",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat", "variant": "b", "weight": -1}),
        "arms[1].weight: a positive number",
    ),
    (
        arms({"name": "control", "variant": "a", "weight": True}, {"name": "t", "variant": "b"}),
        "arms[0].weight: a positive number",
    ),
    (
        arms({"name": "same", "variant": "a"}, {"name": "same", "variant": "b"}),
        "arms: names must differ",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "holdout", "variant": "b"}),
        "arms[1].name: a name other than 'holdout'",
    ),
    (
        arms({"name": "control", "variant": "a"}, {"name": "treat", "variant": "b", "share": 1}),
        "arms[1]: unknown fields ['share']",
    ),
    (with_(AB, control="nobody"), "control: 'nobody' is not an arm"),
    (with_(AB, control=["control"]), "control: ['control'] is not an arm"),
    (
        arms({"name": "control", "variant": ["a"]}, {"name": "treat", "variant": "b"}),
        "arms[0].variant: a variant id",
    ),
    (
        arms({"name": "control", "variant": 7}, {"name": "treat", "variant": "b"}),
        "arms[0].variant: a variant id",
    ),
    (
        with_(AB, target="recommendations"),
        "arms[0]: a recommender arm is a model_version (or none)",
    ),
    (with_(AB, factors=FACTORS), "factors, base: only for type mvt"),
    (with_(MVT, arms=AB["arms"]), "arms: an mvt experiment has factors; its cells are the arms"),
    (with_(MVT, target="recommendations"), "type: a multivariate test runs on a slot's content"),
    (with_(MVT, factors=FACTORS[:1]), "factors: a list of 2 to 4 factors"),
    (
        with_(MVT, factors=[{"name": f"f{i}", "levels": levels(8)} for i in range(3)]),
        "factors: 512 cells; at most 64",
    ),
    (
        with_(MVT, factors=[FACTORS[0], {"name": "size", "levels": levels(1)}]),
        "factors[1].levels: 2 to 8 levels",
    ),
    (
        with_(MVT, factors=[FACTORS[0], {"name": "size", "levels": [{"name": "x"}] * 2}]),
        "factors[1].levels: names must differ",
    ),
    (with_(MVT, factors=[FACTORS[0], FACTORS[0]]), "factors: names must differ"),
    (with_(MVT, control="red|xl"), "control: 'red|xl' is not a cell (levels joined by '|')"),
    (with_(MVT, control="s|grey"), "control: 's|grey' is not a cell (levels joined by '|')"),
    (
        with_(MVT, control={"colour": "red"}),
        "control: {'colour': 'red'} is not a cell (levels joined by '|')",
    ),
    (with_(MVT, base="z"), "base: 'z' is not a variant of the slot"),
    (metrics(), "metrics: a list of 1 to 10 metrics"),
    (with_(AB, metrics=None), "metrics: a list of 1 to 10 metrics"),
    (
        metrics({"name": "m", "event": "click"}, {"name": "m", "event": "purchase"}),
        "metrics: names must differ",
    ),
    (
        metrics(
            {"name": "m1", "event": "click", "primary": True},
            {"name": "m2", "event": "purchase", "primary": True},
        ),
        "metrics: one primary metric; the others are guardrails",
    ),
    (metrics({"name": "m", "event": "hover"}), "metrics[0].event: one of page_view"),
    (
        metrics({"name": "m", "event": "click", "aggregation": "mean"}),
        "metrics[0].aggregation: one of conversion, count, sum",
    ),
    (
        metrics({"name": "m", "event": "click", "window_s": 59}),
        "metrics[0].window_s: seconds within [60, 7776000]",
    ),
    (
        metrics({"name": "m", "event": "click", "window_s": 91 * 86_400}),
        "metrics[0].window_s: seconds within [60, 7776000]",
    ),
    (
        metrics({"name": "m", "event": "click", "window_s": 120.5}),
        "metrics[0].window_s: whole seconds",
    ),
    (
        metrics({"name": "m", "event": "click", "primary": "yes"}),
        "metrics[0].primary: true or false",
    ),
    (with_(AB, traffic=0), "traffic: within (0, 1]"),
    (with_(AB, traffic=1.5), "traffic: within (0, 1]"),
    (with_(AB, traffic="half"), "traffic: a number"),
    (with_(AB, holdout=0.6), "holdout: within [0, 0.5]"),
    (with_(AB, holdout=-0.1), "holdout: within [0, 0.5]"),
    (with_(AB, segments=["phones", "phones"]), "segments: listed twice"),
    (with_(AB, covariate=""), "covariate: the name of a visitor feature"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_a_malformed_definition_is_refused_saying_why(
    slots: dict[str, Slot], raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        compile_experiment("exp1", raw, slots)
    assert message in refused.value.message


@pytest.mark.parametrize("variant", [["a"], {"id": "a"}, 7])
def test_an_arm_variant_must_be_an_id_even_without_the_slots(variant: object) -> None:
    # the registry compiles without slots when it has none; decide would index by it
    raw = arms({"name": "control", "variant": variant}, {"name": "treat", "variant": "b"})
    with pytest.raises(InvalidInput, match=r"arms\[0\]\.variant: a variant id"):
        compile_experiment("exp1", raw)


def test_an_experiment_id_must_be_a_name() -> None:
    with pytest.raises(InvalidInput, match="experiment name 'Exp 1' must match"):
        compile_experiment("Exp 1", AB)


def test_the_first_metric_is_primary_unless_another_is_marked() -> None:
    two = [{"name": "clicked", "event": "click"}, {"name": "bought", "event": "purchase"}]
    e = compile_experiment("exp1", with_(AB, metrics=two))
    assert [m.primary for m in e.metrics] == [True, False]
    assert e.primary.name == "clicked"
    marked = [two[0], {**two[1], "primary": True}]
    e = compile_experiment("exp1", with_(AB, metrics=marked))
    assert [m.primary for m in e.metrics] == [False, True]
    assert e.primary.name == "bought"


def test_an_ab_experiment_compiles_with_its_defaults(slots: dict[str, Slot]) -> None:
    e = compile_experiment("exp1", AB, slots)
    assert (e.type, e.status, e.control, e.traffic, e.holdout) == ("ab", "draft", "control", 1, 0)
    assert e.bucket == (0.0, 1.0)
    assert e.layer is None
    assert e.salt == "experiment:exp1"
    assert [(a.name, a.weight, a.variant) for a in e.arms] == [
        ("control", 1.0, "a"),
        ("treat", 1.0, "b"),
    ]
    (metric,) = e.metrics
    assert (metric.aggregation, metric.window_s) == ("conversion", DEFAULT_WINDOW_S)
    layered = compile_experiment("exp1", with_(AB, layer="hero", traffic=0.25), slots)
    assert (layered.salt, layered.bucket) == ("layer:hero", (0.0, 0.25))


def test_recommender_arms_are_model_versions_or_the_live_model() -> None:
    raw = with_(
        AB,
        target="recommendations",
        arms=[{"name": "live"}, {"name": "next", "model_version": "v2"}],
    )
    e = compile_experiment("exp1", raw)
    assert e.slot is None
    assert [(a.name, a.model_version) for a in e.arms] == [("live", None), ("next", "v2")]


def test_mvt_cells_are_named_by_their_levels_in_factorial_order(slots: dict[str, Slot]) -> None:
    e = compile_experiment("exp1", MVT, slots)
    assert e.type == "mvt"
    assert [a.name for a in e.arms] == ["grey|s", "grey|m", "grey|l", "red|s", "red|m", "red|l"]
    assert e.control == "grey|s"
    assert set(e.weights) == {1.0}
    assert [(f.name, f.levels) for f in e.factors] == [
        ("colour", ("grey", "red")),
        ("size", ("s", "m", "l")),
    ]


def test_mvt_cell_content_is_the_base_variant_with_the_patches_merged(
    slots: dict[str, Slot],
) -> None:
    e = compile_experiment("exp1", with_(MVT, base="b", control="red|m"), slots)
    assert (e.base, e.control) == ("b", "red|m")
    content = {a.name: orjson.loads(orjson.dumps(a.content)) for a in e.arms}
    assert content["grey|s"] == {"title": "b", "colour": "grey", "size": "s"}
    assert content["red|m"] == {"title": "b", "colour": "red", "size": "m"}
    assert content["red|l"] == {"title": "big", "colour": "red", "size": "l"}
    assert all(a.variant is None and a.policy is None for a in e.arms)


def test_mvt_without_a_base_patches_the_slot_default(slots: dict[str, Slot]) -> None:
    e = compile_experiment("exp1", MVT, slots)
    grey_l = next(a for a in e.arms if a.name == "grey|l")
    assert orjson.loads(orjson.dumps(grey_l.content)) == {
        "title": "big",
        "colour": "grey",
        "size": "l",
    }
