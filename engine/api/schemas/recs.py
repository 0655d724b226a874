from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.recs.serve import Policy, Source

CATEGORY = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_EXCLUDE = 100


class RecommendationsQuery(BaseModel):
    """What an app asks for: n items for this visitor, optionally within a category."""

    model_config = ConfigDict(extra="ignore")  # cache busters and trackers are harmless

    visitor_id: str = Field(min_length=1, max_length=256, description="the client's visitor id")
    n: int = Field(default=10, ge=1, le=100, description="how many items")
    category: str | None = Field(default=None, pattern=CATEGORY, description="only this one")
    exclude: str | None = Field(
        default=None,
        max_length=MAX_EXCLUDE * 129,
        description=f"comma-separated item ids not to recommend (at most {MAX_EXCLUDE})",
    )

    @field_validator("exclude")
    @classmethod
    def _at_most(cls, value: str | None) -> str | None:
        if value is not None:
            ids = [part for part in value.split(",") if part.strip()]
            if len(ids) > MAX_EXCLUDE or any(len(i.strip()) > 128 for i in ids):
                raise ValueError(f"at most {MAX_EXCLUDE} ids of up to 128 characters")
        return value

    def excluded(self) -> list[str]:
        if not self.exclude:
            return []
        return [part for part in (p.strip() for p in self.exclude.split(",")) if part]


class SimilarQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    n: int = Field(default=10, ge=1, le=100, description="how many items")
    category: str | None = Field(default=None, pattern=CATEGORY, description="only this one")


class ScoredItem(BaseModel):
    item_id: str
    score: float | None = Field(
        description="the model's score; null for a catalogue item newer than the model"
    )


class RecommendationsOut(BaseModel):
    items: list[ScoredItem]
    model_version: str
    source: Source = Field(
        description="trained: the visitor's own factors; fold_in: factors from their live "
        "history; popular(_in_category): no usable history"
    )
    policy: Policy = Field(
        description="model: the visitor's experiment arm's model version, else the active "
        "one; holdout: an experiment's holdout, popular items without the visitor's data; "
        "fallback: Redis unreachable, popular items without the visitor's data, or (with "
        "an experiment) the arm's model version is not loaded, so the active one answered; "
        "no_consent: the visitor refused personalization"
    )
    token: str = Field(description="signed; send it back with clicks on these items")
    experiment: str | None = Field(
        default=None, description="the running recommender experiment the visitor is in"
    )
    arm: str | None = Field(default=None, description="their arm in it, or holdout")


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
