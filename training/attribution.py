"""Outcomes joined to the decisions that led to them, from the event archive.

A decision record (`type == "decision"`, written by `engine.decisions.log`) carries the
token the client got; clicks, conversions and purchases that send that token back
within the attribution window are its outcomes. The join needs no lookup table: the
token is the key on both sides. Outcomes before the decision or after the window do
not count (a stale token replayed a week later is not this decision's success).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

CLICK_TYPES = ("click",)
CONVERSION_TYPES = ("conversion", "purchase")
DEFAULT_WINDOW_S = 86_400.0


@dataclass(frozen=True, slots=True)
class AttributedDecisions:
    """One row per logged decision, in time order, with its outcomes."""

    event_ids: npt.NDArray[np.str_]
    pids: npt.NDArray[np.str_]
    slots: npt.NDArray[np.str_]
    chosen: npt.NDArray[np.str_]
    policies: npt.NDArray[np.str_]
    propensities: npt.NDArray[np.float64]
    ts: npt.NDArray[np.float64]
    properties: list[dict[str, Any]]  # eligible, features, context, model_version ...
    clicked: npt.NDArray[np.bool_]
    converted: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.event_ids)


def attribute(
    table: pa.Table, window_s: float = DEFAULT_WINDOW_S, slot: str | None = None
) -> AttributedDecisions:
    """Decisions of `table` (the archive's schema), optionally of one slot, with the
    clicks, conversions and conversion value that came back with their token within
    `window_s` seconds."""
    if not window_s > 0:
        raise ValueError(f"the attribution window must be positive, got {window_s}")
    decisions = table.filter(pc.equal(table["type"], "decision"))
    properties = [orjson.loads(raw) for raw in decisions["properties"].to_pylist()]
    if slot is not None:
        keep = np.array([p.get("slot") == slot for p in properties], dtype=bool)
        decisions = decisions.filter(pa.array(keep, pa.bool_()))
        properties = [p for p, k in zip(properties, keep, strict=True) if k]
    order = np.argsort(decisions["ts"].to_numpy(zero_copy_only=False), kind="stable")
    decisions = decisions.take(pa.array(order))
    properties = [properties[i] for i in order]
    n = decisions.num_rows
    ts = decisions["ts"].to_numpy(zero_copy_only=False).astype(np.float64)
    clicked = np.zeros(n, dtype=bool)
    converted = np.zeros(n, dtype=bool)
    value = np.zeros(n, dtype=np.float64)
    outcome_types = pa.array([*CLICK_TYPES, *CONVERSION_TYPES])
    outcomes = table.filter(
        pc.and_(pc.is_in(table["type"], outcome_types), pc.is_valid(table["token"]))
    )
    if n and outcomes.num_rows:
        found = pc.index_in(outcomes["token"], value_set=decisions["token"])
        rows = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        matched = rows >= 0
        when = outcomes["ts"].to_numpy(zero_copy_only=False).astype(np.float64)
        delay = when - ts[np.where(matched, rows, 0)]
        inside = matched & (delay >= 0) & (delay <= window_s)
        kinds = outcomes["type"].to_numpy(zero_copy_only=False)
        is_click = inside & np.isin(kinds, CLICK_TYPES)
        is_conversion = inside & np.isin(kinds, CONVERSION_TYPES)
        clicked[rows[is_click]] = True
        converted[rows[is_conversion]] = True
        amounts = np.nan_to_num(
            outcomes["value"].to_numpy(zero_copy_only=False).astype(np.float64), nan=0.0
        )
        np.add.at(value, rows[is_conversion], amounts[is_conversion])
    return AttributedDecisions(
        event_ids=np.asarray(decisions["event_id"].to_pylist(), dtype=np.str_),
        pids=np.asarray(decisions["pid"].to_pylist(), dtype=np.str_),
        slots=np.asarray([p.get("slot", "") for p in properties], dtype=np.str_),
        chosen=np.asarray([p.get("chosen", "") for p in properties], dtype=np.str_),
        policies=np.asarray([p.get("policy", "") for p in properties], dtype=np.str_),
        propensities=np.asarray([p.get("propensity", 1.0) for p in properties], np.float64),
        ts=ts,
        properties=properties,
        clicked=clicked,
        converted=converted,
        value=value,
    )
