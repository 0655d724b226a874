"""The visitor feature schema: names, types, defaults, and how events update them.

Serving reads features with `decode_features`; the event path turns events into
`FeatureOp`s with `ops_for_event`. Training replays the same ops over the event
archive, so offline and online features cannot drift apart.

Stored layout: one Redis hash per visitor whose fields are the feature names below.
Per-category counters are a *family*: field `views.<category>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from models.events import Event

FeatureType = Literal["int", "float", "str"]
FeatureValue = int | float | str
SECONDS_PER_DAY = 86_400.0

# Categories, channels and similar keys become part of field names: keep them tame.
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Feature:
    """One named visitor feature; `derived` ones are computed when read, never stored."""

    name: str
    type: FeatureType
    default: FeatureValue
    doc: str
    derived: bool = False


@dataclass(frozen=True, slots=True)
class FeatureFamily:
    """Features keyed by an open set of values, e.g. views per category."""

    prefix: str
    type: FeatureType
    default: FeatureValue
    doc: str


FEATURES: tuple[Feature, ...] = (
    Feature("page_views", "int", 0, "page views, all time"),
    Feature("events", "int", 0, "events of any type, all time"),
    Feature("first_seen", "float", 0.0, "unix time of the first event"),
    Feature("last_seen", "float", 0.0, "unix time of the latest event"),
    Feature("last_channel", "str", "", "channel of the latest event (web, app, store, ...)"),
    Feature(
        "days_since_last_seen",
        "float",
        -1.0,
        "days since the latest event; -1 for a visitor never seen",
        derived=True,
    ),
)
FAMILIES: tuple[FeatureFamily, ...] = (
    FeatureFamily("views", "int", 0, "page views per category, all time"),
)

_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
_FAMILY_BY_PREFIX: dict[str, FeatureFamily] = {f.prefix: f for f in FAMILIES}
_CASTS = {"int": int, "float": float, "str": str}


def feature_spec(name: str) -> Feature | FeatureFamily | None:
    """The schema entry behind a feature name, or None for a name the schema lacks."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    prefix, dot, key = name.partition(".")
    if dot and KEY_PATTERN.match(key):
        return _FAMILY_BY_PREFIX.get(prefix)
    return None


def default_of(name: str) -> FeatureValue | None:
    spec = feature_spec(name)
    return None if spec is None else spec.default


def decode_features(raw: Mapping[bytes, bytes], now: float) -> dict[str, FeatureValue]:
    """Typed features from the stored hash, plus derived ones.

    Only stored fields (and derived values) appear; readers apply schema defaults, so
    "not stored" stays distinguishable from "stored as the default".
    """
    out: dict[str, FeatureValue] = {}
    for key, value in raw.items():
        name = key.decode()
        spec = feature_spec(name)
        if spec is None:
            continue  # a field from a newer schema version: ignore, never fail a decision
        try:
            out[name] = _CASTS[spec.type](value.decode())
        except ValueError:
            continue
    last_seen = out.get("last_seen")
    if isinstance(last_seen, float) and last_seen > 0:
        out["days_since_last_seen"] = max(0.0, (now - last_seen) / SECONDS_PER_DAY)
    return out


OpKind = Literal["incr", "max", "min", "latest"]


@dataclass(frozen=True, slots=True)
class FeatureOp:
    """One update to one stored feature field.

    `latest` sets the field only if the event is not older than the visitor's
    `last_seen`, so late-arriving events cannot overwrite newer values.
    """

    kind: OpKind
    field: str
    value: FeatureValue
    ts: float = 0.0


def ops_for_event(event: Event) -> list[FeatureOp]:
    """The feature updates one event causes, in order."""
    ops = [
        FeatureOp("incr", "events", 1),
        FeatureOp("latest", "last_channel", event.channel, event.ts),
        FeatureOp("min", "first_seen", event.ts),
        FeatureOp("max", "last_seen", event.ts),
    ]
    if event.type == "page_view":
        ops.append(FeatureOp("incr", "page_views", 1))
        category = event.properties.get("category")
        if isinstance(category, str) and KEY_PATTERN.match(category):
            ops.append(FeatureOp("incr", f"views.{category}", 1))
    return ops
