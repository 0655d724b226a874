"""The feature schema: names, typed decoding of the stored hash, and updates from events."""

from __future__ import annotations

from typing import Any

import pytest

from models.events import Event, EventType
from models.features import (
    ALL_FEATURES,
    FEATURES,
    SECONDS_PER_DAY,
    SESSION_GAP_S,
    Feature,
    FeatureOp,
    day_of,
    decode_features,
    default_of,
    feature_spec,
    merge_rules,
    ops_for_event,
    parse_buckets,
    window_sum,
)

NOW = 1_700_000_000.0


def event(
    type_: EventType = "click",
    *,
    ts: float = NOW,
    channel: str = "app",
    properties: dict[str, Any] | None = None,
) -> Event:
    return Event(type=type_, pid="p", ts=ts, channel=channel, properties=properties or {})


# --- names --------------------------------------------------------------------------

SCALARS = [f for f in ALL_FEATURES if not f.family]
FAMILIES = [f for f in ALL_FEATURES if f.family]


@pytest.mark.parametrize("feature", SCALARS, ids=lambda f: f.name)
def test_every_feature_is_found_by_its_name(feature: Feature) -> None:
    assert feature_spec(feature.name) is feature
    assert default_of(feature.name) == feature.default


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_members_are_found_by_prefix_and_key(family: Feature) -> None:
    assert feature_spec(f"{family.name}.shoes") is family
    assert feature_spec(f"{family.name}.kids-shoes_2") is family
    assert default_of(f"{family.name}.shoes") == family.default
    assert feature_spec(family.name) is None


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "views.",
        "views.Shoes",
        "views.-shoes",
        "views.a b",
        "views." + "x" * 65,
        "page_views.x",
        "nope.shoes",
    ],
)
def test_names_outside_the_schema_have_no_spec(name: str) -> None:
    assert feature_spec(name) is None
    assert default_of(name) is None


def test_feature_names_are_unique() -> None:
    names = [f.name for f in ALL_FEATURES]
    assert len(names) == len(set(names))


def test_windowed_counters_are_readable_per_window() -> None:
    assert feature_spec("views_7d.shoes") is not None
    assert feature_spec("views_30d.shoes") is not None
    assert feature_spec("orders_90d") is not None
    assert feature_spec("sessions_7d") is not None


def test_every_stored_feature_says_how_a_merge_combines_it() -> None:
    rules = merge_rules()
    for f in FEATURES:
        if f.source != "derived":
            assert f.name in rules, f.name
    assert rules["w"] == "buckets"


# --- decoding -----------------------------------------------------------------------


def test_stored_fields_are_decoded_to_their_schema_types() -> None:
    raw = {
        b"page_views": b"12",
        b"first_seen": b"1699000000.5",
        b"last_channel": b"store",
        b"views.shoes": b"4",
        b"trait.region": b"eu",
    }
    decoded = decode_features(raw, NOW)
    assert decoded["page_views"] == 12
    assert isinstance(decoded["page_views"], int)
    assert decoded["first_seen"] == 1_699_000_000.5
    assert decoded["last_channel"] == "store"
    assert decoded["views.shoes"] == 4
    assert isinstance(decoded["views.shoes"], int)
    assert decoded["trait.region"] == "eu"


def test_fields_the_schema_does_not_know_are_ignored() -> None:
    decoded = decode_features(
        {
            b"page_views": b"1",
            b"future_feature": b"x",
            b"views.Bad": b"1",
            b"last_channel@": b"1",
            b"aov": b"5",  # derived names are computed, never read from storage
        },
        NOW,
    )
    assert decoded == {"page_views": 1}


def test_values_that_do_not_parse_as_their_type_are_left_out() -> None:
    assert decode_features({b"page_views": b"lots", b"events": b"3"}, NOW) == {"events": 3}


def test_features_not_stored_are_absent_not_defaulted() -> None:
    assert decode_features({}, NOW) == {}


