from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ContextValue = str | int | float | bool


class DecideRequest(BaseModel):
    """Which variant should this visitor see in each of these slots?"""

    model_config = ConfigDict(extra="forbid")

    visitor_id: str = Field(min_length=1, max_length=256, description="the client's visitor id")
    slots: list[str] = Field(min_length=1, max_length=50)
    context: dict[str, ContextValue] = Field(
        default_factory=dict,
        max_length=50,
        description="request context for targeting: page, device, channel, locale, ...",
        examples=[{"page": "/", "device": "mobile", "channel": "web", "locale": "ja-JP"}],
    )


class DecisionOut(BaseModel):
    slot: str
    variant: str
    content: dict[str, Any]
    token: str = Field(description="signed; send it back with impression, click, conversion")
    policy: Literal[
        "rules", "model", "bandit", "uniform", "experiment", "holdout", "fallback", "no_consent"
    ]
    experiment: str | None = None
    arm: str | None = None


class DecideResponse(BaseModel):
    decision_id: str
    decisions: list[DecisionOut]
    segments: list[str]
