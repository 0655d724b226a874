"""The profile scripts against the real Redis, at a fixed clock: windows, sessions,
duplicates, history and the identity merge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis

from engine.events.ingest import LOG_INDEX_CAP, write_events
from engine.store.client import Store, connect
from engine.store.keys import Keys
from engine.store.profiles import IngestPolicy, read_profile
from models.events import Event, EventType
from models.features import SECONDS_PER_DAY, day_of, decode_features

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

# noon UTC, so "a few hours earlier" stays on the same day
NOW = (day_of(1_700_000_000.0) + 0.5) * SECONDS_PER_DAY
DAY = SECONDS_PER_DAY
POLICY = IngestPolicy(
    ttl_s=3600,
    dedup_window_s=7 * 86_400,
    history_size=5,
    log_maxlen=10_000,
    log_cap=LOG_INDEX_CAP,
    analytics_default=True,
)
_ids = iter(range(1_000_000))


@pytest.fixture
async def store(redis_url: str, key_prefix: str) -> AsyncIterator[Store]:
    s = Store(connect(redis_url, 1000), Keys(key_prefix))
    yield s
    await s.close()


def ev(
    type_: EventType,
    pid: str,
    ts: float = NOW,
    *,
    channel: str = "web",
    event_id: str | None = None,
    item_id: str | None = None,
    value: float | None = None,
    **properties: Any,
) -> Event:
    return Event(
        type=type_,
        pid=pid,
        ts=ts,
        channel=channel,
        event_id=event_id or f"e{next(_ids)}",
        item_id=item_id,
        value=value,
        properties=properties,
    )


def view(pid: str, ts: float = NOW, category: str = "shoes", **kw: Any) -> Event:
    return ev("page_view", pid, ts, category=category, **kw)


async def features(store: Store, pid: str, at: float = NOW) -> dict[str, Any]:
    profile = await read_profile(store, pid, personalization_default=True)
    assert profile is not None
    return decode_features(profile.features, at)


# --- windows ------------------------------------------------------------------------


async def test_windowed_views_count_exactly_the_last_n_days(store: Store) -> None:
    await write_events(
        store,
        [
            view("a", NOW),
            view("a", NOW - 6 * DAY),
            view("a", NOW - 7 * DAY),
            view("a", NOW - 29 * DAY),
        ],
        POLICY,
        now=NOW,
    )
    f = await features(store, "a")
    assert f["views_7d.shoes"] == 2
    assert f["views_30d.shoes"] == 4
    assert f["views.shoes"] == 4
    # a day later the view from 6 days ago leaves the 7-day window, at midnight UTC
    midnight = (day_of(NOW) + 1) * DAY
    assert (await features(store, "a", midnight - 1))["views_7d.shoes"] == 2
    assert (await features(store, "a", midnight))["views_7d.shoes"] == 1


async def test_events_older_than_the_longest_window_are_counted_but_not_bucketed(
    store: Store, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await write_events(store, [view("a", NOW - 40 * DAY)], POLICY, now=NOW)
    f = await features(store, "a")
    assert f["views.shoes"] == 1
    assert "views_30d.shoes" not in f
    assert not redis_sync.hexists(Keys(key_prefix).visitor_features("a"), "w.views.shoes")


async def test_old_buckets_are_pruned_when_the_counter_moves(
    store: Store, redis_sync: redis.Redis, key_prefix: str
) -> None:
    await write_events(store, [view("a", NOW - 20 * DAY)], POLICY, now=NOW - 20 * DAY)
    await write_events(store, [view("a", NOW)], POLICY, now=NOW + 15 * DAY)
    stored = redis_sync.hget(Keys(key_prefix).visitor_features("a"), "w.views.shoes")
    assert stored == f"{day_of(NOW)}:1".encode()


async def test_money_over_90_days_and_average_order_value(store: Store) -> None:
    items = [{"item_id": "i1", "price": 10.0, "qty": 2, "category": "shoes"}]
    await write_events(
        store,
        [
            ev("purchase", "a", NOW - 100 * DAY, value=100.0, order_id="o1", items=items),
            ev("purchase", "a", NOW - DAY, value=20.5, order_id="o2", items=items),
            ev("purchase", "a", NOW, value=9.5, order_id="o3", items=items),
        ],
        POLICY,
        now=NOW,
    )
    f = await features(store, "a")
    assert f["orders"] == 3
    assert f["revenue"] == pytest.approx(130.0)
    assert f["orders_90d"] == 2
    assert f["revenue_90d"] == pytest.approx(30.0)
    assert f["aov"] == pytest.approx(130.0 / 3)
    assert f["aov_90d"] == pytest.approx(15.0)
    assert f["purchases_7d.shoes"] == 4
    assert f["days_since_last_purchase"] == 0.0


async def test_a_new_session_starts_after_30_idle_minutes(store: Store) -> None:
    times = [NOW - 3 * 3600, NOW - 3 * 3600 + 600, NOW - 3600, NOW - 3599, NOW]
    await write_events(store, [view("a", t) for t in times], POLICY, now=NOW)
    f = await features(store, "a")
    assert f["sessions"] == 3
    assert f["sessions_7d"] == 3


async def test_every_profile_feature_the_issue_names_is_computed(store: Store) -> None:
    await write_events(
        store,
        [
            view("a", NOW - 3600, channel="app"),
            ev("add_to_cart", "a", NOW - 1800, item_id="i1", qty=2),
            ev("feedback", "a", NOW - 60, rating=4, nps=9),
            ev("feedback", "a", NOW - 50, rating=2),
            ev("identify", "a", NOW - 40, customer_pid="a", traits={"age_band": "25-34"}),
            ev("conversion", "a", NOW - 30, value=5.0, goal="signup"),
            ev("custom", "a", NOW - 20, name="quiz"),
        ],
        POLICY,
        now=NOW,
    )
    f = await features(store, "a")
    assert f["cart_adds"] == 2
    assert f["cart_adds_7d"] == 2
    assert f["feedback_avg"] == 3.0
    assert f["nps_avg"] == 9.0
    assert f["trait.age_band"] == "25-34"
    assert f["conversions"] == 1
    assert f["custom.quiz"] == 1
    assert f["channels_used"] == 2
    assert f["last_channel"] == "web"
    assert f["favourite_category"] == "shoes"
    assert f["days_since_last_seen"] == pytest.approx(20 / DAY)


# --- duplicates and history ---------------------------------------------------------


async def test_a_duplicate_event_id_is_ignored(
    store: Store, redis_sync: redis.Redis, key_prefix: str
) -> None:
    first = await write_events(store, [view("a", event_id="x1")], POLICY, now=NOW)
    again = await write_events(
        store, [view("a", event_id="x1"), view("a", event_id="x2")], POLICY, now=NOW
    )
    assert (first.accepted, first.duplicates) == (1, 0)
    assert (again.accepted, again.duplicates) == (1, 1)
    assert (await features(store, "a"))["page_views"] == 2
    assert redis_sync.xlen(Keys(key_prefix).event_log) == 2


async def test_an_event_id_is_forgotten_after_the_dedup_window(store: Store) -> None:
    await write_events(store, [view("a", event_id="x1")], POLICY, now=NOW)
    later = NOW + 8 * DAY
    counts = await write_events(store, [view("a", later, event_id="x1")], POLICY, now=later)
    assert counts.accepted == 1


async def test_history_keeps_the_latest_items_newest_first_and_capped(store: Store) -> None:
    events = [view("a", NOW - 100 + i, item_id=f"i{i}") for i in range(7)]
    events.append(view("a", NOW, item_id="i2"))  # seen again: moves to the front
    await write_events(store, events, POLICY, now=NOW)
    profile = await read_profile(store, "a", personalization_default=True, history_n=10)
    assert profile is not None
    assert [item for _, item in profile.history] == ["i2", "i6", "i5", "i4", "i3"]
    assert {kind for kind, _ in profile.history} == {"page_view"}


async def test_history_keeps_each_kind_of_interaction_with_an_item(store: Store) -> None:
    events = [
        view("a", NOW - 30, item_id="sku"),
        ev("add_to_cart", "a", NOW - 20, item_id="sku"),
        ev("purchase", "a", NOW - 10, items=[{"item_id": "sku", "price": 5.0, "qty": 1}]),
        ev("impression", "a", NOW - 5, item_id="other"),  # shown is not interest
    ]
    await write_events(store, events, POLICY, now=NOW)
    profile = await read_profile(store, "a", personalization_default=True, history_n=10)
    assert profile is not None
    assert profile.history == [("purchase", "sku"), ("add_to_cart", "sku"), ("page_view", "sku")]


# --- identity -----------------------------------------------------------------------


async def test_identify_merges_the_anonymous_profile_into_the_customers(
    store: Store, redis_sync: redis.Redis, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    await write_events(
        store,
        [
            view("anon", NOW - 5 * DAY, item_id="a1", channel="web"),
            view("anon", NOW - 4 * DAY, item_id="a2", channel="web"),
            ev("identify", "anon", NOW - 4 * DAY, traits={"region": "eu", "gender": "f"}),
        ],
        POLICY,
        now=NOW,
    )
    await write_events(
        store,
        [
            view("cust", NOW - 10 * DAY, item_id="c1", channel="store"),
            ev("identify", "cust", NOW - 2 * DAY, customer_pid="cust", traits={"region": "us"}),
            view("cust", NOW - 3 * DAY, category="bags", item_id="c2", channel="app"),
        ],
        POLICY,
        now=NOW,
    )
    await write_events(
        store, [ev("identify", "anon", NOW - DAY, customer_pid="cust")], POLICY, now=NOW
    )
    f = await features(store, "cust")
    assert f["views.shoes"] == 3  # counters add
    assert f["views_7d.shoes"] == 2  # day buckets add per day
    assert f["views.bags"] == 1
    assert f["events"] == 7
    assert f["first_seen"] == NOW - 10 * DAY  # recency: min / max
    assert f["last_seen"] == NOW - DAY
    assert f["trait.region"] == "us"  # traits: the newest
    assert f["trait.gender"] == "f"
    assert f["last_channel"] == "web"
    assert f["channels_used"] == 3
    # histories interleave by time
    profile = await read_profile(store, "cust", personalization_default=True, history_n=10)
    assert profile is not None
    assert [item for _, item in profile.history] == ["c2", "a2", "a1", "c1"]
    # the anonymous id now reads and writes the customer's profile
    assert await features(store, "anon") == f
    assert not redis_sync.exists(keys.visitor_features("anon"))
    await write_events(store, [view("anon", NOW, channel="email")], POLICY, now=NOW)
    assert (await features(store, "cust"))["views.shoes"] == 4
    assert redis_sync.smembers(keys.visitor("cust", "aliases")) == {b"anon"}
    assert redis_sync.llen(keys.visitor("cust", "log")) == 8


async def test_merging_twice_changes_nothing_but_the_new_event(store: Store) -> None:
    await write_events(store, [view("anon"), view("cust")], POLICY, now=NOW)
    identify = ev("identify", "anon", customer_pid="cust")
    await write_events(store, [identify], POLICY, now=NOW)
    once = await features(store, "cust")
    await write_events(store, [ev("identify", "anon", customer_pid="cust")], POLICY, now=NOW)
    twice = await features(store, "cust")
    assert twice["events"] == once["events"] + 1
    assert {k: v for k, v in twice.items() if k not in ("events", "channels.web")} == {
        k: v for k, v in once.items() if k not in ("events", "channels.web")
    }
    # the same identify replayed (same event id) is a duplicate, not a second merge
    assert (await write_events(store, [identify], POLICY, now=NOW)).duplicates == 1


async def test_a_shared_device_switching_customers_moves_no_data(store: Store) -> None:
    await write_events(
        store,
        [view("device"), ev("identify", "device", customer_pid="ann"), view("ann")],
        POLICY,
        now=NOW,
    )
    await write_events(
        store,
        [view("bob"), ev("identify", "device", customer_pid="bob"), view("device")],
        POLICY,
        now=NOW,
    )
    ann, bob = await features(store, "ann"), await features(store, "bob")
    assert ann["page_views"] == 2
    assert bob["page_views"] == 2  # bob's own view and the device's view after the switch


async def test_events_in_one_batch_after_an_identify_land_on_the_customer(store: Store) -> None:
    await write_events(
        store,
        [view("anon"), ev("identify", "anon", customer_pid="cust"), view("anon")],
        POLICY,
        now=NOW,
    )
    assert (await features(store, "cust"))["page_views"] == 2
