"""Experiment definitions: what `PUT /v1/experiments/{id}` takes, checked and compiled.

An experiment runs on one target, a slot (`"slot:home_hero"`) or the recommender
(`"recommendations"`). An A/B/n test (`"type": "ab"`) has weighted arms, each a fixed
variant, a policy, or a model version; a multivariate test (`"type": "mvt"`) has
factors whose levels patch the content of a base variant, run as a full factorial
(every combination of levels is a cell, equally weighted). Metrics say which visitor
events count and how (any = conversion, count, sum of values) within a window after
first exposure; the first marked `primary` is the one decisions are made on. A visitor
is exposed at the decide that assigned them, or (`"exposure": "impression"`, slots only)
at their first impression of the block.

The document Redis keeps is the definition plus the lifecycle fields the engine
manages (`status`, `started_at`, `stopped_at`, `bucket`), which a PUT cannot set.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import orjson

from engine.decisions.slots import (
    NAME_PATTERN,
    POLICIES,
    PolicyName,
    Slot,
    Variant,
    check_description,
    check_name,
)
from engine.errors import InvalidInput
from models.events import EVENT_TYPES

ExperimentType = Literal["ab", "mvt"]
Status = Literal["draft", "running", "stopped"]
Aggregation = Literal["conversion", "count", "sum"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
MetricScope = Literal["visitor", "token"]
# decision: a visitor counts from the decide that assigned them; impression: from their
# first impression with the experiment's token (only visitors who saw the block)
ExposureMode = Literal["decision", "impression"]
RECOMMENDATIONS = "recommendations"
HOLDOUT_ARM = "holdout"
MANAGED = ("status", "started_at", "stopped_at", "bucket")
MAX_ARMS = 20
MAX_CELLS = 64
MAX_METRICS = 10
MAX_SEGMENTS = 10
DEFAULT_WINDOW_S = 7 * 86_400
MAX_WINDOW_S = 90 * 86_400
FIELDS = {
    "target",
    "type",
    "arms",
    "factors",
    "base",
    "control",
    "traffic",
    "layer",
    "holdout",
    "metrics",
    "covariate",
    "segments",
    "exposure",
    "description",
    *MANAGED,
}


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: what its visitors get. `variant`, `policy` and `model_version` are
    exclusive; none of them (a recommender arm) means the live model."""

    name: str
    weight: float
    variant: str | None = None
    policy: PolicyName | None = None
    model_version: str | None = None
    content: orjson.Fragment | None = None  # an MVT cell's patched content


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    event: str
    aggregation: Aggregation
    window_s: int
    primary: bool
    scope: MetricScope = "visitor"  # token: only events carrying the experiment's token


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    target: str  # "slot:<name>" or "recommendations"
    type: ExperimentType
    arms: tuple[Arm, ...]  # for MVT the cells, named "<level>|<level>..."
    control: str
    traffic: float
    layer: str | None
    holdout: float
    metrics: tuple[Metric, ...]
    covariate: str | None
    segments: tuple[str, ...]
    factors: tuple[Factor, ...] = ()
    base: str | None = None  # MVT: the variant the patches apply to
    exposure: ExposureMode = "decision"
    status: Status = "draft"
    started_at: float | None = None
    stopped_at: float | None = None
    # the stretch of its hash space it owns: [0, traffic) alone, given at start in a layer
    bucket: tuple[float, float] = (0.0, 1.0)

    @property
    def slot(self) -> str | None:
        return self.target.removeprefix("slot:") if self.target.startswith("slot:") else None

    @property
    def salt(self) -> str:
        """What assignment hashes with the pseudonym: the layer's name when the
        experiment shares a layer (so its members partition one space), else its id."""
        return f"layer:{self.layer}" if self.layer else f"experiment:{self.id}"

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(a.weight for a in self.arms)

    @property
    def primary(self) -> Metric:
        return next(m for m in self.metrics if m.primary)


