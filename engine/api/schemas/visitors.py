"""Consent as clients send it, and what the privacy endpoints answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ConsentIn(BaseModel):
    """The visitor's choices; a purpose left out keeps its current value."""

    model_config = ConfigDict(extra="forbid")

    personalization: bool | None = Field(
        default=None, description="may decide and recommendations use what is known?"
    )
    analytics: bool | None = Field(default=None, description="may events be recorded?")

    @model_validator(mode="after")
    def _something(self) -> ConsentIn:
        if self.personalization is None and self.analytics is None:
            raise ValueError("give personalization and/or analytics")
        return self


class ConsentOut(BaseModel):
    personalization: bool
    analytics: bool
    chosen: bool = Field(description="false: nothing chosen yet, these are the site's defaults")


class VisitorExport(BaseModel):
    """Everything stored about a visitor, in plain JSON."""

    visitor_pid: str
    profile: str
    consent: dict[str, bool]
    features: dict[str, Any]
    stored_fields: dict[str, str]
    history: list[dict[str, Any]]
    merged_ids: list[str]
    event_ids_seen: list[dict[str, Any]]
    events: list[dict[str, Any]]
    experiments: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="experiment -> arm, first exposure, covariate, segments, metric values",
    )


class ErasureOut(BaseModel):
    profile: str
    ids_erased: int
    keys_deleted: int
    log_entries_deleted: int
