"""Outcomes count for the decision whose token they carry, inside the window only."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from engine.events.archive import SCHEMA
from training.attribution import attribute


def row(kind: str, ts: float, token: str | None, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "stream_id": f"{int(ts * 1000)}-0",
        "event_id": f"e{ts}-{kind}-{token}",
        "type": kind,
        "pid": "p1",
        "profile": "p1",
        "ts": ts,
        "channel": "web",
        "token": token,
        "item_id": None,
        "value": None,
        "properties": "{}",
    }
    base.update(extra)
    return base


def decision(ts: float, token: str, slot: str = "hero", chosen: str = "a") -> dict[str, Any]:
    props = {
        "slot": slot,
        "chosen": chosen,
        "eligible": ["a", "b"],
        "propensity": 0.5,
        "policy": "model",
        "features": {"page_views": 3},
    }
    return row("decision", ts, token, properties=orjson.dumps(props).decode())


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_clicks_and_conversions_join_by_token_within_the_window() -> None:
    rows = [
        decision(100.0, "t1"),
        decision(50.0, "t2", chosen="b"),
        decision(200.0, "t3"),
        row("click", 110.0, "t1"),
        row("purchase", 150.0, "t1", value=30.0),
        row("conversion", 160.0, "t1", value=5.0),
        row("click", 50.0 + 4000.0, "t2"),  # outside a 3600 s window
        row("click", 199.0, "t3"),  # before the decision: not its outcome
        row("click", 120.0, "unknown"),
        row("page_view", 130.0, "t3"),  # not an outcome type
    ]
    result = attribute(table(rows), window_s=3600.0)
    assert result.event_ids.tolist() == [
        "e50.0-decision-t2",
        "e100.0-decision-t1",
        "e200.0-decision-t3",
    ]
    assert result.clicked.tolist() == [False, True, False]
    assert result.converted.tolist() == [False, True, False]
    np.testing.assert_allclose(result.value, [0.0, 35.0, 0.0])
    assert result.chosen.tolist() == ["b", "a", "a"]
    np.testing.assert_allclose(result.propensities, [0.5, 0.5, 0.5])
    assert result.properties[0]["features"] == {"page_views": 3}


def test_one_slot_only_and_an_empty_log() -> None:
    rows = [decision(1.0, "t1", slot="hero"), decision(2.0, "t2", slot="banner")]
    assert attribute(table(rows), slot="banner").slots.tolist() == ["banner"]
    assert len(attribute(table([]))) == 0


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        attribute(table([]), window_s=0)
