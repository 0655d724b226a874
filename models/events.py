"""The event vocabulary every part of Omotenashi speaks: what a client can report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from models.interactions import TYPE_CODES, history_entry

EventType = Literal[
    "page_view",
    "impression",
    "click",
    "add_to_cart",
    "purchase",
    "conversion",
    "feedback",
    "identify",
    "custom",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted event, pseudonymized: what the log keeps and features are built from.

    `pid` replaces the client's visitor id; the raw id never gets this far.
    """

    type: EventType
    pid: str
    ts: float
    channel: str
    event_id: str | None = None
    token: str | None = None
    item_id: str | None = None
    value: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Event:
        """The inverse of `to_record` (for the spool and the archive)."""
        return cls(**record)

    def to_record(self) -> dict[str, Any]:
        """The event as the log stores it (None fields left out to keep it small)."""
        record: dict[str, Any] = {"type": self.type, "pid": self.pid, "ts": self.ts}
        record["channel"] = self.channel
        for name in ("event_id", "token", "item_id", "value"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        if self.properties:
            record["properties"] = self.properties
        return record


def history_items(event: Event) -> list[str]:
    """History entries (`<type code>:<item id>`, models.interactions) for the items this
    event shows interest in: recommendations fold them in and filter them out."""
    if event.type == "purchase":
        items = [line["item_id"] for line in event.properties.get("items", ())]
    elif event.item_id is not None and event.type in TYPE_CODES:
        items = [event.item_id]
    else:
        return []
    return [history_entry(event.type, item_id) for item_id in items]
