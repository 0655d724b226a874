"""The experiment definition's shape, for the OpenAPI docs (engine/experiments/definitions.py
checks meaning: arms against the slot, weights, cells, metrics)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    weight: float = Field(default=1.0, gt=0)
    variant: str | None = Field(default=None, description="a fixed variant of the slot")
    policy: Literal["rules", "model", "bandit", "uniform"] | None = None
    model_version: str | None = Field(
        default=None, description="a scorer version (slots) or recommender version"
    )


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    patch: dict[str, Any] = Field(default_factory=dict, description="merged into the content")


class FactorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    levels: list[LevelIn] = Field(min_length=2, max_length=8)


class MetricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    event: str = Field(description="the event type that counts, e.g. click or purchase")
    aggregation: Literal["conversion", "count", "sum"] = Field(
        default="conversion", description="conversion: any such event; sum: of their values"
    )
    window_s: int = Field(default=604_800, ge=60, description="after the first exposure")
    primary: bool = False
    scope: Literal["visitor", "token"] = Field(
        default="visitor",
        description="visitor: any such event of an exposed visitor; token: only events that "
        "carry this experiment's decision token (clicks on the tested block itself)",
    )


class ExperimentIn(BaseModel):
    """An A/B/n test (arms) or a full-factorial multivariate test (factors)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(description='"slot:<slot>" or "recommendations"')
    type: Literal["ab", "mvt"] = "ab"
    arms: list[ArmIn] | None = None
    factors: list[FactorIn] | None = None
    base: str | None = Field(default=None, description="mvt: the variant patched (default)")
    control: str | None = Field(default=None, description="the first arm (or cell) if unset")
    traffic: float = Field(default=1.0, gt=0, le=1, description="share of visitors in the test")
    layer: str | None = Field(default=None, description="experiments of a layer never overlap")
    holdout: float = Field(default=0.0, ge=0, le=0.5, description="share kept on the defaults")
    metrics: list[MetricIn] = Field(min_length=1, max_length=10)
    covariate: str | None = Field(default=None, description="a visitor feature, for CUPED")
    segments: list[str] = Field(default_factory=list, description="results broken down by")
    exposure: Literal["decision", "impression"] = Field(
        default="decision",
        description="decision: a visitor counts from the decide that assigned them; "
        "impression: from their first impression with the experiment's token (only those "
        "who saw the block: the snippet sends it when the block is visible)",
    )
    description: str | None = Field(default=None, max_length=1000)
