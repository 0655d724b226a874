"""Interactions: which events say a visitor cared about an item, and how much.

Training (from the event archive) and serving (fold-in from a visitor's live history)
weigh interactions with the same table, stored in each recommender's manifest, so a
model trained on purchases-count-four reads live histories the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args

InteractionType = Literal["purchase", "conversion", "add_to_cart", "click", "feedback", "page_view"]
INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionType)

# A purchase says more than a click, which says more than a view.
DEFAULT_WEIGHTS: dict[str, float] = {
    "purchase": 4.0,
    "conversion": 4.0,
    "add_to_cart": 3.0,
    "click": 2.0,
    "feedback": 1.0,
    "page_view": 1.0,
}

# One character per type: a history entry is `<code>:<item_id>` so one sorted set
# holds what the visitor did with each item, newest first, in one read.
TYPE_CODES: dict[str, str] = {
    "purchase": "p",
    "conversion": "o",
    "add_to_cart": "a",
    "click": "c",
    "feedback": "f",
    "page_view": "v",
}
CODE_TYPES: dict[str, str] = {code: kind for kind, code in TYPE_CODES.items()}


def history_entry(kind: str, item_id: str) -> str:
    return f"{TYPE_CODES[kind]}:{item_id}"


def parse_history_entry(entry: str) -> tuple[str, str]:
    """`(type, item_id)`; an entry without a known code reads as a page view."""
    code, sep, item_id = entry.partition(":")
    kind = CODE_TYPES.get(code)
    if not sep or kind is None:
        return "page_view", entry
    return kind, item_id


def parse_weights(text: str) -> dict[str, float]:
    """`purchase=5,click=2` over the defaults (a CLI and settings format)."""
    weights = dict(DEFAULT_WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep or kind not in DEFAULT_WEIGHTS:
            raise ValueError(f"expected TYPE=WEIGHT with TYPE in {INTERACTION_TYPES}, got {part!r}")
        weight = float(value)
        if not weight >= 0:
            raise ValueError(f"weight of {kind} must be >= 0, got {value!r}")
        weights[kind] = weight
    return weights


def item_weights(
    entries: Iterable[tuple[str, str]], weights: Mapping[str, float]
) -> dict[str, float]:
    """Total weight per item over `(type, item_id)` pairs (types without weight count 0)."""
    totals: dict[str, float] = {}
    for kind, item_id in entries:
        weight = weights.get(kind, 0.0)
        if weight > 0:
            totals[item_id] = totals.get(item_id, 0.0) + weight
    return totals
