"""RFM segmentation: who bought recently, often and for much, as 1-5 scores and a name.

Recency, frequency and monetary value (Hughes, "Strategic Database Marketing", 1994)
are each scored 1..5 by quintile over the customers, 5 the best; the (R, F) pair then
names the customer's segment, which targeting rules and the segment report use.

Named segments, by R (rows) and F (columns); M is scored and stored but does not
enter the name, because it tracks F closely (more orders, more spend) and a 5x5 grid
can be read at a glance:

| R \\ F | 1              | 2                  | 3                  | 4           | 5           |
| ----- | -------------- | ------------------ | ------------------ | ----------- | ----------- |
| 5     | new            | potential_loyalist | potential_loyalist | champions   | champions   |
| 4     | promising      | potential_loyalist | potential_loyalist | loyal       | loyal       |
| 3     | about_to_sleep | about_to_sleep     | need_attention     | loyal       | loyal       |
| 2     | hibernating    | hibernating        | at_risk            | at_risk     | cannot_lose |
| 1     | lost           | lost               | at_risk            | at_risk     | cannot_lose |

This is the widely used R x F segment map, with its `hibernating` corner split so that
the least recent of the rarely buying (R = 1) are told apart as `lost`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from models.features import FeatureValue
from training.transactions import Transactions

Segment = Literal[
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose",
    "hibernating",
    "lost",
]
SEGMENTS: tuple[Segment, ...] = get_args(Segment)
# SEGMENT_GRID[r - 1][f - 1]: the table in the module docstring, R = 1 first
SEGMENT_GRID: tuple[tuple[Segment, ...], ...] = (
    ("lost", "lost", "at_risk", "at_risk", "cannot_lose"),
    ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
)
SCORES = 5

_GRID_CODES = np.array([[SEGMENTS.index(name) for name in row] for row in SEGMENT_GRID])
_SEGMENT_NAMES = np.array(SEGMENTS, dtype=object)
_ONE_DAY = np.timedelta64(1, "D")


@dataclass(frozen=True, slots=True)
class RfmTable:
    """One row per customer: the raw R, F, M values, their scores and the segment."""

    customer: npt.NDArray[np.object_]
    recency_days: npt.NDArray[np.int64]  # days from the last purchase's day to as_of
    frequency: npt.NDArray[np.int64]
    monetary: npt.NDArray[np.float64]
    r: npt.NDArray[np.int64]
    f: npt.NDArray[np.int64]
    m: npt.NDArray[np.int64]
    segment: npt.NDArray[np.object_]
    as_of: np.datetime64

    def __len__(self) -> int:
        return len(self.customer)


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """One segment of an RFM run: its size and what its customers look like on average."""

    segment: Segment
    customers: int
    share: float
    mean_recency_days: float  # NaN for an empty segment, as are the other means
    mean_frequency: float
    mean_monetary: float


def quintile_scores(values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Scores 1..5 by quintile, higher values scoring higher: ceil(5 * rank / n).

    Ranks are scipy's `rankdata(method="average")`, so equal values always share a
    score. A large block of ties (the many customers who bought once) gets the score of
    its average rank, so the lowest scores can be empty.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = rankdata(array, method="average")
    scores: npt.NDArray[np.int64] = np.ceil(SCORES * ranks / array.size).astype(np.int64)
    return scores


def segment_names(r: npt.ArrayLike, f: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """The segment of each (R, F) score pair, from `SEGMENT_GRID`."""
    codes = _GRID_CODES[np.asarray(r) - 1, np.asarray(f) - 1]
    names: npt.NDArray[np.object_] = _SEGMENT_NAMES[codes]
    return names


def rfm_scores(tx: Transactions, as_of: np.datetime64 | None = None) -> RfmTable:
    """Each customer's recency, frequency, monetary value, their scores and segment.

    `as_of` is the day the scores refer to, taken as its first moment: purchases on it
    or later are left out, so a past date gives the segmentation as it was then. By
    default it is the day after the last purchase, so every recency is at least 1 day.

    Frequency counts purchases (rows), not distinct purchase days: each row is one order
    (a CDNOW line, an archived purchase event), two orders on one day are two visits to
    the shop, and the engine's real-time `orders` feature counts the same way.
    Monetary is the total value of those purchases.
    """
    days = tx.day.astype("datetime64[D]")
    if as_of is None:
        if not len(tx):
            raise ValueError("no transactions to score")
        as_of = days.max() + _ONE_DAY
    else:
        as_of = as_of.astype("datetime64[D]")
    keep = days < as_of
    if not keep.any():
        raise ValueError(f"no transactions before {as_of}")
    customers, inverse = np.unique(tx.customer[keep], return_inverse=True)
    day_numbers = days[keep].astype(np.int64)
    last = np.full(len(customers), np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, inverse, day_numbers)
    recency = as_of.astype(np.int64) - last
    frequency = np.bincount(inverse, minlength=len(customers)).astype(np.int64)
    monetary = np.bincount(inverse, weights=tx.value[keep], minlength=len(customers)).astype(
        np.float64
    )
    r = quintile_scores(-recency)  # fewer days since the last purchase scores higher
    f = quintile_scores(frequency)
    return RfmTable(
        customer=customers,
        recency_days=recency,
        frequency=frequency,
        monetary=monetary,
        r=r,
        f=f,
        m=quintile_scores(monetary),
        segment=segment_names(r, f),
        as_of=as_of,
    )


def summary(table: RfmTable) -> tuple[SegmentSummary, ...]:
    """Per segment, in `SEGMENTS` order (empty ones included): size, share and means."""
    codes = _GRID_CODES[table.r - 1, table.f - 1]
    count = np.bincount(codes, minlength=len(SEGMENTS))
    total = max(len(table), 1)

    def means(values: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> list[float]:
        sums = np.bincount(codes, weights=values, minlength=len(SEGMENTS))
        return [float(s / c) if c else math.nan for s, c in zip(sums, count, strict=True)]

    recency, frequency, monetary = (
        means(table.recency_days),
        means(table.frequency),
        means(table.monetary),
    )
    return tuple(
        SegmentSummary(
            segment=name,
            customers=int(count[i]),
            share=float(count[i]) / total,
            mean_recency_days=recency[i],
            mean_frequency=frequency[i],
            mean_monetary=monetary[i],
        )
        for i, name in enumerate(SEGMENTS)
    )


def feature_rows(table: RfmTable, pids: Sequence[str]) -> dict[str, dict[str, FeatureValue]]:
    """The `rfm_*` features (models.features) of each customer, keyed by their pid.

    `pids[i]` is the profile of `table.customer[i]`.
    """
    if len(pids) != len(table):
        raise ValueError(f"{len(pids)} pids for {len(table)} customers")
    as_of_s = float(table.as_of.astype("datetime64[s]").astype(np.int64))
    columns = zip(
        pids,
        table.r.tolist(),
        table.f.tolist(),
        table.m.tolist(),
        table.segment.tolist(),
        table.recency_days.tolist(),
        table.frequency.tolist(),
        table.monetary.tolist(),
        strict=True,
    )
    return {
        pid: {
            "rfm_r": r,
            "rfm_f": f,
            "rfm_m": m,
            "rfm_segment": segment,
            "rfm_recency_days": float(recency),
            "rfm_frequency": frequency,
            "rfm_monetary": monetary,
            "rfm_as_of": as_of_s,
        }
        for pid, r, f, m, segment, recency, frequency, monetary in columns
    }