def test_days_since_last_seen_is_derived_from_last_seen() -> None:
    last_seen = NOW - 2.5 * SECONDS_PER_DAY
    decoded = decode_features({b"last_seen": str(last_seen).encode()}, NOW)
    assert decoded["days_since_last_seen"] == pytest.approx(2.5)


def test_days_since_last_seen_is_never_negative_for_a_last_seen_in_the_future() -> None:
    decoded = decode_features({b"last_seen": str(NOW + 60).encode()}, NOW)
    assert decoded["days_since_last_seen"] == 0.0


def test_days_since_last_seen_is_absent_for_a_visitor_never_seen() -> None:
    assert "days_since_last_seen" not in decode_features({b"last_seen": b"0"}, NOW)
    assert "days_since_last_seen" not in decode_features({b"page_views": b"1"}, NOW)


def test_ratios_are_derived_and_absent_without_a_denominator() -> None:
    decoded = decode_features(
        {b"orders": b"4", b"revenue": b"100.0", b"feedback_count": b"2", b"feedback_sum": b"9"},
        NOW,
    )
    assert decoded["aov"] == 25.0
    assert decoded["feedback_avg"] == 4.5
    assert "nps_avg" not in decoded
    assert "aov" not in decode_features({b"revenue": b"10.0"}, NOW)


def test_favourite_category_prefers_the_last_30_days_and_breaks_ties_by_name() -> None:
    today = day_of(NOW)
    raw = {
        b"views.shoes": b"50",
        b"views.hats": b"3",
        b"w.views.hats": f"{today}:2".encode(),
        b"w.views.bags": f"{today - 1}:2".encode(),
    }
    assert decode_features(raw, NOW)["favourite_category"] == "bags"
    assert decode_features({b"views.shoes": b"5"}, NOW)["favourite_category"] == "shoes"


def test_channels_used_counts_channels() -> None:
    decoded = decode_features({b"channels.web": b"3", b"channels.store": b"1"}, NOW)
    assert decoded["channels_used"] == 2


# --- windows ------------------------------------------------------------------------


def test_a_window_of_n_days_covers_today_and_the_n_minus_1_days_before() -> None:
    today = 20_000
    buckets = {today: 1.0, today - 6: 10.0, today - 7: 100.0, today + 1: 1000.0}
    assert window_sum(buckets, today, 7) == 11.0
    assert window_sum(buckets, today, 1) == 1.0
    assert window_sum(buckets, today, 8) == 111.0


def test_window_edges_move_at_utc_midnight() -> None:
    event_day = day_of(NOW)
    last_second_of_day_6 = (event_day + 7) * SECONDS_PER_DAY - 1
    first_second_of_day_7 = (event_day + 7) * SECONDS_PER_DAY
    raw = {b"w.views.shoes": f"{event_day}:3".encode()}
    assert decode_features(raw, last_second_of_day_6)["views_7d.shoes"] == 3
    assert "views_7d.shoes" not in decode_features(raw, first_second_of_day_7)
    assert decode_features(raw, first_second_of_day_7)["views_30d.shoes"] == 3


def test_buckets_parse_as_the_ingest_script_writes_them() -> None:
    assert parse_buckets("19999:2,20000:1.5") == {19999: 2.0, 20000: 1.5}
    assert parse_buckets("") == {}


def test_windowed_money_stays_a_float_and_counts_stay_ints() -> None:
    today = day_of(NOW)
    raw = {b"w.revenue": f"{today}:12.5".encode(), b"w.orders": f"{today}:1".encode()}
    decoded = decode_features(raw, NOW)
    assert decoded["revenue_90d"] == 12.5
    assert decoded["orders_90d"] == 1
    assert isinstance(decoded["orders_90d"], int)
    assert decoded["aov_90d"] == 12.5


# --- updates from events ------------------------------------------------------------


def kinds(ops: list[FeatureOp]) -> dict[str, str]:
    return {op.field: op.kind for op in ops}


