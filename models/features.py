"""The visitor feature schema: every feature's name, type, default, and how events update it.

One table, read by both sides: the event path turns an event into `FeatureOp`s
(`ops_for_event`), Redis applies them (`engine/store/profiles.py`), serving decodes
the stored hash (`decode_features`) and `models/encoding.py` turns decoded features
into model rows. Training replays the same ops over the archive, so offline and
online features cannot drift apart.

Stored layout: one Redis hash per visitor profile, one field per feature; a *family*
(`views`, `trait`, ...) stores one field per key: `views.<category>`.

Rolling windows are day buckets, not exponential decay: a windowed counter keeps
one count per UTC day (`w.<name>` fields, pruned past the longest window) and a
window of N days sums the last N calendar days, today included. That gives exact
counts a marketer can read ("viewed shoes 3 times in the last 7 days") and a hard
edge that tests can pin down, at the cost of up to 90 small numbers per counter.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from models.events import EVENT_TYPES, Event

FeatureType = Literal["int", "float", "str"]
FeatureValue = int | float | str
Source = Literal["event", "offline", "derived"]
# How an identify merge combines the same field of two profiles.
MergeRule = Literal["sum", "max", "min", "newest", "buckets", "keep"]
OpKind = Literal["incr", "max", "min", "newest", "bucket", "session"]

SECONDS_PER_DAY = 86_400.0
SESSION_GAP_S = 30 * 60.0
# Categories, channels and similar keys become part of field names: keep them tame.
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
BUCKETS_PREFIX = "w."
NEWEST_TS_SUFFIX = "@"

Extract = Callable[[Event], Iterable[tuple[str, FeatureValue]]]


@dataclass(frozen=True, slots=True)
class Feature:
    """One visitor feature (or, with `family`, one per key: `<name>.<key>`).

    Event features say which events update them (`on`, empty = every event), with
    which op, and what value (`extract` yields (family key or "", value) pairs).
    `windows` (days) turn an event counter into day buckets read as `<name>_<N>d`.
    """

    name: str
    type: FeatureType
    default: FeatureValue
    doc: str
    source: Source = "event"
    merge: MergeRule | None = None
    family: bool = False
    on: frozenset[str] = frozenset()
    op: OpKind | None = None
    extract: Extract | None = None
    windows: tuple[int, ...] = ()


def _one(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return (("", 1),)


def _ts(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return (("", event.ts),)


def _channel(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return (("", event.channel),)


def _channel_key(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return ((event.channel, 1),) if KEY_PATTERN.match(event.channel) else ()


def _page_category(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    category = event.properties.get("category")
    return ((category, 1),) if isinstance(category, str) and KEY_PATTERN.match(category) else ()


def _qty(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return (("", int(event.properties.get("qty", 1))),)


def _value(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    return (("", float(event.value)),) if event.value is not None else ()


def _purchased_categories(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    counts: dict[str, int] = {}
    for line in event.properties.get("items", ()):
        category = line.get("category")
        if isinstance(category, str) and KEY_PATTERN.match(category):
            counts[category] = counts.get(category, 0) + int(line.get("qty", 1))
    return counts.items()


def _property(name: str) -> Extract:
    def extract(event: Event) -> Iterable[tuple[str, FeatureValue]]:
        value = event.properties.get(name)
        return (("", value),) if isinstance(value, int | float) else ()

    return extract


def _traits(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    traits: Mapping[str, Any] = event.properties.get("traits", {})
    return ((k, str(v)) for k, v in traits.items() if KEY_PATTERN.match(k))


def _custom_name(event: Event) -> Iterable[tuple[str, FeatureValue]]:
    name = event.properties.get("name")
    return ((name, 1),) if isinstance(name, str) and KEY_PATTERN.match(name) else ()


def _counter(name: str, on: str, doc: str, extract: Extract = _one, **kw: Any) -> Feature:
    typ: FeatureType = kw.pop("type", "int")
    return Feature(
        name, typ, 0 if typ == "int" else 0.0, doc, "event", "sum",
        on=frozenset(on.split()), op="incr", extract=extract, **kw,
    )  # fmt: skip


# Order matters where one op reads a field another writes: `sessions` compares the
# event with `last_seen` before `last_seen` moves.
FEATURES: tuple[Feature, ...] = (
    Feature(
        "sessions", "int", 0, "visits: a new one starts after 30 idle minutes", "event", "sum",
        op="session", extract=_one, windows=(7, 30),
    ),
    _counter("events", "", "events of any type, all time"),
    Feature("first_seen", "float", 0.0, "unix time of the first event", "event", "min",
            op="min", extract=_ts),
    Feature("last_seen", "float", 0.0, "unix time of the latest event", "event", "max",
            op="max", extract=_ts),
    Feature("last_channel", "str", "", "channel of the latest event (web, app, store, ...)",
            "event", "newest", op="newest", extract=_channel),
    _counter("channels", "", "events per channel, all time", _channel_key, family=True),
    _counter("page_views", "page_view", "page views, all time"),
    _counter("views", "page_view", "page views per category", _page_category,
             family=True, windows=(7, 30)),
    _counter("impressions", "impression", "content blocks shown"),
    _counter("clicks", "click", "clicks on content or items"),
    _counter("cart_adds", "add_to_cart", "items added to the cart (by quantity)", _qty,
             windows=(7, 30)),
    _counter("orders", "purchase", "purchases (orders)", windows=(90,)),
    _counter("revenue", "purchase", "purchase value", _value, type="float", windows=(90,)),
    _counter("purchases", "purchase", "items bought per category (by quantity)",
             _purchased_categories, family=True, windows=(7, 30)),
    Feature("last_purchase", "float", 0.0, "unix time of the latest purchase", "event", "max",
            on=frozenset({"purchase"}), op="max", extract=_ts),
    _counter("conversions", "conversion", "goal conversions"),
    _counter("conversion_value", "conversion", "value of goal conversions", _value,
             type="float"),
    _counter("feedback_count", "feedback", "feedback with a rating", lambda e: (
        (("", 1),) if "rating" in e.properties else ())),
    _counter("feedback_sum", "feedback", "sum of ratings (1-5)", _property("rating")),
    _counter("nps_count", "feedback", "feedback with an NPS score", lambda e: (
        (("", 1),) if "nps" in e.properties else ())),
    _counter("nps_sum", "feedback", "sum of NPS scores (0-10)", _property("nps")),
    _counter("custom", "custom", "custom events per name", _custom_name, family=True),
    Feature("trait", "str", "", "declared traits (age_band, gender, region, ...): newest wins",
            "event", "newest", family=True, on=frozenset({"identify"}), op="newest",
            extract=_traits),
    # Written by offline jobs (`omotenashi segments rfm`, training/).
    Feature("rfm_r", "int", 0, "RFM recency score 1-5 (5 = most recent)", "offline", "keep"),
    Feature("rfm_f", "int", 0, "RFM frequency score 1-5", "offline", "keep"),
    Feature("rfm_m", "int", 0, "RFM monetary score 1-5", "offline", "keep"),
    Feature("rfm_segment", "str", "", "RFM segment name (champions, at_risk, ...)",
            "offline", "keep"),
    Feature("rfm_recency_days", "float", -1.0, "days from last purchase to the RFM run",
            "offline", "keep"),
    Feature("rfm_frequency", "int", 0, "purchases counted by the RFM run", "offline", "keep"),
    Feature("rfm_monetary", "float", 0.0, "purchase value counted by the RFM run",
            "offline", "keep"),
    Feature("rfm_as_of", "float", 0.0, "unix time the RFM scores refer to", "offline", "keep"),
    Feature("score", "float", 0.0, "offline segment scores, e.g. score.churn", "offline",
            "keep", family=True),
    # Computed when read, never stored.
    Feature("days_since_last_seen", "float", -1.0,
            "days since the latest event; -1 for a visitor never seen", "derived"),
    Feature("days_since_last_purchase", "float", -1.0,
            "days since the latest purchase; -1 if none", "derived"),
    Feature("aov", "float", 0.0, "average order value, all time", "derived"),
    Feature("aov_90d", "float", 0.0, "average order value, last 90 days", "derived"),
    Feature("favourite_category", "str", "",
            "most viewed category in the last 30 days (all time if none)", "derived"),
    Feature("channels_used", "int", 0, "how many channels the visitor used", "derived"),
    Feature("feedback_avg", "float", 0.0, "average rating (1-5); 0 without one", "derived"),
    Feature("nps_avg", "float", -1.0, "average NPS score; -1 without one", "derived"),
)  # fmt: skip


def _window_features() -> tuple[Feature, ...]:
    out = []
    for f in FEATURES:
        for days in f.windows:
            doc = f"{f.doc}, last {days} days"
            out.append(Feature(f"{f.name}_{days}d", f.type, f.default, doc, "derived",
                               family=f.family))  # fmt: skip
    return tuple(out)


WINDOWED: tuple[Feature, ...] = tuple(f for f in FEATURES if f.windows)
assert all(list(f.windows) == sorted(f.windows) for f in WINDOWED), "windows ascending"
WINDOW_FEATURES: tuple[Feature, ...] = _window_features()
ALL_FEATURES: tuple[Feature, ...] = FEATURES + WINDOW_FEATURES
EVENT_FEATURES: tuple[Feature, ...] = tuple(f for f in FEATURES if f.source == "event")

_SCALARS: dict[str, Feature] = {f.name: f for f in ALL_FEATURES if not f.family}
_FAMILIES: dict[str, Feature] = {f.name: f for f in ALL_FEATURES if f.family}
_CASTS: dict[str, Callable[[str], FeatureValue]] = {"int": int, "float": float, "str": str}


def feature_spec(name: str) -> Feature | None:
    """The schema entry behind a readable feature name, or None if the schema lacks it."""
    if name in _SCALARS:
        return _SCALARS[name]
    prefix, dot, key = name.partition(".")
    if dot and KEY_PATTERN.match(key):
        return _FAMILIES.get(prefix)
    return None


def default_of(name: str) -> FeatureValue | None:
    spec = feature_spec(name)
    return None if spec is None else spec.default


def merge_rules() -> dict[str, MergeRule]:
    """Stored field (or family prefix) -> merge rule, for the identify merge script."""
    rules: dict[str, MergeRule] = {"w": "buckets"}
    for f in FEATURES:
        if f.merge is not None:
            rules[f.name] = f.merge
    return rules


class FeatureOp(NamedTuple):
    """One update to one stored field.

    `newest` keeps the value with the latest event time (its time is stored beside it in
    `<field>@`), so late events cannot overwrite newer values. `bucket` adds to the
    event's day in a windowed counter and drops days older than `keep_days`.
    `session` counts a new visit when the event comes 30 idle minutes after `last_seen`.
    A tuple, not a dataclass: a batch of 100 events makes over a thousand of them.
    """

    kind: OpKind
    field: str
    value: FeatureValue
    ts: float = 0.0
    keep_days: int = 0


def _features_by_type() -> dict[str, tuple[Feature, ...]]:
    return {
        t: tuple(f for f in EVENT_FEATURES if f.op and f.extract and (not f.on or t in f.on))
        for t in EVENT_TYPES
    }


_BY_TYPE = _features_by_type()


def ops_for_event(event: Event) -> list[FeatureOp]:
    """The feature updates one event causes, in schema order."""
    ops: list[FeatureOp] = []
    ts = event.ts
    for f in _BY_TYPE[event.type]:
        keep = f.windows[-1] if f.windows else 0
        for key, value in f.extract(event):  # type: ignore[misc]
            field = f"{f.name}.{key}" if f.family else f.name
            if f.op == "session":
                ops.append(FeatureOp("session", field, SESSION_GAP_S, ts, keep))
                continue
            ops.append(FeatureOp(f.op, field, value, ts))  # type: ignore[arg-type]
            if keep:
                ops.append(FeatureOp("bucket", BUCKETS_PREFIX + field, value, ts, keep))
    return ops


def day_of(ts: float) -> int:
    """UTC day number: the bucket an event time falls in."""
    return math.floor(ts / SECONDS_PER_DAY)


def parse_buckets(text: str) -> dict[int, float]:
    """`"<day>:<count>,..."` as stored by the ingest script."""
    out: dict[int, float] = {}
    for part in text.split(","):
        day, _, count = part.partition(":")
        if day and count:
            out[int(day)] = out.get(int(day), 0.0) + float(count)
    return out


def window_sum(buckets: Mapping[int, float], today: int, days: int) -> float:
    """Sum over the last `days` UTC days, today included: day > today - days."""
    return sum(count for day, count in buckets.items() if today - days < day <= today)


@functools.lru_cache(maxsize=8192)
def _field_plan(key: bytes) -> tuple[str, str, Feature | None]:
    """How to read one stored field: ("bucket"|"value"|"skip", name, spec). Field names
    repeat across visitors, so this is worked out once per name, not once per read."""
    name = key.decode()
    if name.startswith(BUCKETS_PREFIX):
        base = feature_spec(name[len(BUCKETS_PREFIX) :])
        if base is None or not base.windows:
            return ("skip", name, None)
        return ("bucket", name[len(BUCKETS_PREFIX) :], base)
    spec = feature_spec(name)
    if spec is None or spec.source == "derived":
        return ("skip", name, None)  # bookkeeping (`<field>@`) or a newer schema's field
    return ("value", name, spec)


def decode_features(raw: Mapping[bytes, bytes], now: float) -> dict[str, FeatureValue]:
    """Typed features from the stored hash, plus derived ones.

    Only stored fields (and derived values) appear; readers apply schema defaults, so
    "not stored" stays distinguishable from "stored as the default".
    """
    out: dict[str, FeatureValue] = {}
    windowed: list[tuple[tuple[tuple[int, str], ...], Feature, bytes]] = []
    for key, value in raw.items():
        how, name, spec = _field_plan(key)
        if spec is None:
            continue
        if how == "bucket":
            windowed.append((_window_names(name, spec.windows), spec, value))
            continue
        try:
            out[name] = _CASTS[spec.type](value.decode())
        except ValueError:
            continue  # never fail a read over one bad field
    _derive(out, windowed, now)
    return out


@functools.lru_cache(maxsize=8192)
def _window_names(field: str, windows: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    """`views.shoes` -> ((7, "views_7d.shoes"), (30, "views_30d.shoes"))."""
    name, dot, key = field.partition(".")
    return tuple((days, f"{name}_{days}d{dot}{key}") for days in windows)


def _derive(
    out: dict[str, FeatureValue],
    windowed: list[tuple[tuple[tuple[int, str], ...], Feature, bytes]],
    now: float,
) -> None:
    today = day_of(now)
    for names, base, text in windowed:
        counts = parse_buckets(text.decode()).items()
        for days, derived_name in names:
            oldest, total = today - days, 0.0  # window_sum, inlined: it runs per read
            for day, count in counts:
                if oldest < day <= today:
                    total += count
            if total:
                out[derived_name] = int(total) if base.type == "int" else total
    for stored, derived in (("last_seen", "days_since_last_seen"),
                            ("last_purchase", "days_since_last_purchase")):  # fmt: skip
        at = out.get(stored)
        if isinstance(at, float) and at > 0:
            out[derived] = max(0.0, (now - at) / SECONDS_PER_DAY)
    _ratio(out, "aov", "revenue", "orders")
    _ratio(out, "aov_90d", "revenue_90d", "orders_90d")
    _ratio(out, "feedback_avg", "feedback_sum", "feedback_count")
    _ratio(out, "nps_avg", "nps_sum", "nps_count")
    recent: dict[str, float] = {}
    ever: dict[str, float] = {}
    channels = 0
    for k, v in out.items():
        family, dot, key = k.partition(".")
        if not dot:
            continue
        if family == "views_30d":
            recent[key] = float(v)
        elif family == "views":
            ever[key] = float(v)
        elif family == "channels":
            channels += 1
    views = recent or ever
    if views:  # ties: the alphabetically first, so the value is deterministic
        out["favourite_category"] = min(views, key=lambda c: (-views[c], c))
    if channels:
        out["channels_used"] = channels


def _ratio(out: dict[str, FeatureValue], name: str, num: str, den: str) -> None:
    top, bottom = out.get(num), out.get(den)
    if isinstance(top, int | float) and isinstance(bottom, int | float) and bottom:
        out[name] = float(top) / float(bottom)