def compile_experiment(
    experiment_id: str, raw: Mapping[str, Any], slots: Mapping[str, Slot] | None = None
) -> Experiment:
    """An experiment from its stored document, or `InvalidInput` saying what is wrong.
    With `slots`, arms are also checked against the target slot's variants."""
    check_name("experiment", experiment_id)
    if not isinstance(raw, Mapping):
        raise InvalidInput("an experiment definition is a JSON object")
    extra = set(raw) - FIELDS
    if extra:
        raise InvalidInput(f"unknown fields {sorted(extra)}")
    check_description(dict(raw))
    target = raw.get("target")
    if not isinstance(target, str) or not (
        target == RECOMMENDATIONS or (target.startswith("slot:") and NAME_PATTERN.match(target[5:]))
    ):
        raise InvalidInput('target: "slot:<slot name>" or "recommendations"')
    kind = raw.get("type", "ab")
    if kind not in ("ab", "mvt"):
        raise InvalidInput('type: "ab" or "mvt"')
    slot = None
    if slots is not None and target.startswith("slot:"):
        slot = slots.get(target[5:])
        if slot is None:
            raise InvalidInput(f"target: no slot named {target[5:]!r}")
    if kind == "mvt":
        if target == RECOMMENDATIONS:
            raise InvalidInput("type: a multivariate test runs on a slot's content")
        arms, factors, base, control = _mvt(raw, slot)
    else:
        if "factors" in raw or "base" in raw:
            raise InvalidInput("factors, base: only for type mvt")
        arms = _ab_arms(raw, target, slot)
        factors, base = (), None
        control = raw.get("control", arms[0].name)
        if not isinstance(control, str) or control not in {a.name for a in arms}:
            raise InvalidInput(f"control: {control!r} is not an arm")
    exposure = raw.get("exposure", "decision")
    if exposure not in ("decision", "impression"):
        raise InvalidInput('exposure: "decision" or "impression"')
    if exposure == "impression" and target == RECOMMENDATIONS:
        raise InvalidInput('exposure: "impression" counts a slot\'s block when it is seen')
    status = raw.get("status", "draft")
    if status not in get_args(Status):
        raise InvalidInput(f"status: {status!r}")
    traffic = _share(raw.get("traffic", 1.0), "traffic", low=0.0, inclusive_low=False)
    bucket = raw.get("bucket", [0.0, traffic])
    return Experiment(
        id=experiment_id,
        target=target,
        type=kind,
        arms=arms,
        control=control,
        traffic=traffic,
        layer=_optional_name(raw.get("layer"), "layer"),
        holdout=_share(raw.get("holdout", 0.0), "holdout", high=0.5),
        metrics=_metrics(raw.get("metrics")),
        covariate=_optional_feature(raw.get("covariate")),
        segments=_segments(raw.get("segments", [])),
        factors=factors,
        base=base,
        exposure=exposure,
        status=status,
        started_at=raw.get("started_at"),
        stopped_at=raw.get("stopped_at"),
        bucket=(float(bucket[0]), float(bucket[1])),
    )


def _share(
    value: Any, name: str, *, low: float = 0.0, high: float = 1.0, inclusive_low: bool = True
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name}: a number")
    inside = (low <= value if inclusive_low else low < value) and value <= high
    if not inside:
        bracket = "[" if inclusive_low else "("
        raise InvalidInput(f"{name}: within {bracket}{low:g}, {high:g}]")
    return float(value)