def test_every_event_counts_and_moves_recency_sessions_and_channel() -> None:
    ops = ops_for_event(event("click", ts=NOW, channel="app"))
    assert ops[0] == FeatureOp("session", "sessions", SESSION_GAP_S, NOW, 30)
    assert kinds(ops) == {
        "sessions": "session",
        "events": "incr",
        "first_seen": "min",
        "last_seen": "max",
        "last_channel": "newest",
        "channels.app": "incr",
        "clicks": "incr",
    }


def test_sessions_are_counted_before_last_seen_moves() -> None:
    fields = [op.field for op in ops_for_event(event("click"))]
    assert fields.index("sessions") < fields.index("last_seen")


def test_page_view_with_a_category_counts_views_in_windows() -> None:
    ops = ops_for_event(event("page_view", properties={"category": "shoes"}))
    assert FeatureOp("incr", "views.shoes", 1, NOW) in ops
    assert FeatureOp("bucket", "w.views.shoes", 1, NOW, 30) in ops
    assert FeatureOp("incr", "page_views", 1, NOW) in ops


def test_page_view_without_a_category_counts_only_a_view() -> None:
    ops = ops_for_event(event("page_view", properties={"url": "/"}))
    assert FeatureOp("incr", "page_views", 1, NOW) in ops
    assert not any(op.field.startswith(("views.", "w.views")) for op in ops)


@pytest.mark.parametrize("category", ["Shoes", "", "a b", 7, None])
def test_page_view_with_an_unusable_category_counts_no_category_view(category: object) -> None:
    ops = ops_for_event(event("page_view", properties={"category": category}))
    assert not any("views." in op.field for op in ops)


def test_purchase_updates_money_recency_and_categories_bought() -> None:
    purchase = Event(
        type="purchase",
        pid="p",
        ts=NOW,
        channel="store",
        value=30.0,
        properties={
            "order_id": "o1",
            "items": [
                {"item_id": "a", "price": 10.0, "qty": 2, "category": "shoes"},
                {"item_id": "b", "price": 10.0, "qty": 1, "category": "shoes"},
                {"item_id": "c", "price": 0.0, "qty": 1},
            ],
        },
    )
    ops = ops_for_event(purchase)
    assert FeatureOp("incr", "orders", 1, NOW) in ops
    assert FeatureOp("incr", "revenue", 30.0, NOW) in ops
    assert FeatureOp("bucket", "w.revenue", 30.0, NOW, 90) in ops
    assert FeatureOp("incr", "purchases.shoes", 3, NOW) in ops
    assert FeatureOp("max", "last_purchase", NOW, NOW) in ops


def test_identify_sets_traits_by_newest_event() -> None:
    ops = ops_for_event(event("identify", properties={"traits": {"region": "eu", "Bad": "x"}}))
    assert FeatureOp("newest", "trait.region", "eu", NOW) in ops
    assert not any(op.field == "trait.Bad" for op in ops)


def test_feedback_counts_rating_and_nps_apart() -> None:
    ops = ops_for_event(event("feedback", properties={"nps": 9}))
    assert FeatureOp("incr", "nps_sum", 9, NOW) in ops
    assert FeatureOp("incr", "nps_count", 1, NOW) in ops
    assert not any(op.field.startswith("feedback_") for op in ops)


@pytest.mark.parametrize(
    "type_", ["page_view", "click", "add_to_cart", "purchase", "identify", "feedback", "custom"]
)
def test_every_field_an_event_updates_is_a_stored_schema_field(type_: EventType) -> None:
    props: dict[str, Any] = {
        "page_view": {"category": "shoes"},
        "purchase": {"items": [{"item_id": "a", "price": 1.0, "category": "shoes"}]},
        "identify": {"traits": {"region": "eu"}},
        "feedback": {"rating": 4, "nps": 3},
        "custom": {"name": "quiz"},
    }.get(type_, {})
    for op in ops_for_event(event(type_, properties=props)):
        name = op.field.removeprefix("w.")
        spec = feature_spec(name)
        assert spec is not None, op.field
        assert spec.source == "event"
        assert (op.kind == "bucket") == op.field.startswith("w.")
