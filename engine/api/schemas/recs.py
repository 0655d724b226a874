from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ScoredItem(BaseModel):
    item_id: str
    score: float | None = Field(
        description="the model's score; null for a catalogue item newer than the model"
    )


class RecommendationsOut(BaseModel):
    items: list[ScoredItem]
    model_version: str
    source: Literal["trained", "fold_in", "popular", "popular_in_category"] = Field(
        description="trained: the visitor's own factors; fold_in: factors from their live "
        "history; popular(_in_category): no usable history"
    )
    policy: Literal["model", "fallback", "no_consent"] = Field(
        description="fallback: Redis unreachable, popularity without the visitor's data; "
        "no_consent: the visitor refused personalization"
    )
    token: str = Field(description="signed; send it back with clicks on these items")


class SimilarOut(BaseModel):
    items: list[ScoredItem]
    model_version: str


class ModelVersionOut(BaseModel):
    version: str
    created: str
    active: bool
    manifest: dict[str, Any]


class ModelsOut(BaseModel):
    active: dict[str, str] = Field(description="kind -> version active in Redis")
    loaded: dict[str, str | None] = Field(description="kind -> version this worker serves")
    versions: dict[str, list[ModelVersionOut]]
