"""Events as clients send them: a discriminated union on `type`.

Common fields sit at the top level; type-specific fields go in `properties`.
Properties are closed (unknown fields are refused) so that nothing unexpected, such
as personal data, slips into storage; `custom` events carry free numeric properties.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

Key = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Id = Annotated[str, Field(min_length=1, max_length=128)]
Money = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageViewProps(_Closed):
    category: Key | None = None
    url: str | None = Field(default=None, max_length=2048)


class AddToCartProps(_Closed):
    price: Money | None = None
    qty: int = Field(default=1, ge=1, le=10_000)
    category: Key | None = None


class LineItem(_Closed):
    item_id: Id
    price: Money
    qty: int = Field(default=1, ge=1, le=10_000)
    category: Key | None = None


class PurchaseProps(_Closed):
    order_id: Id
    items: list[LineItem] = Field(min_length=1, max_length=200)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class ConversionProps(_Closed):
    goal: Key = "default"


class FeedbackProps(_Closed):
    rating: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    text: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _rating_or_nps(self) -> FeedbackProps:
        if self.rating is None and self.nps is None:
            raise ValueError("feedback needs a rating (1-5) or an nps score (0-10)")
        return self


class IdentifyProps(_Closed):
    customer_id: Id
    traits: dict[Key, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=dict, max_length=20
    )


class CustomProps(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: Key

    @model_validator(mode="after")
    def _numeric_extras(self) -> CustomProps:
        for key, value in (self.model_extra or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"custom property {key!r} must be a number")
            if not math.isfinite(value):
                raise ValueError(f"custom property {key!r} must be finite")
        return self


class _EventBase(_Closed):
    visitor_id: str = Field(min_length=1, max_length=256)
    channel: Key = "web"
    event_id: Id | None = None
    ts: datetime | float | None = Field(
        default=None, description="unix seconds or ISO 8601; default: when received"
    )
    token: str | None = Field(default=None, max_length=2048)
    item_id: Id | None = None
    value: float | None = Field(default=None, ge=-1e9, le=1e9, allow_inf_nan=False)

    @field_validator("ts", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("ts must be unix seconds or an ISO 8601 time")
        return value

    @field_validator("ts")
    @classmethod
    def _finite_ts(cls, value: datetime | float | None) -> datetime | float | None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("ts must be finite")
        return value


class PageView(_EventBase):
    type: Literal["page_view"]
    properties: PageViewProps = Field(default_factory=PageViewProps)


class Impression(_EventBase):
    type: Literal["impression"]
    token: str = Field(max_length=2048)
    properties: dict[str, Any] = Field(default_factory=dict, max_length=0)


class Click(_EventBase):
    type: Literal["click"]
    properties: dict[str, Any] = Field(default_factory=dict, max_length=0)

    @model_validator(mode="after")
    def _token_or_item(self) -> Click:
        if self.token is None and self.item_id is None:
            raise ValueError("click needs a token or an item_id")
        return self


class AddToCart(_EventBase):
    type: Literal["add_to_cart"]
    item_id: Id
    properties: AddToCartProps = Field(default_factory=AddToCartProps)


class Purchase(_EventBase):
    type: Literal["purchase"]
    properties: PurchaseProps


class Conversion(_EventBase):
    type: Literal["conversion"]
    properties: ConversionProps = Field(default_factory=ConversionProps)


class Feedback(_EventBase):
    type: Literal["feedback"]
    properties: FeedbackProps


class Identify(_EventBase):
    type: Literal["identify"]
    properties: IdentifyProps


class Custom(_EventBase):
    type: Literal["custom"]
    properties: CustomProps


EventIn = Annotated[
    PageView
    | Impression
    | Click
    | AddToCart
    | Purchase
    | Conversion
    | Feedback
    | Identify
    | Custom,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[EventIn] = TypeAdapter(EventIn)


class EventBatch(BaseModel):
    """A batch of events; each is checked alone, and the valid ones are kept."""

    events: list[EventIn]


class Rejected(BaseModel):
    index: int
    error: str


class EventsAccepted(BaseModel):
    accepted: int
    rejected: list[Rejected]
    spooled: int | None = Field(
        default=None,
        description="how many of the accepted events wait on disk for Redis to come back",
    )
    duplicates: int | None = Field(
        default=None, description="accepted events ignored: their event_id was seen before"
    )
    without_consent: int | None = Field(
        default=None,
        description="accepted events dropped: the visitor refused analytics (counted only)",
    )
