"""Admin-facing definitions: slots with variants and rules, and rule segments.

The condition language is documented in `engine.decisions.rules`; these models give
its shape to the OpenAPI docs and check structure, the compiler checks meaning.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attr: str = Field(description="context.<key>, features.<name> or segments")
    op: Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains"]
    value: Any = None


class All(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    all: list[Condition] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    any: list[Condition] = Field(min_length=1)


class Not(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_: Condition = Field(alias="not")


Condition = Leaf | All | AnyOf | Not


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    content: dict[str, Any] = Field(default_factory=dict)


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    when: Condition
    variant: str


class BanditIn(BaseModel):
    """The bandit policy's settings (engine/decisions/bandit.py checks them)."""

    model_config = ConfigDict(extra="forbid")

    segments: list[str] = Field(
        default_factory=list,
        description="segments that learn apart, first match wins; everyone else shares one",
    )
    reward: Literal["click", "conversion"] = "click"
    window_s: int = Field(
        default=3600, ge=60, le=86_400, description="how long after the decision a reward counts"
    )
    prior: tuple[float, float] = Field(default=(1.0, 1.0), description="Beta(alpha, beta)")


class SlotIn(BaseModel):
    """A slot: its variants, the default, and ordered targeting rules."""

    model_config = ConfigDict(extra="forbid")

    variants: list[VariantIn] = Field(min_length=1)
    default: str
    policy: Literal["rules", "model", "bandit", "uniform"] = Field(
        default="rules",
        description="model: the active scorer for this slot ranks the variants (rules, then "
        "the default, when it has none); bandit: Thompson sampling learns each segment's "
        "best variant from impressions and rewards; uniform: every variant equally likely "
        "(the unbiased log a first scorer is trained and judged on)",
    )
    rules: list[RuleIn] = Field(default_factory=list)
    exploration: dict[Literal["epsilon", "softmax"], float] | None = Field(
        default=None,
        description='the model policy\'s exploration: {"epsilon": 0.05} (default) or '
        '{"softmax": T}',
    )
    bandit: BanditIn | None = None
    description: str | None = Field(default=None, max_length=1000)


class SegmentIn(BaseModel):
    """A rule segment: visitors matching `when` are in it."""

    model_config = ConfigDict(extra="forbid")

    when: Condition
    description: str | None = Field(default=None, max_length=1000)
