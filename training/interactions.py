"""Interactions for training the recommender: who showed interest in which item, how
much, and when, one row per (user, item).

Three sources give the same `Interactions`:

- MovieLens ratings: the RecBole `.inter` file (tab-separated, header
  `user_id:token item_id:token rating:float timestamp:float`) or GroupLens' `u.data`
  (the same columns without a header). Every rating counts as one positive
  interaction of weight 1, because implicit-feedback models learn from *what* people
  chose to watch, and a low rating is still a choice; `rating_weights=True` uses the
  rating itself as the weight instead.
- A CSV export with a header naming `user`, `item`, `weight` and optionally
  `timestamp` (Unix seconds or ISO 8601). Without timestamps the file's line order
  stands for time, so leave-last-out holds out each user's last line.
- The engine's own event archive: users are the `profile` column (pseudonyms
  already), weights come from the per-type table (`models.interactions`).

MovieLens and CSV user ids are the shop's own ids: `pseudonymized` turns them into the
pids serving looks visitors up by, before anything is written.

Text files are parsed row by row so that a bad row is reported with its file and line;
that costs about a second per million rows, which an offline job can afford.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import orjson

from engine.events.archive import read_archive
from models.events import Event, history_items
from models.interactions import DEFAULT_WEIGHTS, parse_history_entry
from training.csv_columns import csv_columns

InteractionFormat = Literal["movielens", "csv", "events"]
INTERACTION_FORMATS: tuple[str, ...] = get_args(InteractionFormat)

MOVIELENS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
CSV_COLUMNS = ("user", "item", "weight")
CSV_TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class Interactions:
    """One row per (user, item): total weight and the latest time. Users are client ids
    or pids (see `pseudonymized`); items are the catalogue's ids."""

    users: npt.NDArray[np.str_]
    items: npt.NDArray[np.str_]
    weights: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if not len(self.users) == len(self.items) == len(self.weights) == len(self.timestamps):
            raise ValueError("interactions: columns of different lengths")

    def __len__(self) -> int:
        return len(self.users)


