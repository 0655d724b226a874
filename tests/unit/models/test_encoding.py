"""The model row layout shared by training and serving."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoding import NUMERIC_FEATURES, FeatureEncoder
from models.features import decode_features, default_of

NOW = 1_700_000_000.0


def test_columns_are_numeric_features_then_categories_then_channels() -> None:
    enc = FeatureEncoder(categories=("shoes", "bags"))
    assert enc.columns[: len(NUMERIC_FEATURES)] == NUMERIC_FEATURES
    assert "views_7d.shoes" in enc.columns
    assert enc.columns[-4:] == ("last_channel=web", "last_channel=app", "last_channel=store",
                                "last_channel=email")  # fmt: skip


def test_a_visitor_never_seen_encodes_to_the_schema_defaults() -> None:
    enc = FeatureEncoder(categories=("shoes",))
    (row,) = enc.encode([{}])
    for j, name in enumerate(NUMERIC_FEATURES):
        assert row[j] == pytest.approx(float(default_of(name)))  # type: ignore[arg-type]
    assert row[len(NUMERIC_FEATURES) :].sum() == 0


def test_stored_features_land_in_their_columns() -> None:
    enc = FeatureEncoder(categories=("shoes",))
    today = int(NOW // 86_400)
    features = decode_features(
        {b"page_views": b"4", b"last_channel": b"app", b"w.views.shoes": f"{today}:3".encode(),
         b"views.hats": b"9"},
        NOW,
    )  # fmt: skip
    (row,) = enc.encode([features])
    col = {name: row[j] for j, name in enumerate(enc.columns)}
    assert col["page_views"] == 4
    assert col["views_7d.shoes"] == 3
    assert col["last_channel=app"] == 1
    assert col["last_channel=web"] == 0
    assert row.dtype == np.float32


def test_the_schema_hash_follows_the_layout() -> None:
    assert FeatureEncoder(("a", "b")).schema_hash == FeatureEncoder(("a", "b")).schema_hash
    assert FeatureEncoder(("a", "b")).schema_hash != FeatureEncoder(("b", "a")).schema_hash
