"""The feature schema: names, typed decoding of the stored hash, and updates from events."""

from __future__ import annotations

from typing import Any

import pytest

from models.events import Event, EventType
from models.features import (
    FAMILIES,
    FEATURES,
    SECONDS_PER_DAY,
    Feature,
    FeatureFamily,
    FeatureOp,
    decode_features,
    default_of,
    feature_spec,
    ops_for_event,
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


@pytest.mark.parametrize("feature", FEATURES, ids=lambda f: f.name)
def test_every_feature_is_found_by_its_name(feature: Feature) -> None:
    assert feature_spec(feature.name) is feature
    assert default_of(feature.name) == feature.default


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.prefix)
def test_family_members_are_found_by_prefix_and_key(family: FeatureFamily) -> None:
    assert feature_spec(f"{family.prefix}.shoes") is family
    assert feature_spec(f"{family.prefix}.kids-shoes_2") is family
    assert default_of(f"{family.prefix}.shoes") == family.default


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "views",
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


def test_feature_names_are_unique_and_do_not_clash_with_families() -> None:
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert not {f.prefix for f in FAMILIES} & set(names)


# --- decoding -----------------------------------------------------------------------


def test_stored_fields_are_decoded_to_their_schema_types() -> None:
    raw = {
        b"page_views": b"12",
        b"first_seen": b"1699000000.5",
        b"last_channel": b"store",
        b"views.shoes": b"4",
    }
    decoded = decode_features(raw, NOW)
    assert decoded["page_views"] == 12
    assert isinstance(decoded["page_views"], int)
    assert decoded["first_seen"] == 1_699_000_000.5
    assert decoded["last_channel"] == "store"
    assert decoded["views.shoes"] == 4
    assert isinstance(decoded["views.shoes"], int)


def test_fields_the_schema_does_not_know_are_ignored() -> None:
    decoded = decode_features(
        {b"page_views": b"1", b"future_feature": b"x", b"views.Bad": b"1"}, NOW
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


# --- updates from events ------------------------------------------------------------


def test_every_event_counts_and_moves_recency_and_channel() -> None:
    assert ops_for_event(event("click", ts=NOW, channel="app")) == [
        FeatureOp("incr", "events", 1),
        FeatureOp("latest", "last_channel", "app", NOW),
        FeatureOp("min", "first_seen", NOW),
        FeatureOp("max", "last_seen", NOW),
    ]


@pytest.mark.parametrize("type_", ["impression", "click", "add_to_cart", "purchase", "identify"])
def test_events_other_than_page_views_do_not_count_views(type_: EventType) -> None:
    fields = {op.field for op in ops_for_event(event(type_, properties={"category": "shoes"}))}
    assert fields == {"events", "last_channel", "first_seen", "last_seen"}


def test_page_view_with_a_category_counts_a_view_and_a_category_view() -> None:
    ops = ops_for_event(event("page_view", properties={"category": "shoes"}))
    assert ops[-2:] == [FeatureOp("incr", "page_views", 1), FeatureOp("incr", "views.shoes", 1)]


def test_page_view_without_a_category_counts_only_a_view() -> None:
    ops = ops_for_event(event("page_view", properties={"url": "/"}))
    assert ops[-1] == FeatureOp("incr", "page_views", 1)
    assert not any(op.field.startswith("views.") for op in ops)


@pytest.mark.parametrize("category", ["Shoes", "", "a b", 7, None])
def test_page_view_with_an_unusable_category_counts_no_category_view(category: object) -> None:
    ops = ops_for_event(event("page_view", properties={"category": category}))
    assert [op.field for op in ops if op.kind == "incr"] == ["events", "page_views"]


def test_every_field_an_event_updates_is_in_the_schema() -> None:
    ops = ops_for_event(event("page_view", properties={"category": "shoes"}))
    for op in ops:
        spec = feature_spec(op.field)
        assert spec is not None
        assert not getattr(spec, "derived", False)