def load_interactions(
    path: Path,
    format: InteractionFormat,
    *,
    rating_weights: bool = False,
    event_weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> Interactions:
    """Interactions from a file or archive folder of the given format (see the module)."""
    if format == "events":
        return from_archive(path, event_weights)
    try:
        return from_movielens(path, rating_weights) if format == "movielens" else from_csv(path)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None


def from_movielens(path: Path, rating_weights: bool = False) -> Interactions:
    """MovieLens ratings (`.inter` with its header, or `u.data` without)."""
    rows = _Rows(path)
    with path.open(encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if not rows and fields[0].lower().startswith(MOVIELENS_COLUMNS[0]):
                continue  # the `.inter` header
            if len(fields) != len(MOVIELENS_COLUMNS):
                raise ValueError(
                    f"{path}:{number}: expected {len(MOVIELENS_COLUMNS)} fields "
                    f"({' '.join(MOVIELENS_COLUMNS)}), got {len(fields)}"
                )
            user, item, rating, timestamp = fields
            score = _number(path, number, "rating", rating)
            weight = score if rating_weights else 1.0
            rows.add(number, user, item, weight, _number(path, number, "timestamp", timestamp))
    return rows.interactions()


def from_csv(path: Path) -> Interactions:
    """A CSV with a header naming `user`, `item`, `weight` and optionally `timestamp`."""
    rows = _Rows(path)
    for line, (user, item, weight), (timestamp,) in csv_columns(
        path, CSV_COLUMNS, (CSV_TIMESTAMP,)
    ):
        ts = float(line) if timestamp is None else _timestamp(path, line, timestamp)
        rows.add(line, user, item, _number(path, line, "weight", weight), ts)
    return rows.interactions()


def from_archive(folder: Path, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> Interactions:
    """Interactions from the engine's event archive, weighed as serving weighs a history.

    Serving keeps one history entry per (type, item) for a visitor and folds in the sum
    of those entries' type weights, so training does the same: per (user, item) the
    weights of the *distinct* types count once each (five views weigh like one; a view
    and a purchase weigh view + purchase). The items of an event are those serving
    records (`models.events.history_items`: a purchase's line items, otherwise the
    event's `item_id`). The user is the profile the event landed on, a pid already.
    The time of a (user, item) is its latest event's.
    """
    table = read_archive(folder)
    if not table.num_rows:
        raise ValueError(f"{folder}: no archived events (day=YYYY-MM-DD/*.parquet)")
    users: list[str] = []
    entries: list[str] = []
    times: list[float] = []
    columns = ("event_id", "type", "profile", "ts", "channel", "item_id", "properties")
    for event_id, kind, profile, ts, channel, item_id, properties in zip(
        *(table.column(name).to_pylist() for name in columns), strict=True
    ):
        if weights.get(kind, 0.0) <= 0:
            continue
        if profile is None:
            raise ValueError(f"{folder}: event {event_id} has no profile")
        try:
            event = Event(
                type=kind,
                pid=profile,
                ts=ts,
                channel=channel,
                item_id=item_id,
                properties=orjson.loads(properties or "{}"),
            )
            found = history_items(event)
        except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"{folder}: event {event_id} is malformed: {exc!r}") from None
        users += [profile] * len(found)
        entries += found
        times += [ts] * len(found)
    if not entries:
        raise ValueError(f"{folder}: no events with a weighted type and an item ({weights})")
    kinds, items = zip(*(parse_history_entry(entry) for entry in entries), strict=True)
    type_weight = np.array([weights[kind] for kind in kinds], dtype=np.float64)
    user_array = np.asarray(users, dtype=np.str_)
    item_array = np.asarray(items, dtype=np.str_)
    ts_array = np.asarray(times, dtype=np.float64)
    # one row per (user, item, type) first, so repeats of a type count once
    triple = _codes(user_array, np.asarray(entries, dtype=np.str_))
    first, last_ts = _groups(triple, ts_array)
    return _per_pair(user_array[first], item_array[first], type_weight[first], last_ts)


def pseudonymized(interactions: Interactions, pseudonymize: Callable[[str], str]) -> Interactions:
    """The same interactions with each user id replaced by its pid (each id hashed once)."""
    distinct, inverse = np.unique(interactions.users, return_inverse=True)
    pids = np.asarray([pseudonymize(str(user)) for user in distinct.tolist()], dtype=np.str_)
    return Interactions(
        users=pids[inverse],
        items=interactions.items,
        weights=interactions.weights,
        timestamps=interactions.timestamps,
    )


def _number(path: Path, line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}:{line}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{line}: {name} {text!r} is not finite")
    return value


def _timestamp(path: Path, line: int, text: str) -> float:
    """Unix seconds, or an ISO 8601 date/time (UTC when it names no zone)."""
    try:
        return _number(path, line, "timestamp", text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{path}:{line}: timestamp {text!r} is neither Unix seconds nor ISO 8601"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _codes(users: npt.NDArray[np.str_], items: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """One integer per distinct (user, item) pair (or (user, history entry) pair)."""
    _, user_code = np.unique(users, return_inverse=True)
    item_ids, item_code = np.unique(items, return_inverse=True)
    codes: npt.NDArray[np.int64] = user_code.astype(np.int64) * len(item_ids) + item_code
    return codes


def _groups(
    keys: npt.NDArray[np.int64], ts: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per distinct key: the index of one of its rows and its latest time."""
    order = np.lexsort((ts, keys))
    sorted_keys = keys[order]
    last = np.flatnonzero(np.append(sorted_keys[1:] != sorted_keys[:-1], True))
    rows: npt.NDArray[np.int64] = order[last].astype(np.int64)
    return rows, ts[rows]


def _per_pair(
    users: npt.NDArray[np.str_],
    items: npt.NDArray[np.str_],
    weights: npt.NDArray[np.float64],
    ts: npt.NDArray[np.float64],
) -> Interactions:
    """Rows merged per (user, item): weights summed, the latest time kept."""
    pair = _codes(users, items)
    distinct, inverse = np.unique(pair, return_inverse=True)
    rows, last_ts = _groups(pair, ts)  # rows come in the order of `distinct`
    total = np.bincount(inverse, weights=weights, minlength=len(distinct))
    return Interactions(
        users=users[rows],
        items=items[rows],
        weights=total.astype(np.float32),
        timestamps=last_ts,
    )


class _Rows:
    """Columns being collected from a text file; every value checked where it is read."""

    __slots__ = ("_items", "_path", "_timestamps", "_users", "_weights")

    def __init__(self, path: Path) -> None:
        self._path = path
        self._users: list[str] = []
        self._items: list[str] = []
        self._weights: list[float] = []
        self._timestamps: list[float] = []

    def __len__(self) -> int:
        return len(self._users)

    def add(self, line: int, user: str, item: str, weight: float, ts: float) -> None:
        if not user:
            raise ValueError(f"{self._path}:{line}: empty user id")
        if not item:
            raise ValueError(f"{self._path}:{line}: empty item id")
        if not weight > 0:
            raise ValueError(f"{self._path}:{line}: weight {weight} is not positive")
        self._users.append(user)
        self._items.append(item)
        self._weights.append(weight)
        self._timestamps.append(ts)

    def interactions(self) -> Interactions:
        if not self._users:
            raise ValueError(f"{self._path}: no interactions")
        return _per_pair(
            np.asarray(self._users, dtype=np.str_),
            np.asarray(self._items, dtype=np.str_),
            np.asarray(self._weights, dtype=np.float64),
            np.asarray(self._timestamps, dtype=np.float64),
        )