def _optional_name(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: a name")
    return check_name(field, value)


def _optional_feature(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 100:
        raise InvalidInput("covariate: the name of a visitor feature")
    return value


def _segments(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_SEGMENTS:
        raise InvalidInput(f"segments: a list of at most {MAX_SEGMENTS} segment names")
    for name in value:
        if not isinstance(name, str):
            raise InvalidInput("segments: segment names")
        check_name("segment", name)
    if len(set(value)) != len(value):
        raise InvalidInput("segments: listed twice")
    return tuple(value)


def _ab_arms(raw: Mapping[str, Any], target: str, slot: Slot | None) -> tuple[Arm, ...]:
    items = raw.get("arms")
    if not isinstance(items, list) or not 2 <= len(items) <= MAX_ARMS:
        raise InvalidInput(f"arms: a list of 2 to {MAX_ARMS} arms")
    arms = []
    for i, item in enumerate(items):
        where = f"arms[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: an object")
        extra = set(item) - {"name", "weight", "variant", "policy", "model_version"}
        if extra:
            raise InvalidInput(f"{where}: unknown fields {sorted(extra)}")
        name = item.get("name")
        if not isinstance(name, str) or name == HOLDOUT_ARM:
            raise InvalidInput(f"{where}.name: a name other than {HOLDOUT_ARM!r}")
        check_name("arm", name)
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise InvalidInput(f"{where}.weight: a positive number")
        choices = [k for k in ("variant", "policy", "model_version") if item.get(k) is not None]
        if len(choices) > 1:
            raise InvalidInput(f"{where}: one of variant, policy, model_version")
        if target == RECOMMENDATIONS:
            if item.get("variant") is not None or item.get("policy") is not None:
                raise InvalidInput(f"{where}: a recommender arm is a model_version (or none)")
        elif not choices:
            raise InvalidInput(f"{where}: a slot arm needs a variant, policy or model_version")
        variant, policy = item.get("variant"), item.get("policy")
        if variant is not None and not isinstance(variant, str):
            raise InvalidInput(f"{where}.variant: a variant id")
        if variant is not None and slot is not None and variant not in slot.variants:
            raise InvalidInput(f"{where}.variant: {variant!r} is not a variant of the slot")
        if policy is not None and policy not in POLICIES:
            raise InvalidInput(f"{where}.policy: one of {', '.join(POLICIES)}")
        if policy == "bandit" and slot is not None and slot.bandit is None:
            raise InvalidInput(f"{where}.policy: the slot has no bandit settings")
        version = item.get("model_version")
        if version is not None and not isinstance(version, str):
            raise InvalidInput(f"{where}.model_version: a version string")
        arms.append(Arm(name, float(weight), variant, policy, version))
    if len({a.name for a in arms}) != len(arms):
        raise InvalidInput("arms: names must differ")
    return tuple(arms)


def _mvt(
    raw: Mapping[str, Any], slot: Slot | None
) -> tuple[tuple[Arm, ...], tuple[Factor, ...], str | None, str]:
    if "arms" in raw:
        raise InvalidInput("arms: an mvt experiment has factors; its cells are the arms")
    items = raw.get("factors")
    if not isinstance(items, list) or not 2 <= len(items) <= 4:
        raise InvalidInput("factors: a list of 2 to 4 factors")
    factors: list[Factor] = []
    patches: list[list[dict[str, Any]]] = []
    for i, item in enumerate(items):
        where = f"factors[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "levels"}:
            raise InvalidInput(f'{where}: {{"name": ..., "levels": [...]}}')
        name = item["name"]
        if not isinstance(name, str):
            raise InvalidInput(f"{where}.name: a name")
        check_name("factor", name)
        levels = item["levels"]
        if not isinstance(levels, list) or not 2 <= len(levels) <= 8:
            raise InvalidInput(f"{where}.levels: 2 to 8 levels")
        names, level_patches = [], []
        for j, level in enumerate(levels):
            at = f"{where}.levels[{j}]"
            if not isinstance(level, dict) or set(level) - {"name", "patch"} or "name" not in level:
                raise InvalidInput(f'{at}: {{"name": ..., "patch": {{...}}}}')
            if not isinstance(level["name"], str):
                raise InvalidInput(f"{at}.name: a name")
            names.append(check_name("level", level["name"]))
            patch = level.get("patch", {})
            if not isinstance(patch, dict):
                raise InvalidInput(f"{at}.patch: a JSON object (merged into the content)")
            level_patches.append(patch)
        if len(set(names)) != len(names):
            raise InvalidInput(f"{where}.levels: names must differ")
        factors.append(Factor(name, tuple(names)))
        patches.append(level_patches)
    if len({f.name for f in factors}) != len(factors):
        raise InvalidInput("factors: names must differ")
    cells = list(itertools.product(*(range(len(f.levels)) for f in factors)))
    if len(cells) > MAX_CELLS:
        raise InvalidInput(f"factors: {len(cells)} cells; at most {MAX_CELLS}")
    base = raw.get("base")
    if base is not None and (not isinstance(base, str) or (slot and base not in slot.variants)):
        raise InvalidInput(f"base: {base!r} is not a variant of the slot")
    base_variant = (slot.variants[base] if base else slot.default) if slot is not None else None
    arms = []
    for cell in cells:
        name = "|".join(f.levels[k] for f, k in zip(factors, cell, strict=True))
        content = None
        if base_variant is not None:
            content = _patched(base_variant, [patches[i][k] for i, k in enumerate(cell)])
        arms.append(Arm(name, 1.0, content=content))
    control = raw.get("control", arms[0].name)
    if not isinstance(control, str) or control not in {a.name for a in arms}:
        raise InvalidInput(f"control: {control!r} is not a cell (levels joined by '|')")
    return tuple(arms), tuple(factors), base, control


def _patched(variant: Variant, patches: list[dict[str, Any]]) -> orjson.Fragment:
    """The variant's content with each level's patch merged in (top-level keys)."""
    content = orjson.loads(orjson.dumps(variant.content))
    for patch in patches:
        content.update(patch)
    return orjson.Fragment(orjson.dumps(content))


def _metrics(items: Any) -> tuple[Metric, ...]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_METRICS:
        raise InvalidInput(f"metrics: a list of 1 to {MAX_METRICS} metrics")
    metrics = []
    for i, item in enumerate(items):
        where = f"metrics[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: an object")
        extra = set(item) - {"name", "event", "aggregation", "window_s", "primary", "scope"}
        if extra:
            raise InvalidInput(f"{where}: unknown fields {sorted(extra)}")
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"{where}.name: a name")
        check_name("metric", name)
        event = item.get("event")
        if event not in EVENT_TYPES:
            raise InvalidInput(f"{where}.event: one of {', '.join(EVENT_TYPES)}")
        aggregation = item.get("aggregation", "conversion")
        if aggregation not in AGGREGATIONS:
            raise InvalidInput(f"{where}.aggregation: one of {', '.join(AGGREGATIONS)}")
        window = item.get("window_s", DEFAULT_WINDOW_S)
        if isinstance(window, bool) or not isinstance(window, int):
            raise InvalidInput(f"{where}.window_s: whole seconds")
        if not 60 <= window <= MAX_WINDOW_S:
            raise InvalidInput(f"{where}.window_s: seconds within [60, {MAX_WINDOW_S}]")
        primary = item.get("primary", False)
        if not isinstance(primary, bool):
            raise InvalidInput(f"{where}.primary: true or false")
        scope = item.get("scope", "visitor")
        if scope not in ("visitor", "token"):
            raise InvalidInput(f'{where}.scope: "visitor" (any such event) or "token" (its own)')
        metrics.append(Metric(name, event, aggregation, window, primary, scope))
    if len({m.name for m in metrics}) != len(metrics):
        raise InvalidInput("metrics: names must differ")
    primaries = sum(m.primary for m in metrics)
    if primaries > 1:
        raise InvalidInput("metrics: one primary metric; the others are guardrails")
    if primaries == 0:
        first = metrics[0]
        metrics[0] = replace(first, primary=True)
    return tuple(metrics)
