"""Slots: places on a page with variants, a default, and the policy that picks one.

A slot definition is plain JSON (what `PUT /v1/slots/{slot}` takes and Redis keeps);
`compile_slot` checks it and builds the frozen `Slot` that decisions run on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson

from engine.decisions.bandit import BanditConfig, parse_bandit
from engine.decisions.exploration import Exploration, parse_exploration
from engine.decisions.rules import Facts, Predicate, compile_condition
from engine.errors import InvalidInput

PolicyName = Literal["rules", "model", "bandit", "uniform"]
POLICIES: tuple[str, ...] = get_args(PolicyName)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_VARIANTS = 100
MAX_RULES = 200
MAX_CONTENT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    content: orjson.Fragment  # serialized once at compile time, embedded as-is in responses


@dataclass(frozen=True, slots=True)
class Rule:
    when: Predicate
    variant: Variant


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    variants: dict[str, Variant]
    default: Variant
    policy: PolicyName
    rules: tuple[Rule, ...]
    exploration: Exploration = field(default_factory=Exploration)  # the `model` policy's
    bandit: BanditConfig | None = None  # the `bandit` policy's

    def first_match(self, facts: Facts) -> Variant:
        """The rules policy: the variant of the first matching rule, else the default."""
        for rule in self.rules:
            if rule.when(facts):
                return rule.variant
        return self.default


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"{kind} name {name!r} must match {NAME_PATTERN.pattern}")
    return name


def check_description(definition: dict[str, Any]) -> None:
    description = definition.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        raise InvalidInput("description: a string of at most 1000 characters")


def compile_slot(name: str, definition: dict[str, Any]) -> Slot:
    """A runnable slot from its JSON definition, or `InvalidInput` saying what is wrong."""
    check_name("slot", name)
    extra = set(definition) - {
        "variants",
        "default",
        "policy",
        "rules",
        "exploration",
        "bandit",
        "description",
    }
    if extra:
        raise InvalidInput(f"unknown fields {sorted(extra)}")
    check_description(definition)
    policy = definition.get("policy", "rules")
    if policy not in POLICIES:
        raise InvalidInput(f"policy: {policy!r} is not one of {', '.join(POLICIES)}")
    variants = _compile_variants(definition.get("variants"))
    default_id = definition.get("default")
    if not isinstance(default_id, str) or default_id not in variants:
        raise InvalidInput(f"default: {default_id!r} is not one of the variants")
    raw_rules = definition.get("rules", [])
    if not isinstance(raw_rules, list) or len(raw_rules) > MAX_RULES:
        raise InvalidInput(f"rules: must be a list of at most {MAX_RULES} rules")
    rules = []
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict) or set(raw) != {"when", "variant"}:
            raise InvalidInput(f'rules[{i}]: a rule is {{"when": COND, "variant": ID}}')
        if not isinstance(raw["variant"], str) or raw["variant"] not in variants:
            raise InvalidInput(f"rules[{i}].variant: {raw['variant']!r} is not a variant")
        when = compile_condition(raw["when"], f"rules[{i}].when")
        rules.append(Rule(when=when, variant=variants[raw["variant"]]))
    try:
        exploration = parse_exploration(definition.get("exploration"))
        bandit = parse_bandit(definition.get("bandit")) if policy == "bandit" else None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if policy != "bandit" and "bandit" in definition:
        raise InvalidInput('bandit: only for slots with "policy": "bandit"')
    return Slot(
        name=name,
        variants=variants,
        default=variants[default_id],
        policy=policy,
        rules=tuple(rules),
        exploration=exploration,
        bandit=bandit,
    )


def _compile_variants(raw: Any) -> dict[str, Variant]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_VARIANTS:
        raise InvalidInput(f"variants: must be a list of 1 to {MAX_VARIANTS} variants")
    variants: dict[str, Variant] = {}
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("id"), str)
            or set(item)
            - {
                "id",
                "content",
            }
        ):
            raise InvalidInput(f'variants[{i}]: a variant is {{"id": ..., "content": {{}}}}')
        variant_id = item["id"]
        if not NAME_PATTERN.match(variant_id):
            raise InvalidInput(
                f"variants[{i}].id: {variant_id!r} must match {NAME_PATTERN.pattern}"
            )
        if variant_id in variants:
            raise InvalidInput(f"variants[{i}].id: {variant_id!r} appears twice")
        if not isinstance(item.get("content", {}), dict):
            raise InvalidInput(f"variants[{i}].content: must be a JSON object")
        content = orjson.dumps(item.get("content", {}))
        if len(content) > MAX_CONTENT_BYTES:
            raise InvalidInput(f"variants[{i}].content: larger than {MAX_CONTENT_BYTES} bytes")
        variants[variant_id] = Variant(id=variant_id, content=orjson.Fragment(content))
    return variants
