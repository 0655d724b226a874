"""Open Bandit Dataset logs (ZOZOTOWN, Saito et al. 2021) for off-policy evaluation.

One CSV per campaign and logging policy (`random/all/all.csv`, `bts/all/all.csv`): an
unnamed index column, `timestamp`, `item_id` (the action), `position` (the slot on the
page), `click` (the reward), `propensity_score` (the logging policy's probability of
this item at this position), `user_feature_0..3` (hashed categories) and 80
`user-item_affinity_*` columns. An `item_context.csv` beside it lists the catalogue.

Columns are found by name, so extra columns are ignored; the affinities are not kept
because no policy evaluated here reads them. Rows are parsed one by one so that a bad
row is reported with its file and line (10,000 rows take well under a second).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")
USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")
ITEM_CONTEXT = "item_context.csv"


@dataclass(frozen=True, slots=True)
class ObdLog:
    """Logged impressions, one per row: which item was shown where, whether it was
    clicked, and with which probability the logging policy chose it.

    `n_actions` is the catalogue size (items are `0..n_actions-1`), which a uniform
    policy needs even when a small log never shows some item.
    """

    actions: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    rewards: npt.NDArray[np.float64]
    propensities: npt.NDArray[np.float64]
    timestamps: npt.NDArray[np.datetime64]
    user_features: npt.NDArray[np.str_]
    n_actions: int

    def __post_init__(self) -> None:
        n = len(self.actions)
        columns = (self.positions, self.rewards, self.propensities, self.timestamps)
        if any(len(c) != n for c in columns) or self.user_features.shape != (
            n,
            len(USER_FEATURES),
        ):
            raise ValueError("obd log: columns of different lengths")

    def __len__(self) -> int:
        return len(self.actions)


def load_obd(path: Path) -> ObdLog:
    """An Open Bandit Dataset log, with its catalogue size from `item_context.csv` beside it.

    Without that file the catalogue is taken to be items `0..max(item_id)`: every OBD
    sample log shows all 80 items, but a fixture or a cut-down log may not.
    """
    try:
        log = _read_log(path)
        context = path.parent / ITEM_CONTEXT
        n_actions = _catalogue_size(context) if context.is_file() else None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    actions = np.asarray(log.actions, dtype=np.int64)
    largest = int(actions.max())
    if n_actions is None:
        n_actions = largest + 1
    elif largest >= n_actions:
        raise ValueError(f"{path}: item_id {largest} is outside the {n_actions} items of {context}")
    return ObdLog(
        actions=actions,
        positions=np.asarray(log.positions, dtype=np.int64),
        rewards=np.asarray(log.rewards, dtype=np.float64),
        propensities=np.asarray(log.propensities, dtype=np.float64),
        timestamps=np.asarray(log.timestamps, dtype="datetime64[us]"),
        user_features=np.asarray(log.user_features, dtype=np.str_).reshape(-1, len(USER_FEATURES)),
        n_actions=n_actions,
    )


@dataclass(slots=True)
class _Rows:
    actions: list[int]
    positions: list[int]
    rewards: list[float]
    propensities: list[float]
    timestamps: list[dt.datetime]
    user_features: list[list[str]]


def _read_log(path: Path) -> _Rows:
    rows = _Rows([], [], [], [], [], [])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next((r for r in reader if r), None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        columns = [h.strip() for h in header]
        needed = LOG_COLUMNS + USER_FEATURES
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ValueError(
                f"{path}:{reader.line_num}: not an Open Bandit Dataset log; "
                f"missing {', '.join(missing)}"
            )
        at = {c: columns.index(c) for c in needed}
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            where = f"{path}:{reader.line_num}"
            if len(record) != len(columns):
                raise ValueError(f"{where}: {len(record)} fields, the header has {len(columns)}")
            rows.actions.append(_count(record[at["item_id"]], "item_id", where))
            rows.positions.append(_count(record[at["position"]], "position", where))
            rows.rewards.append(_click(record[at["click"]], where))
            rows.propensities.append(_propensity(record[at["propensity_score"]], where))
            rows.timestamps.append(_timestamp(record[at["timestamp"]], where))
            rows.user_features.append([record[at[c]] for c in USER_FEATURES])
    if not rows.actions:
        raise ValueError(f"{path}: no logged rows")
    return rows


def _catalogue_size(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next((r for r in reader if r), [])]
        if "item_id" not in header:
            raise ValueError(f"{path}:{reader.line_num}: no item_id column")
        at = header.index("item_id")
        ids = [
            _count(r[at], "item_id", f"{path}:{reader.line_num}")
            for r in reader
            if any(cell.strip() for cell in r)
        ]
    if not ids:
        raise ValueError(f"{path}: no items")
    return max(ids) + 1


def _count(text: str, column: str, where: str) -> int:
    value = text.strip()
    if not value.isdigit():
        raise ValueError(f"{where}: {column} {text!r} is not a non-negative integer")
    return int(value)


def _click(text: str, where: str) -> float:
    value = text.strip()
    if value not in ("0", "1"):
        raise ValueError(f"{where}: click {text!r} is not 0 or 1")
    return float(value)


def _propensity(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: propensity_score {text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{where}: propensity_score {text!r} is not in (0, 1]")
    return value


def _timestamp(text: str, where: str) -> dt.datetime:
    """OBD writes `2019-11-24 00:00:34.762830+00:00`; kept as naive UTC for numpy."""
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{where}: timestamp {text!r} is not an ISO date and time") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp
