from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Key = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class ItemIn(BaseModel):
    """A catalogue entry; recommendations filter on category, tags and availability."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=128)
    category: Key
    price: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    title: str | None = Field(default=None, max_length=500)
    tags: list[Key] = Field(default_factory=list, max_length=50)
    available: bool = True


class ItemBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemIn] = Field(min_length=1, max_length=1000)
