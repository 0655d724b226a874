"""The Redis key layout, pinned: changing a key string must be a deliberate act."""

from __future__ import annotations

import re

from engine.store.keys import Keys


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first `{...}` with something inside."""
    match = re.search(r"\{([^}]+)\}", key)
    return match.group(1) if match else key


def test_visitor_features_key() -> None:
    assert Keys("omo").visitor_features("abc") == "omo:{v:abc}:features"


def test_definition_keys() -> None:
    keys = Keys("omo")
    assert keys.definitions("slots") == "omo:{defs}:slots"
    assert keys.definitions("segments") == "omo:{defs}:segments"
    assert keys.definitions_version == "omo:{defs}:version"


def test_items_key() -> None:
    assert Keys("omo").items == "omo:items"


def test_bandit_counters_key() -> None:
    assert Keys("omo").bandit("home_hero") == "omo:bandit:home_hero"


def test_event_log_key() -> None:
    assert Keys("omo").event_log == "omo:events"


def test_every_key_starts_with_the_configured_prefix() -> None:
    keys = Keys("shop-2")
    every = [
        keys.visitor_features("abc"),
        keys.definitions("slots"),
        keys.definitions_version,
        keys.items,
        keys.event_log,
        keys.bandit("hero"),
    ]
    assert all(key.startswith("shop-2:") for key in every)


def test_visitor_keys_share_the_visitors_hash_tag() -> None:
    assert hash_tag(Keys("omo").visitor_features("abc")) == "v:abc"
    assert hash_tag(Keys("other").visitor_features("abc")) == "v:abc"


def test_definition_keys_share_one_hash_tag() -> None:
    keys = Keys("omo")
    tags = {hash_tag(keys.definitions(k)) for k in ("slots", "segments")}
    assert tags | {hash_tag(keys.definitions_version)} == {"defs"}


def test_different_visitors_get_different_keys() -> None:
    keys = Keys("omo")
    assert keys.visitor_features("a") != keys.visitor_features("b")
